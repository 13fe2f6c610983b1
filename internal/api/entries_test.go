package api_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"crucible/internal/api"
	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/consensus"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/identity"
	"crucible/internal/pool"
	"crucible/internal/store/storetest"
)

// TestPlainCompetitionsUseThePoolsCopyRule keeps one copy rule for pools
// and plain competitions.
func TestPlainCompetitionsUseThePoolsCopyRule(t *testing.T) {
	if competition.CopyRule != pool.CopyRule {
		t.Fatalf("competition.CopyRule %+v differs from pool.CopyRule %+v", competition.CopyRule, pool.CopyRule)
	}
}

// entryHub is a whole server (with workers unless noWork), an operator and two competitors,
// and entries limited to limit per key.
type entryHub struct {
	base                 string
	operator, alice, bob *client.Client
}

func startEntryHub(t *testing.T, database string, limit int, noWork bool) *entryHub {
	t.Helper()
	keys := make([]*identity.Key, 3)
	for i := range keys {
		k, err := identity.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, app.Config{Database: database, Listen: "127.0.0.1:0", NoWork: noWork, AllowEndpoints: "127.0.0.0/8",
		Consensus: consensus.Config{Admins: []string{keys[0].ID()}}, Quotas: api.Quotas{EntriesPerKey: limit},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := a.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; a.Close() })
	h := &entryHub{base: "http://" + ln.Addr().String()}
	for i, c := range []**client.Client{&h.operator, &h.alice, &h.bob} {
		if *c, err = client.New(client.Config{Server: h.base, Key: keys[i]}); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// baselines serves the baseline models at a new base URL.
func baselines(t *testing.T) string {
	t.Helper()
	ds, err := mcq.Parse(strings.NewReader(string(app.SampleDataset)), "siqa-sample")
	if err != nil {
		t.Fatal(err)
	}
	h, err := mcqtest.New(mcqtest.Config{Policies: app.DemoPolicies, Key: ds})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// wantStatus asserts that err is the API's answer with code naming want.
func wantStatus(t *testing.T, what string, err error, code int, want string) {
	t.Helper()
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != code || !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: %v; want %d naming %q", what, err, code, want)
	}
}

// TestEntriesOfAModelCompetitionAreLimited: the same model (base URL and
// model name) may not enter one competition twice, from the same key or
// another; one key may hold at most the configured active entries; an
// operator key is exempt from the latter, not the former.
func TestEntriesOfAModelCompetitionAreLimited(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			h := startEntryHub(t, d.URL, 2, true) // entries stay queued
			comp, err := h.operator.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "mcq", Title: "limits", Dataset: string(app.SampleDataset)})
			if err != nil {
				t.Fatal(err)
			}
			models := baselines(t)
			submit := func(c *client.Client, model string) error {
				_, err := c.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{BaseURL: models, Model: model})
				return err
			}
			if err := submit(h.alice, "baseline-oracle"); err != nil {
				t.Fatal(err)
			}
			wantStatus(t, "the same model again from the same key", submit(h.alice, "baseline-oracle"), http.StatusConflict, "already entered")
			wantStatus(t, "the same model from another key", submit(h.bob, "baseline-oracle"), http.StatusConflict, "already entered")
			wantStatus(t, "the same model as an operator", submit(h.operator, "baseline-oracle"), http.StatusConflict, "already entered")
			if err := submit(h.alice, "baseline-first"); err != nil {
				t.Fatal(err)
			}
			wantStatus(t, "a third entry of one key", submit(h.alice, "baseline-random"), http.StatusConflict, "entry limit")
			if err := submit(h.bob, "baseline-random"); err != nil {
				t.Fatalf("another key's entry: %v", err)
			}
			for _, m := range []string{"baseline-overlap", "no-such-model-1", "no-such-model-2"} {
				if err := submit(h.operator, m); err != nil {
					t.Fatalf("operator entry %s: %v", m, err)
				}
			}
			subs, err := h.alice.Submissions(ctx, comp.ID)
			if err != nil || len(subs) != 6 {
				t.Fatalf("the competition holds %d submissions (%v), want 6", len(subs), err)
			}

			// Thirty-two keys enter one new model at once: one gets in.
			var wg sync.WaitGroup
			errs := make([]error, 32)
			for i := range errs {
				k, err := identity.NewKey()
				if err != nil {
					t.Fatal(err)
				}
				c, err := client.New(client.Config{Server: h.base, Key: k})
				if err != nil {
					t.Fatal(err)
				}
				wg.Go(func() { errs[i] = submit(c, "raced-model") })
			}
			wg.Wait()
			admitted := 0
			for _, err := range errs {
				if err == nil {
					admitted++
				} else {
					wantStatus(t, "a simultaneous entry of one model", err, http.StatusConflict, "already entered")
				}
			}
			if subs, err := h.alice.Submissions(ctx, comp.ID); err != nil || admitted != 1 || len(subs) != 7 {
				t.Fatalf("%d of 32 simultaneous entries admitted, %d submissions (%v); want 1 and 7", admitted, len(subs), err)
			}
		})
	}
}

