package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"runtime"
	"sync"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// newResultsFixture opens each test database with one submission of n items.
func newResultsFixture(t *testing.T, url string, n int) (*store.DB, string) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c := competition.Competition{ID: store.NewID("c"), Kind: "mcq", Title: "t", Config: json.RawMessage(`{}`),
		DatasetName: "d", DatasetDigest: "x", Items: n, CreatedBy: "k", CreatedAt: now}
	raw := make([]json.RawMessage, n)
	for i := range raw {
		raw[i] = json.RawMessage(`{}`)
	}
	if err := db.CreateCompetition(ctx, c, raw); err != nil {
		t.Fatal(err)
	}
	sub := competition.Submission{ID: store.NewID("s"), CompetitionID: c.ID, Name: "m", Submitter: "k",
		Model: competition.ModelSpec{BaseURL: "http://127.0.0.1:1/v1", Model: "m"}, Digest: "d", CommittedAt: now,
		State: competition.StateQueued, ItemsTotal: n, UpdatedAt: now}
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, sub, "") }); err != nil {
		t.Fatal(err)
	}
	return db, sub.ID
}

func TestResultWriterStoresEveryResultOnce(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			const n = 300
			db, id := newResultsFixture(t, d.URL, n)
			var mu sync.Mutex
			written := map[int]int{}
			w := newResultWriter(context.Background(), db, id, func(r eval.Result) {
				mu.Lock()
				written[r.Index]++
				mu.Unlock()
			})
			// Many adders, as runner.Run's workers (serialised there; here
			// concurrent, which the writer must survive too).
			var wg sync.WaitGroup
			for g := range 6 {
				wg.Go(func() {
					for i := g; i < n; i += 6 {
						if err := w.add(eval.Result{Index: i, Response: "A", Correct: true, Score: 1}); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			if err := w.close(); err != nil {
				t.Fatal(err)
			}
			got, err := db.Results(context.Background(), id, 0, n+1)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Fatalf("%d results stored, want %d", len(got), n)
			}
			for i, r := range got {
				if r.Index != i || written[i] != 1 {
					t.Fatalf("result %d: index %d, reported written %d times", i, r.Index, written[i])
				}
			}
		})
	}
}

func TestResultWriterReportsAFailedWrite(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			db, id := newResultsFixture(t, d.URL, 4)
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // every write fails
			var written int
			w := newResultWriter(ctx, db, id, func(eval.Result) { written++ })
			if err := w.add(eval.Result{Index: 0}); err != nil {
				t.Fatal(err)
			}
			// Once the write failed, the next add stops the run.
			for w.add(eval.Result{Index: 1}) == nil {
				runtime.Gosched()
			}
			if err := w.close(); err == nil {
				t.Fatal("close reported no error after a failed write")
			}
			if written != 0 {
				t.Fatalf("%d results reported written", written)
			}
			if done, err := db.DoneItems(context.Background(), id); err != nil || len(done) != 0 {
				t.Fatalf("done items %v (%v), want none", done, err)
			}
		})
	}
}
