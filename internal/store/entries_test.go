package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"crucible/internal/competition"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// TestEntryLookupsServeANewCompetition replays what a new competition's
// first burst of entries meets: thousands of entries in a table with no
// statistics at all (a new hub's first minute), then in a competition
// newer than the statistics (PostgreSQL's autovacuum analyzes a table again
// only after a tenth of it has changed). The entry check's lookups by
// digest and by key must go through their own indexes, in the plan for the
// values and in the generic plan a connection may cache, and never walk the
// competition's entries or the table. It fails on indexes led by the
// competition (PostgreSQL took the competition it had no statistics for to
// hold one row and filtered all its entries on each batch) and on IN lists
// over the new indexes (with no statistics, a list of 21 was guessed to
// match a tenth of the table, which it then scanned).
func TestEntryLookupsServeANewCompetition(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d)
			const n = 3000
			enter := func(c competition.Competition) (digests, keys []string) {
				t.Helper()
				var subs []competition.Submission
				for i := range n {
					s := competition.Submission{ID: store.NewID("s"), CompetitionID: c.ID, Name: "m", Submitter: fmt.Sprintf("ed25519:%s-%d", c.ID, i),
						Digest: fmt.Sprintf("%s%060x", c.ID[2:6], i), CommittedAt: t0, State: competition.StateQueued, ItemsTotal: 1, UpdatedAt: t0}
					subs, digests, keys = append(subs, s), append(digests, s.Digest), append(keys, s.Submitter)
				}
				for i := 0; i < n; i += 100 { // SQLite bounds a statement's variables
					if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionsTx(ctx, tx, subs[i:i+100], make([]string, 100)) }); err != nil {
						t.Fatal(err)
					}
				}
				return digests, keys
			}
			// First a table with no statistics at all (a new hub's first
			// minute), then statistics that predate the competition.
			fresh := newCompetition(t, db, 1)
			digests, keys := enter(fresh)
			checkEntryPlans(t, db, d.Name, fresh.ID, digests, keys, "no statistics")
			if _, err := db.SQL().ExecContext(ctx, "ANALYZE"); err != nil {
				t.Fatal(err)
			}
			c := newCompetition(t, db, 1)
			digests, keys = enter(c)
			checkEntryPlans(t, db, d.Name, c.ID, digests, keys, "statistics from before the competition")
		})
	}
}

// checkEntryPlans fails t unless the entry check's plans for batches of 1
// and 21 entries of competition id use the entry indexes and walk neither
// the table nor the competition.
func checkEntryPlans(t *testing.T, db *store.DB, dbName, id string, digests, keys []string, when string) {
	t.Helper()
	modes := []string{"force_custom_plan", "force_generic_plan"}
	if dbName == "sqlite" {
		modes = modes[:1]
	}
	for _, mode := range modes {
		for _, batch := range []int{1, 21} {
			plan, err := db.EntrantsPlan(context.Background(), id, digests[:batch], keys[:batch], keys[:batch], t0, mode)
			if err != nil {
				t.Fatal(err)
			}
			for _, index := range []string{"submissions_by_entry_digest", "submissions_by_entry_key"} {
				if !strings.Contains(plan, index) {
					t.Errorf("%s, %s, %d entries: the plan does not use %s:\n%s", when, mode, batch, index, plan)
				}
			}
			for _, walk := range []string{"Seq Scan", "SCAN submissions", "submissions_by_competition"} {
				if strings.Contains(plan, walk) {
					t.Errorf("%s, %s, %d entries: the plan walks the table or the competition (%s):\n%s", when, mode, batch, walk, plan)
				}
			}
		}
	}
}
