package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/mcq"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// CompetitionResponseHashes is CompetitionResponses hashed, without the
// empty responses, on both databases: read from the hashes stored when a
// submission is scored, and from the item results of one that has none
// (running, or scored before the hashes were stored).
func TestCompetitionResponseHashes(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d)
			now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
			items := []json.RawMessage{json.RawMessage(`{}`), json.RawMessage(`{}`), json.RawMessage(`{}`)}
			newCompetition := func() string {
				c := competition.Competition{ID: store.NewID("c"), Kind: mcq.Name, Title: "t", Config: json.RawMessage(`{}`),
					DatasetName: "d", DatasetDigest: "x", Items: len(items), CreatedBy: "k", CreatedAt: now}
				if err := db.CreateCompetition(ctx, c, items); err != nil {
					t.Fatal(err)
				}
				return c.ID
			}
			c, other := newCompetition(), newCompetition()
			enter := func(cid string, state competition.State, responses ...string) string {
				sub := competition.Submission{ID: store.NewID("s"), CompetitionID: cid, Name: "m", Submitter: "k", Digest: store.NewID("d"),
					CommittedAt: now, State: competition.StateQueued, ItemsTotal: len(items), UpdatedAt: now}
				if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, sub, "") }); err != nil {
					t.Fatal(err)
				}
				for i, r := range responses {
					if err := db.InsertResult(ctx, sub.ID, eval.Result{Index: i, Response: r, Detail: json.RawMessage(`{}`)}); err != nil {
						t.Fatal(err)
					}
				}
				if state != competition.StateQueued {
					card := &competition.Card{Items: len(responses)}
					if ok, err := storetest.SetState(ctx, db, sub.ID, state, "", card, now); err != nil || !ok {
						t.Fatalf("to %s: %v, %v", state, ok, err)
					}
				}
				return sub.ID
			}
			scored := enter(c, competition.StateScored, "x", "", "z")
			legacy := enter(c, competition.StateScored, "x", "y", "z")
			running := enter(c, competition.StateRunning, "x")
			enter(c, competition.StateScored)
			enter(other, competition.StateScored, "x", "y", "z")
			stored := func(id string) int {
				var n int
				if err := db.SQL().QueryRowContext(ctx, rebind(db, `SELECT COUNT(*) FROM response_hashes WHERE submission_id = ?`), id).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if stored(scored) != 1 || stored(running) != 0 {
				t.Fatalf("stored hashes: scored %d, running %d; want 1, 0", stored(scored), stored(running))
			}
			// A submission scored before migration 0014 has no stored hashes.
			if _, err := db.SQL().ExecContext(ctx, rebind(db, `DELETE FROM response_hashes WHERE submission_id = ?`), legacy); err != nil {
				t.Fatal(err)
			}
			responses, err := db.CompetitionResponses(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]map[int]string{}
			for sub, byItem := range responses {
				want[sub] = map[int]string{}
				for i, r := range byItem {
					if r != "" {
						want[sub][i] = store.ResponseHash(r)
					}
				}
			}
			got, err := db.CompetitionResponseHashes(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			for sub := range got {
				if len(got[sub]) == 0 && want[sub] == nil {
					delete(got, sub) // scored without results: no answers either way
				}
			}
			if !maps.EqualFunc(got, want, maps.Equal) || len(got) != 3 {
				t.Fatalf("hashes %v, want %v (three submissions with answers)", got, want)
			}
		})
	}
}

// rebind writes placeholders as db's dialect wants them.
func rebind(db *store.DB, q string) string {
	if db.Dialect() == store.Postgres {
		return strings.Replace(q, "?", "$1", 1)
	}
	return q
}
