package store_test

import (
	"context"
	"crucible/internal/eval/mcq"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/identity"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// The one suite both databases must pass.
func TestStoreSuite(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, d.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			t.Run("migrations apply once and reopening is harmless", func(t *testing.T) {
				again, err := store.Open(ctx, d.URL)
				if err != nil {
					t.Fatal(err)
				}
				again.Close()
			})
			t.Run("competitions round-trip with their items", func(t *testing.T) { testCompetitions(t, db) })
			t.Run("a failed competition insert leaves nothing behind", func(t *testing.T) { testCompetitionRollback(t, db) })
			t.Run("a batched import reads back in order", func(t *testing.T) { testImportRoundTrip(t, db) })
			t.Run("an import failing at its last row leaves nothing behind", func(t *testing.T) { testImportFailsAtLastRow(t, db) })
			t.Run("submissions, states and results", func(t *testing.T) { testSubmissions(t, db) })
			t.Run("a batch of results is stored idempotently", func(t *testing.T) { testInsertResults(t, db) })
			t.Run("nonces are accepted once", func(t *testing.T) { testNonces(t, db) })
			t.Run("repository bundles are stored by digest", func(t *testing.T) { testRepoBundles(t, db) })
		})
	}
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func newCompetition(t *testing.T, db *store.DB, items int) competition.Competition {
	t.Helper()
	c := competition.Competition{
		ID: store.NewID("c"), Kind: mcq.Name, Title: "SIQA", Config: json.RawMessage(`{"mode":"generative"}`),
		DatasetName: "siqa", DatasetDigest: "abc", CreatedBy: "ed25519:x", CreatedAt: t0,
	}
	var payloads []json.RawMessage
	for i := 0; i < items; i++ {
		payloads = append(payloads, json.RawMessage(`{"n":`+string(rune('0'+i%10))+`}`))
	}
	if err := db.CreateCompetition(context.Background(), c, payloads); err != nil {
		t.Fatal(err)
	}
	c.Items = items
	return c
}

func testCompetitions(t *testing.T, db *store.DB) {
	ctx := context.Background()
	c := newCompetition(t, db, 3)
	got, err := db.GetCompetition(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != c.Title || got.Items != 3 || !got.CreatedAt.Equal(t0) || string(got.Config) != string(c.Config) {
		t.Fatalf("got %+v, want %+v", got, c)
	}
	items, err := db.CompetitionItems(ctx, c.ID)
	if err != nil || len(items) != 3 || string(items[2]) != `{"n":2}` {
		t.Fatalf("items = %s, %v", items, err)
	}
	list, err := db.ListCompetitions(ctx)
	if err != nil || len(list) == 0 {
		t.Fatalf("list = %v, %v", list, err)
	}
	if _, err := db.GetCompetition(ctx, "c-missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing competition: %v, want ErrNotFound", err)
	}
}

func testCompetitionRollback(t *testing.T, db *store.DB) {
	ctx := context.Background()
	c := newCompetition(t, db, 1)
	// The same id again: the competition insert fails, and so must everything with it.
	err := db.CreateCompetition(ctx, c, []json.RawMessage{json.RawMessage(`{}`), json.RawMessage(`{}`)})
	if err == nil {
		t.Fatal("a duplicate competition id was accepted")
	}
	items, _ := db.CompetitionItems(ctx, c.ID)
	if len(items) != 1 {
		t.Fatalf("after a failed insert the competition has %d items, want the original 1", len(items))
	}
}

