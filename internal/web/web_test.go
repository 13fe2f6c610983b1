package web_test

import (
	"context"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/mcq"
	"crucible/internal/kind"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/seal"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
	"crucible/internal/web"
)

// t0 is the fixture's clock.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a store holding one competition with scored, running and
// failed submissions.
type fixture struct {
	db                              *store.DB
	comp                            string
	best, second, running, failed   string
	near                            string
	itemsTotal, resultsOfBest       int
	escapedPrompt, rawPromptPayload string
}

func newStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "crucible.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	db := newStore(t)
	f := fixture{db: db, comp: "c-test", itemsTotal: 45,
		rawPromptPayload: `<script>alert("x")</script> & "quotes"`,
		escapedPrompt:    `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;quotes&#34;`}
	items := make([]json.RawMessage, f.itemsTotal)
	for i := range items {
		items[i] = json.RawMessage(`{}`)
	}
	c := competition.Competition{ID: f.comp, Kind: mcq.Name, Title: "Social <IQa> test",
		Config:      json.RawMessage(`{"mode":"generative","max_tokens":16}`),
		DatasetName: "siqa-test", DatasetDigest: strings.Repeat("ab", 32), Items: f.itemsTotal,
		CreatedBy: "key-1", CreatedAt: t0}
	if err := db.CreateCompetition(ctx, c, items); err != nil {
		t.Fatal(err)
	}
	add := func(name, submitter string, at int) string {
		id := "s-" + name
		sub := competition.Submission{ID: id, CompetitionID: f.comp, Name: name, Submitter: submitter,
			Model: competition.ModelSpec{BaseURL: "http://127.0.0.1:9/v1", Model: name}, Digest: strings.Repeat("cd", 32),
			CommittedAt: t0.Add(time.Duration(at) * time.Minute), State: competition.StateQueued,
			ItemsTotal: f.itemsTotal, UpdatedAt: t0}
		err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, sub, "") })
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	f.second = add("second-best", "key-1", 1)
	f.best = add("the-best", "key-2", 2)
	f.running = add("still-running", "key-2", 3)
	f.failed = add("broken", "key-3", 4)
	f.near = add("near-best", "key-4", 5)

	score := func(id string, correct int, prompt string) {
		for i := 0; i < f.itemsTotal; i++ {
			r := eval.Result{Index: i, Prompt: fmt.Sprintf("item %d: %s", i, prompt), Response: "A",
				Prediction: "A", Correct: i < correct, Started: t0, Ended: t0.Add(time.Millisecond), LatencyMS: 1}
			if r.Correct {
				r.Score = 1
			}
			if err := db.InsertResult(ctx, id, r); err != nil {
				t.Fatal(err)
			}
		}
		scores, n, err := db.ItemScores(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		card := competition.NewCard(scores, n)
		if _, err := storetest.SetState(ctx, db, id, competition.StateScored, "", &card, t0); err != nil {
			t.Fatal(err)
		}
	}
	score(f.best, 40, f.rawPromptPayload)
	score(f.second, 10, "plain")
	score(f.near, 39, "plain")
	f.resultsOfBest = f.itemsTotal
	if _, err := storetest.SetState(ctx, db, f.running, competition.StateRunning, "", nil, t0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := db.InsertResult(ctx, f.running, eval.Result{Index: i, Prompt: "p", Started: t0, Ended: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := storetest.SetState(ctx, db, f.failed, competition.StateFailed, "model server answered 404: no model <broken>", nil, t0); err != nil {
		t.Fatal(err)
	}
	return f
}

func newServer(t *testing.T, db *store.DB) *httptest.Server {
	t.Helper()
	ui, err := web.New(web.Config{Store: seal.Public{DB: db}, Kinds: builtinKinds(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestPages(t *testing.T) {
	f := newFixture(t)
	srv := newServer(t, f.db)
	tests := []struct {
		name string
		path string
		code int
		// want must appear in the body, in this order.
		want    []string
		notWant []string
	}{
		{
			name: "the home page lists the competition with its kind, items, entrants and leader",
			path: "/", code: 200,
			want: []string{`href="/c/c-test"`, "Social &lt;IQa&gt; test", "mcq", "3 scored, 1 running, 1 failed", ">45<",
				"5 submissions", "4 submitters", "the-best"},
		},
		{
			name: "a competition page ranks the leaderboard by score and marks ties with the leader",
			path: "/c/c-test", code: 200,
			want: []string{`id="leaderboard"`, `<tr class="tie">`, "the-best", `<tr class="tie">`, "near-best", `<tr class="">`, "second-best",
				"marks a tie", "Scores over time"},
			notWant: []string{"<IQa>"},
		},
		{
			name: "a competition page shows the rules and the dataset facts",
			path: "/c/c-test", code: 200,
			want: []string{"Rules and scoring", "generative", "Max tokens", "Answer with the letter", "Dataset", "siqa-test",
				strings.Repeat("ab", 32)},
		},
		{
			name: "a competition page lists unscored submissions with their state",
			path: "/c/c-test", code: 200,
			want: []string{`id="submissions"`, "second-best", "the-best", "still-running", "running", "broken", "failed"},
		},
		{
			name: "a competition page draws an interval bar per row and a chart point per scored submission",
			path: "/c/c-test", code: 200,
			want: []string{`class="bar"`, `class="bar"`, `class="bar"`, `<polyline class="best"`, `class="point record"`, `class="point record"`, `class="point"`},
		},
		{
			name: "an unknown competition is a 404",
			path: "/c/c-nope", code: 404, want: []string{"404", "c-nope"},
		},
		{
			name: "a scored submission page shows its score card and escapes prompt text",
			path: "/s/" + f.best, code: 200,
			want:    []string{"the-best", "scored", "Score card", "0.889", "40 of 45", "Items 1–20 of 45", f.escapedPrompt, `href="?page=2"`},
			notWant: []string{f.rawPromptPayload, "hx-get"},
		},
		{
			name: "the last results page holds the remaining items and links back",
			path: "/s/" + f.best + "?page=3", code: 200,
			want:    []string{"Items 41–45 of 45", "page 3 of 3", `href="?page=2"`},
			notWant: []string{`href="?page=4"`},
		},
		{
			name: "a page past the end shows the last page",
			path: "/s/" + f.best + "?page=99", code: 200,
			want: []string{"Items 41–45 of 45"},
		},
		{
			name: "a page number that is not a number is a 400",
			path: "/s/" + f.best + "?page=x", code: 400, want: []string{"page must be"},
		},
		{
			name: "a running submission page polls its progress fragment",
			path: "/s/" + f.running, code: 200,
			want: []string{`hx-get="/s/s-still-running/progress"`, `hx-trigger="every 1s"`, "3 of 45 items evaluated", "<noscript>"},
		},
		{
			name: "a failed submission page shows the reason, escaped",
			path: "/s/" + f.failed, code: 200,
			want:    []string{"failed", "model server answered 404: no model &lt;broken&gt;", "No item was evaluated"},
			notWant: []string{"hx-get"},
		},
		{
			name: "the progress fragment of a running submission keeps polling",
			path: "/s/" + f.running + "/progress", code: 200,
			want:    []string{`id="progress"`, `hx-trigger="every 1s"`, "3 of 45 items evaluated"},
			notWant: []string{"<html"},
		},
		{
			name: "the progress fragment of a final submission stops polling and links to the results",
			path: "/s/" + f.best + "/progress", code: 200,
			want:    []string{`id="progress"`, "45 of 45 items evaluated", "reload the page"},
			notWant: []string{"hx-get", "hx-trigger"},
		},
		{
			name: "an unknown submission is a 404",
			path: "/s/s-nope", code: 404, want: []string{"s-nope"},
		},
		{
			name: "the progress fragment of an unknown submission is a 404",
			path: "/s/s-nope/progress", code: 404,
		},
		{
			name: "an unknown path is a 404 page",
			path: "/nowhere", code: 404, want: []string{"There is no page at /nowhere"},
		},
		{
			name: "the vendored htmx is served",
			path: "/static/htmx.min.js", code: 200, want: []string{"htmx 2.", "var htmx="},
		},
		{
			name: "the stylesheet is served with a dark scheme",
			path: "/static/style.css", code: 200, want: []string{"prefers-color-scheme: dark"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, srv.URL+tt.path)
			if code != tt.code {
				t.Fatalf("GET %s: %d, want %d\n%s", tt.path, code, tt.code, body)
			}
			rest := body
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("GET %s: %q missing (or out of order)\n%s", tt.path, w, body)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tt.notWant {
				if strings.Contains(body, w) {
					t.Fatalf("GET %s: %q present, want it absent\n%s", tt.path, w, body)
				}
			}
		})
	}
}

func TestTheHomePageWithNoCompetitionsSaysHowToStart(t *testing.T) {
	srv := newServer(t, newStore(t))
	code, body := get(t, srv.URL+"/")
	if code != 200 || !strings.Contains(body, "No competitions yet") || !strings.Contains(body, "crucible demo --serve") {
		t.Fatalf("GET /: %d\n%s", code, body)
	}
}

func TestPagesAreHTMLAndFragmentsAreNotCached(t *testing.T) {
	f := newFixture(t)
	srv := newServer(t, f.db)
	for _, tt := range []struct {
		name, path, header, want string
	}{
		{"a page is served as UTF-8 HTML", "/c/c-test", "Content-Type", "text/html; charset=utf-8"},
		{"a progress fragment is never cached", "/s/" + f.running + "/progress", "Cache-Control", "no-store"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get(tt.header); got != tt.want {
				t.Fatalf("%s: %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

func TestNewWithoutAStoreIsAnError(t *testing.T) {
	if _, err := web.New(web.Config{}); err == nil {
		t.Fatal("web.New without a store succeeded")
	}
}

// builtinKinds is the server's registry of the built-in kinds.
func builtinKinds(t *testing.T) *kind.Registry {
	t.Helper()
	reg, err := kind.NewRegistry(kinds.Builtin(kinds.Egress{}, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}
