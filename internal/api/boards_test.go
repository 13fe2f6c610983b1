package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/identity"
	"crucible/internal/store/storetest"
)

// openHub starts a hub without workers on database and returns it with its
// base URL.
func openHub(t *testing.T, database string) (*app.App, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, app.Config{Database: database, Listen: "127.0.0.1:0", NoWork: true, AllowEndpoints: "127.0.0.0/8",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := a.Listen()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; a.Close() })
	return a, "http://" + ln.Addr().String()
}

// get fetches url with an optional If-None-Match and returns the status,
// the ETag and the body.
func get(t *testing.T, url, ifNoneMatch string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("ETag"), body
}

// TestAScoredSubmissionShowsOnEveryHubAtOnce: scoring a submission (as a
// worker does) changes the cached board on the next read, and the old ETag
// no longer matches. On PostgreSQL two hubs share the database, each with
// its own cache (SQLite admits one process), and both see the change.
func TestAScoredSubmissionShowsOnEveryHubAtOnce(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			a, baseA := openHub(t, d.URL)
			bases := []string{baseA}
			if d.Name == "postgres" {
				_, baseB := openHub(t, d.URL)
				bases = append(bases, baseB)
			}
			key, err := identity.NewKey()
			if err != nil {
				t.Fatal(err)
			}
			cl, err := client.New(client.Config{Server: baseA, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			comp, err := cl.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "mcq", Title: "cached", Dataset: string(app.SampleDataset)})
			if err != nil {
				t.Fatal(err)
			}
			models := baselines(t)
			var subs []competition.Submission
			for _, m := range []string{"baseline-oracle", "baseline-random"} {
				s, err := cl.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{BaseURL: models, Model: m})
				if err != nil {
					t.Fatal(err)
				}
				subs = append(subs, s)
			}
			path := "/api/v1/competitions/" + comp.ID + "/leaderboard"
			board := func(base, etag string) (int, string, []competition.Row) {
				t.Helper()
				code, tag, body := get(t, base+path, etag)
				var rows []competition.Row
				if code == http.StatusOK {
					if err := json.Unmarshal(body, &rows); err != nil {
						t.Fatalf("%s: %v", body, err)
					}
				}
				return code, tag, rows
			}
			tags := map[string]string{}
			for _, base := range bases {
				code, tag, rows := board(base, "")
				if code != http.StatusOK || len(rows) != 0 || tag == "" {
					t.Fatalf("before scoring: %d %q %+v", code, tag, rows)
				}
				if code, _, _ := board(base, tag); code != http.StatusNotModified {
					t.Fatalf("If-None-Match with the current tag: %d, want 304", code)
				}
				tags[base] = tag
			}
			score := func(s competition.Submission, v float64) {
				t.Helper()
				for _, ev := range []competition.Event{competition.EventStart, competition.EventComplete} {
					card := &competition.Card{Score: v, CILow: v, CIHigh: v, Items: 10, Correct: int(v * 10)}
					if _, err := a.DB.AdvanceSubmission(ctx, s.ID, ev, "", card, s.CommittedAt); err != nil {
						t.Fatal(err)
					}
				}
			}
			score(subs[1], 0.3)
			pageTags := map[string]string{}
			for _, base := range bases {
				code, tag, rows := board(base, tags[base])
				if code != http.StatusOK || len(rows) != 1 || rows[0].SubmissionID != subs[1].ID || tag == tags[base] {
					t.Fatalf("after one scoring, with the old tag: %d %q %+v", code, tag, rows)
				}
				tags[base] = tag
				// A page is tagged and cached under the same version.
				var page []competition.Row
				code, tag, body := get(t, base+path+"?limit=1", "")
				if err := json.Unmarshal(body, &page); code != http.StatusOK || err != nil || len(page) != 1 || page[0].SubmissionID != subs[1].ID || tag == "" {
					t.Fatalf("first page after one scoring: %d %q %s", code, tag, body)
				}
				if code, again, _ := get(t, base+path+"?limit=1", tag); code != http.StatusNotModified || again != tag {
					t.Fatalf("the page with its tag: %d %q, want 304 %q", code, again, tag)
				}
				pageTags[base] = tag
			}
			score(subs[0], 0.9)
			for _, base := range bases {
				var page []competition.Row
				code, tag, body := get(t, base+path+"?limit=1", pageTags[base])
				if err := json.Unmarshal(body, &page); code != http.StatusOK || err != nil || len(page) != 1 || page[0].SubmissionID != subs[0].ID || tag == pageTags[base] {
					t.Fatalf("the cached first page after a second scoring, with its old tag: %d %q %s", code, tag, body)
				}
			}
			for _, base := range bases {
				code, _, rows := board(base, tags[base])
				if code != http.StatusOK || len(rows) != 2 || rows[0].SubmissionID != subs[0].ID || rows[0].Rank != 1 {
					t.Fatalf("after two scorings: %d %+v", code, rows)
				}
				var page []competition.Row
				code, _, body := get(t, base+path+"?offset=1&limit=1", "")
				if err := json.Unmarshal(body, &page); code != http.StatusOK || err != nil || len(page) != 1 || page[0].SubmissionID != subs[1].ID || page[0].Rank != 2 {
					t.Fatalf("page 2 of 1 row: %d %s", code, body)
				}
				for _, q := range []string{"?limit=0", "?limit=1001", "?offset=-1"} {
					if code, _, body := get(t, base+path+q, ""); code != http.StatusBadRequest {
						t.Errorf("%s: %d %s, want 400", q, code, body)
					}
				}
			}
		})
	}
}