func testSubmissions(t *testing.T, db *store.DB) {
	ctx := context.Background()
	c := newCompetition(t, db, 4)
	s := competition.Submission{
		ID: store.NewID("s"), CompetitionID: c.ID, Name: "oracle", Submitter: "ed25519:y",
		Model:  competition.ModelSpec{BaseURL: "http://127.0.0.1:9/v1", Model: "baseline-oracle"},
		Digest: "d1", CommittedAt: t0, State: competition.StateQueued, ItemsTotal: 4, UpdatedAt: t0,
	}
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, s, "sk-secret") }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		r := eval.Result{Index: i, Prompt: "p", Response: "A", Prediction: "A", Correct: i != 1, Score: float64(i % 2), Started: t0, Ended: t0.Add(time.Millisecond), LatencyMS: 1}
		if i != 1 {
			r.Score = 1
		} else {
			r.Score = 0
		}
		if err := db.InsertResult(ctx, s.ID, r); err != nil {
			t.Fatal(err)
		}
		// A retried job writes the same item again: ignored.
		r.Response = "changed"
		if err := db.InsertResult(ctx, s.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.GetSubmission(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ItemsDone != 3 || got.Model != s.Model || got.State != competition.StateQueued || !got.CommittedAt.Equal(t0) {
		t.Fatalf("got %+v", got)
	}
	done, _ := db.DoneItems(ctx, s.ID)
	if len(done) != 3 || !done[2] || done[3] {
		t.Fatalf("done = %v", done)
	}
	results, _ := db.Results(ctx, s.ID, 1, 10)
	if len(results) != 2 || results[0].Index != 1 || results[0].Response != "A" || results[0].Correct {
		t.Fatalf("results page = %+v", results)
	}
	scores, correct, _ := db.ItemScores(ctx, s.ID)
	if len(scores) != 3 || correct != 2 || scores[1] != 0 || scores[2] != 1 {
		t.Fatalf("scores = %v correct %d", scores, correct)
	}
	secret, _ := db.SubmissionSecret(ctx, s.ID)
	if secret != "sk-secret" {
		t.Fatalf("secret = %q", secret)
	}
	card := &competition.Card{Score: 0.5, CILow: 0.1, CIHigh: 0.9, Items: 4, Correct: 2}
	if st, err := db.AdvanceSubmission(ctx, s.ID, competition.EventComplete, "", card, t0.Add(time.Minute)); err == nil {
		t.Fatalf("a queued submission completed without running: %s", st)
	}
	if st, err := db.AdvanceSubmission(ctx, s.ID, competition.EventStart, "", nil, t0.Add(time.Minute)); st != competition.StateRunning || err != nil {
		t.Fatalf("starting: %s %v", st, err)
	}
	if st, err := db.AdvanceSubmission(ctx, s.ID, competition.EventComplete, "", card, t0.Add(time.Minute)); st != competition.StateScored || err != nil {
		t.Fatalf("scoring: %s %v", st, err)
	}
	if _, err := db.AdvanceSubmission(ctx, s.ID, competition.EventStart, "", nil, t0.Add(2*time.Minute)); !errors.Is(err, competition.ErrFinalState) {
		t.Fatalf("a scored submission started again: %v", err)
	}
	if _, err := db.AdvanceSubmission(ctx, "s-missing", competition.EventStart, "", nil, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a missing submission: %v, want ErrNotFound", err)
	}
	list, _ := db.ListSubmissions(ctx, c.ID)
	if len(list) != 1 || list[0].State != competition.StateScored || *list[0].Card != *card {
		t.Fatalf("list = %+v", list)
	}
}

func testNonces(t *testing.T, db *store.DB) {
	ctx := context.Background()
	exp := time.Now().Add(5 * time.Minute)
	if err := db.UseNonce(ctx, "k", "n1", exp); err != nil {
		t.Fatal(err)
	}
	if err := db.UseNonce(ctx, "k", "n1", exp); !errors.Is(err, identity.ErrNonceReused) {
		t.Fatalf("second use: %v, want ErrNonceReused", err)
	}
	if err := db.UseNonce(ctx, "other", "n1", exp); err != nil {
		t.Fatalf("another key's nonce: %v", err)
	}
	// Concurrent uses are inserted in batches: of the uses of one nonce,
	// those in one batch included, exactly one is accepted.
	const nonces, uses = 20, 4
	var mu sync.Mutex
	var wg sync.WaitGroup
	accepted := map[string]int{}
	for n := 0; n < nonces; n++ {
		for range uses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				nonce := fmt.Sprintf("c%d", n)
				err := db.UseNonce(ctx, "k", nonce, exp)
				if err != nil && !errors.Is(err, identity.ErrNonceReused) {
					t.Errorf("use %s: %v", nonce, err)
				}
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					accepted[nonce]++
				}
			}()
		}
	}
	wg.Wait()
	for n := 0; n < nonces; n++ {
		if got := accepted[fmt.Sprintf("c%d", n)]; got != 1 {
			t.Errorf("nonce c%d accepted %d times of %d concurrent uses, want once", n, got, uses)
		}
	}
}

func testRepoBundles(t *testing.T, db *store.DB) {
	ctx := context.Background()
	data := []byte("# v2 git bundle\n\x00\xff binary")
	digest, err := db.PutRepoBundle(ctx, data, "k-1", t0)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := db.PutRepoBundle(ctx, data, "k-2", t0); err != nil || again != digest {
		t.Fatalf("storing the same bytes again: %s, %v; want %s", again, err, digest)
	}
	got, err := db.RepoBundle(ctx, digest)
	if err != nil || string(got) != string(data) {
		t.Fatalf("bundle %q, %v; want the stored bytes", got, err)
	}
	if _, err := db.RepoBundle(ctx, strings.Repeat("0", 64)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unknown digest: %v, want ErrNotFound", err)
	}
}

func testInsertResults(t *testing.T, db *store.DB) {
	ctx := context.Background()
	c := newCompetition(t, db, 4)
	s := competition.Submission{
		ID: store.NewID("s"), CompetitionID: c.ID, Name: "batched", Submitter: "ed25519:y",
		Model:  competition.ModelSpec{BaseURL: "http://127.0.0.1:9/v1", Model: "baseline-oracle"},
		Digest: "d-batch", CommittedAt: t0, State: competition.StateQueued, ItemsTotal: 4, UpdatedAt: t0,
	}
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, s, "sk") }); err != nil {
		t.Fatal(err)
	}
	res := func(i int, response string) eval.Result {
		return eval.Result{Index: i, Prompt: "p", Response: response, Score: 1, Correct: true, Started: t0, Ended: t0}
	}
	if err := db.InsertResult(ctx, s.ID, res(0, "first")); err != nil {
		t.Fatal(err)
	}
	// A rerun's batch repeats item 0, and repeats item 1 within itself: the first write of each stays.
	if err := db.InsertResults(ctx, s.ID, []eval.Result{res(0, "again"), res(1, "one"), res(2, "two"), res(1, "dup")}); err != nil {
		t.Fatal(err)
	}
	if err := db.InsertResults(ctx, s.ID, nil); err != nil {
		t.Fatal(err)
	}
	got, err := db.Results(ctx, s.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"first", "one", "two"}
	if len(got) != len(want) {
		t.Fatalf("%d results stored, want %d: %+v", len(got), len(want), got)
	}
	for i, r := range got {
		if r.Index != i || r.Response != want[i] {
			t.Fatalf("result %d = %d %q, want %d %q", i, r.Index, r.Response, i, want[i])
		}
	}
}
