package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/mcq"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// resultsFixture opens db with one submission of n items.
func resultsFixture(t *testing.T, url string, n int) (*store.DB, string) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c := competition.Competition{ID: store.NewID("c"), Kind: mcq.Name, Title: "t", Config: json.RawMessage(`{}`),
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

// Every result written, from several goroutines as the runner's items
// finish, is stored once Close returns, each reported stored exactly once,
// a result stored before (by a crashed run) is kept, and nothing else is
// stored.
func TestResultWriterStoresEveryResultByClose(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			const n = 700
			db, id := resultsFixture(t, d.URL, n)
			defer db.Close()
			ctx := context.Background()
			if err := db.InsertResult(ctx, id, eval.Result{Index: 3, Response: "earlier"}); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			stored := map[int]int{}
			w := newResultWriter(ctx, db, id, 4, func(r eval.Result) {
				mu.Lock()
				stored[r.Index]++
				mu.Unlock()
			})
			var wg sync.WaitGroup
			var sink sync.Mutex // the runner's sink is serialised
			for g := range 4 {
				wg.Go(func() {
					for i := g; i < n; i += 4 {
						sink.Lock()
						err := w.Write(eval.Result{Index: i, Response: "now", Correct: i%2 == 0, Score: float64(i % 2)})
						sink.Unlock()
						if err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if len(stored) != n {
				t.Fatalf("%d results reported stored, want %d", len(stored), n)
			}
			for i, times := range stored {
				if times != 1 {
					t.Fatalf("result %d reported stored %d times", i, times)
				}
			}
			got, err := db.Results(ctx, id, 0, n+1)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Fatalf("%d rows stored, want %d", len(got), n)
			}
			for i, r := range got {
				want := "now"
				if i == 3 {
					want = "earlier"
				}
				if r.Index != i || r.Response != want || r.Correct != (i%2 == 0) {
					t.Fatalf("row %d: %+v, want response %q", i, r, want)
				}
			}
		})
	}
}

// A failed write stops the run: later Writes and Close return its error,
// and no result of the failed write is reported stored.
func TestResultWriterFailedWriteStopsTheRun(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			db, id := resultsFixture(t, d.URL, 8)
			db.Close() // every write fails
			reported := 0
			w := newResultWriter(context.Background(), db, id, 1, func(eval.Result) { reported++ })
			var writeErr error
			for i := 0; i < 8 && writeErr == nil; i++ {
				writeErr = w.Write(eval.Result{Index: i})
				time.Sleep(5 * time.Millisecond) // let the failed write land before the next Write
			}
			closeErr := w.Close()
			if closeErr == nil {
				t.Fatal("Close after failed writes returned no error")
			}
			if writeErr == nil {
				t.Error("Write kept accepting results after a failed write")
			}
			if reported != 0 {
				t.Errorf("%d results of failed writes reported stored", reported)
			}
		})
	}
}
