package store_test

import (
	"context"
	"crucible/internal/eval/mcq"
	"database/sql"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// A preference reward's close is claimed once, on both databases, and the
// responses of a competition's submissions come back by submission.
func TestPreferenceRewardsAndResponses(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, d.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
			c := competition.Competition{ID: store.NewID("c"), Kind: mcq.Name, Title: "t", Config: json.RawMessage(`{}`),
				DatasetName: "d", DatasetDigest: "x", Items: 2, CreatedBy: "k", CreatedAt: now}
			if err := db.CreateCompetition(ctx, c, []json.RawMessage{json.RawMessage(`{}`), json.RawMessage(`{}`)}); err != nil {
				t.Fatal(err)
			}

			err = db.InTx(ctx, func(tx *sql.Tx) error {
				return db.CreatePreferenceRewardTx(ctx, tx, store.PreferenceReward{CompetitionID: c.ID, Funder: "k", Asset: "USDC", Amount: 10, CreatedAt: now})
			})
			if err != nil {
				t.Fatal(err)
			}
			claim := func(record string) bool {
				var ok bool
				err := db.InTx(ctx, func(tx *sql.Tx) (err error) {
					ok, err = db.ClaimPreferenceCloseTx(ctx, tx, c.ID, json.RawMessage(record), now.Add(time.Hour))
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			if open, err := db.OpenPreferenceRewards(ctx); err != nil || len(open) != 1 {
				t.Fatalf("open rewards %v, %v; want one", open, err)
			}
			if !claim(`{"n":1}`) || claim(`{"n":2}`) {
				t.Fatal("want the first claim only to succeed")
			}
			r, err := db.PreferenceReward(ctx, c.ID)
			if err != nil || r.ClosedAt == nil || string(r.Record) != `{"n":1}` || r.Amount != 10 {
				t.Fatalf("reward %+v (%v); want closed with the first record", r, err)
			}
			if open, err := db.OpenPreferenceRewards(ctx); err != nil || len(open) != 0 {
				t.Fatalf("open rewards after the close: %v, %v", open, err)
			}
			if _, err := db.PreferenceReward(ctx, "c-none"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("missing reward: %v", err)
			}

			var subs []string
			for i, text := range []string{"alpha", "beta"} {
				sub := competition.Submission{ID: store.NewID("s"), CompetitionID: c.ID, Name: text, Submitter: "k", Digest: text,
					CommittedAt: now.Add(time.Duration(i) * time.Second), State: competition.StateQueued, ItemsTotal: 2, UpdatedAt: now}
				err := db.InTx(ctx, func(tx *sql.Tx) error {
					var locks store.Locks
					locks.Entrants(c.ID, []string{text}, []string{"k"})
					if err := db.LockTx(ctx, tx, &locks); err != nil {
						return err
					}
					return db.CreateSubmissionTx(ctx, tx, sub, "")
				})
				if err != nil {
					t.Fatal(err)
				}
				for idx := range 2 {
					if err := db.InsertResult(ctx, sub.ID, eval.Result{Index: idx, Response: text, Detail: json.RawMessage(`{}`)}); err != nil {
						t.Fatal(err)
					}
				}
				subs = append(subs, sub.ID)
			}
			got, err := db.CompetitionResponses(ctx, c.ID)
			if err != nil || len(got) != 2 || got[subs[0]][1] != "alpha" || got[subs[1]][0] != "beta" {
				t.Fatalf("responses %v (%v)", got, err)
			}
		})
	}
}