// TestTheWebPageReadsTheCachedLeaderboard: the competition page and its
// CSV show the ranking the API caches, not one they compute again (a
// planted board stands in for the cached computation).
func TestTheWebPageReadsTheCachedLeaderboard(t *testing.T) {
	ctx := context.Background()
	a, base := openHub(t, storetest.Databases(t)[0].URL)
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(client.Config{Server: base, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	comp, err := cl.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "mcq", Title: "web", Dataset: string(app.SampleDataset)})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := cl.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{BaseURL: baselines(t), Model: "baseline-oracle"})
	if err != nil {
		t.Fatal(err)
	}
	rows := []competition.Row{{Rank: 1, SubmissionID: sub.ID, Name: "planted-cached-row", Score: 0.5, CILow: 0.4, CIHigh: 0.6}}
	body, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	a.API.PlantBoard(comp.ID, 0, body, rows)
	for _, path := range []string{"/c/" + comp.ID, "/c/" + comp.ID + "/leaderboard.csv"} {
		code, _, page := get(t, base+path, "")
		if code != http.StatusOK || !strings.Contains(string(page), "planted-cached-row") {
			t.Errorf("%s: %d, the cached row is not shown:\n%.2000s", path, code, page)
		}
	}
}

// TestSubmissionListsArePaged: a bounded limit, a cursor that names a
// submission of the competition, and a Link to the next full page.
func TestSubmissionListsArePaged(t *testing.T) {
	ctx := context.Background()
	_, base := openHub(t, storetest.Databases(t)[0].URL)
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(client.Config{Server: base, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	var comps []competition.Competition
	for _, title := range []string{"paged", "other"} {
		c, err := cl.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "mcq", Title: title, Dataset: string(app.SampleDataset)})
		if err != nil {
			t.Fatal(err)
		}
		comps = append(comps, c)
	}
	models := baselines(t)
	for _, m := range []string{"baseline-oracle", "baseline-random", "baseline-first"} {
		if _, err := cl.Submit(ctx, comps[0].ID, apiv1.CreateSubmissionRequest{BaseURL: models, Model: m}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := cl.Submissions(ctx, comps[0].ID)
	if err != nil || len(all) != 3 {
		t.Fatalf("client listing: %d, %v", len(all), err)
	}
	path := "/api/v1/competitions/" + comps[0].ID + "/submissions"
	resp, err := http.Get(base + path + "?limit=2")
	if err != nil {
		t.Fatal(err)
	}
	var page []competition.Submission
	err = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	link := resp.Header.Get("Link")
	if err != nil || len(page) != 2 || page[1].ID != all[1].ID || !strings.Contains(link, "after="+all[1].ID) || !strings.Contains(link, `rel="next"`) {
		t.Fatalf("first page: %d %v, link %q", len(page), err, link)
	}
	code, _, body := get(t, base+path+"?limit=2&after="+all[1].ID, "")
	if err := json.Unmarshal(body, &page); code != http.StatusOK || err != nil || len(page) != 1 || page[0].ID != all[2].ID {
		t.Fatalf("second page: %d %s", code, body)
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=-1", "?after=" + strings.Repeat("s", 65)} {
		if code, _, body := get(t, base+path+q, ""); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", q, code, body)
		}
	}
	otherPath := "/api/v1/competitions/" + comps[1].ID + "/submissions?after=" + all[0].ID
	if code, _, body := get(t, base+otherPath, ""); code != http.StatusNotFound {
		t.Errorf("a cursor from another competition: %d %s, want 404", code, body)
	}
}
