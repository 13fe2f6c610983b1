package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// InsertResults, the evaluate worker's batched write, must store exactly
// what InsertResult called once per result stores: the same rows, the
// same fields, and a result already stored kept as it was (a rerun after a
// crash writes nothing twice), across the split into several statements.
func TestInsertResultsEqualsOneByOne(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d)
			const n = 1100 // three statements of at most 500 rows
			c := newCompetition(t, db, n)
			newSub := func() string {
				s := competition.Submission{ID: store.NewID("s"), CompetitionID: c.ID, Name: "m", Submitter: "ed25519:y",
					Model: competition.ModelSpec{BaseURL: "http://127.0.0.1:9/v1", Model: "m-" + store.NewID("m")}, Digest: "d",
					CommittedAt: t0, State: competition.StateQueued, ItemsTotal: n, UpdatedAt: t0}
				if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, s, "") }); err != nil {
					t.Fatal(err)
				}
				return s.ID
			}
			result := func(i int, response string) eval.Result {
				r := eval.Result{Index: i, Prompt: fmt.Sprintf("prompt %d", i), Response: response, Prediction: "B", Correct: i%3 == 0,
					Score: float64(i%3) / 2, Started: t0.Add(time.Duration(i) * time.Millisecond), Ended: t0.Add(time.Duration(i+7) * time.Millisecond),
					LatencyMS: int64(i % 50), PromptTokens: i, CompletionTokens: 2 * i}
				if i%4 == 0 {
					r.Detail = json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))
				}
				return r
			}
			// Items 5, 600 and 1099 were stored before (by a crashed run).
			earlier := []int{5, 600, 1099}
			batched, single := newSub(), newSub()
			for _, id := range []string{batched, single} {
				for _, i := range earlier {
					if err := db.InsertResult(ctx, id, result(i, "first")); err != nil {
						t.Fatal(err)
					}
				}
			}
			var all []eval.Result
			for i := n - 1; i >= 0; i-- { // completion order, not item order
				all = append(all, result(i, "again"))
			}
			if err := db.InsertResults(ctx, batched, all); err != nil {
				t.Fatal(err)
			}
			for _, r := range all {
				if err := db.InsertResult(ctx, single, r); err != nil {
					t.Fatal(err)
				}
			}
			got, err := db.Results(ctx, batched, 0, n+1)
			if err != nil {
				t.Fatal(err)
			}
			want, err := db.Results(ctx, single, 0, n+1)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n || !reflect.DeepEqual(got, want) {
				t.Fatalf("batched insert stored %d rows, one by one %d; equal: %v", len(got), len(want), reflect.DeepEqual(got, want))
			}
			for _, i := range earlier {
				if got[i].Response != "first" {
					t.Errorf("item %d stored earlier was overwritten: %q", i, got[i].Response)
				}
			}
			if got[7].Response != "again" || got[8].Detail == nil || got[9].Detail != nil {
				t.Errorf("fields not stored: %+v %+v %+v", got[7], got[8], got[9])
			}
			sub, err := db.GetSubmission(ctx, batched)
			if err != nil || sub.ItemsDone != n {
				t.Fatalf("items done %d (%v), want %d", sub.ItemsDone, err, n)
			}
		})
	}
}
