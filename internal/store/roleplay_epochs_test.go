package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// Workers planning the same epoch at once all end up with the first
// committed items (not each its own seed), and an evaluation on an epoch is
// stored once while earlier epochs' evaluations stay.
func TestRoleplayEpochsArePlannedOnce(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, d.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			c := newCompetition(t, db, 1)
			var (
				wg  sync.WaitGroup
				mu  sync.Mutex
				got = map[int64]bool{}
			)
			for seed := int64(1); seed <= 6; seed++ {
				wg.Go(func() {
					e, err := db.PutRoleplayEpoch(ctx, store.RoleplayEpoch{CompetitionID: c.ID, Epoch: 9, Seed: seed, SeedSHA256: "h",
						Items: []json.RawMessage{json.RawMessage(`{"id":"x"}`)}, ItemsDigest: "d", Start: t0, End: t0.Add(time.Minute)})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					got[e.Seed] = true
					mu.Unlock()
				})
			}
			wg.Wait()
			if len(got) != 1 {
				t.Fatalf("concurrent planners saw seeds %v; want one", got)
			}
			e, err := db.RoleplayEpoch(ctx, c.ID, 9)
			if err != nil || !got[e.Seed] || len(e.Items) != 1 || !e.End.Equal(t0.Add(time.Minute)) {
				t.Fatalf("stored epoch %+v, %v", e, err)
			}
			if _, err := db.PutRoleplayEpoch(ctx, store.RoleplayEpoch{CompetitionID: c.ID, Epoch: 10, Seed: 5, SeedSHA256: "h", ItemsDigest: "d",
				Start: t0, End: t0}); err != nil {
				t.Fatal(err)
			}
			if list, err := db.RoleplayEpochs(ctx, c.ID, 10); err != nil || len(list) != 2 || list[0].Epoch != 10 {
				t.Fatalf("epochs %+v, %v; want 10 then 9", list, err)
			}

			s := competition.Submission{ID: store.NewID("s"), CompetitionID: c.ID, Name: "m", Submitter: "alice",
				CommittedAt: t0, State: competition.StateScored, ItemsTotal: 1, UpdatedAt: t0}
			if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, s, "") }); err != nil {
				t.Fatal(err)
			}
			for _, ep := range []int64{9, 10} {
				ok, err := db.PutFreshEval(ctx, store.FreshEval{CompetitionID: c.ID, Epoch: ep, SubmissionID: s.ID, Score: float64(ep) / 100,
					Results: []eval.Result{{Index: 0, Score: 0.5, Response: "r"}}, EvaluatedAt: t0})
				if err != nil || !ok {
					t.Fatalf("first evaluation on epoch %d: %v, %v", ep, ok, err)
				}
			}
			if ok, err := db.PutFreshEval(ctx, store.FreshEval{CompetitionID: c.ID, Epoch: 9, SubmissionID: s.ID, Score: 1}); err != nil || ok {
				t.Fatalf("second evaluation on epoch 9 stored: %v, %v", ok, err)
			}
			evals, err := db.FreshEvals(ctx, c.ID, 9)
			if err != nil || len(evals) != 1 || evals[0].Score != 0.09 || len(evals[0].Results) != 1 || evals[0].Results[0].Response != "r" {
				t.Fatalf("epoch 9 evaluations %+v, %v; want the first one", evals, err)
			}
		})
	}
}