// TestCopiesInAPlainCompetitionAreMarked: an original and three copies of
// it served from other base URLs (so other digests), answering identical
// raw text, plus an honest other model. After evaluation the copies rank
// but are marked as copies of the original in the leaderboard JSON and on
// the competition's web page; the original and the other model are not.
func TestCopiesInAPlainCompetitionAreMarked(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			h := startEntryHub(t, d.URL, 3, false)
			lines := strings.SplitN(string(app.SampleDataset), "\n", 41)
			comp, err := h.operator.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "mcq", Title: "copies",
				Dataset: strings.Join(lines[:40], "\n")})
			if err != nil {
				t.Fatal(err)
			}
			submit := func(c *client.Client, name, models, model string) competition.Submission {
				sub, err := c.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{Name: name, BaseURL: models, Model: model})
				if err != nil {
					t.Fatalf("submit %s: %v", name, err)
				}
				return sub
			}
			home := baselines(t)
			original := submit(h.alice, "original", home, "baseline-oracle")
			submit(h.alice, "other", home, "baseline-first") // agrees with nobody word for word
			copies := map[string]bool{}
			for i, c := range []*client.Client{h.bob, h.bob, h.alice} {
				copies[submit(c, "copy-"+string(rune('a'+i)), baselines(t), "baseline-oracle").ID] = true
			}
			subs, err := h.alice.WaitScored(ctx, comp.ID, 50*time.Millisecond, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range subs {
				if s.State != competition.StateScored {
					t.Fatalf("%s ended %s: %s", s.Name, s.State, s.Reason)
				}
			}
			rows, err := h.bob.Leaderboard(ctx, comp.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 5 {
				t.Fatalf("leaderboard has %d rows, want 5 (copies rank too)", len(rows))
			}
			for _, r := range rows {
				switch {
				case copies[r.SubmissionID] && r.CopyOf != original.ID:
					t.Fatalf("copy %s: copy_of %q, want the original %s", r.Name, r.CopyOf, original.ID)
				case !copies[r.SubmissionID] && r.CopyOf != "":
					t.Fatalf("%s (%s) marked a copy of %s", r.Name, r.SubmissionID, r.CopyOf)
				}
			}
			resp, err := http.Get(h.base + "/c/" + comp.ID)
			if err != nil {
				t.Fatal(err)
			}
			page, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			mark := `copy</span> of <a href="/s/` + original.ID + `">original</a>`
			if n := strings.Count(string(page), mark); n != 3 {
				t.Fatalf("the web leaderboard marks %d rows as copies of the original, want 3", n)
			}
			if n := strings.Count(string(page), "copy</span> of"); n != 3 {
				t.Fatalf("the web leaderboard marks %d copies, want 3", n)
			}
		})
	}
}
