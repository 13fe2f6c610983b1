package store_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

func TestQuotaCountsAreAKeysOwnAndWindowed(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, d.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			c := newCompetition(t, db, 1) // created by ed25519:x at t0
			add := func(submitter string, at time.Time, state competition.State) {
				t.Helper()
				s := competition.Submission{ID: store.NewID("s"), CompetitionID: c.ID, Name: "m", Submitter: submitter,
					CommittedAt: at, State: state, ItemsTotal: 1, UpdatedAt: at}
				if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, s, "") }); err != nil {
					t.Fatal(err)
				}
			}
			add("alice", t0.Add(-25*time.Hour), competition.StateScored) // outside the window
			add("alice", t0.Add(-2*time.Hour), competition.StateRunning)
			add("alice", t0.Add(-time.Hour), competition.StateQueued)
			add("alice", t0, competition.StateFailed)
			add("bob", t0, competition.StateQueued)

			since := t0.Add(-24 * time.Hour)
			var usage map[string]store.KeyUsage
			if err := db.InTx(ctx, func(tx *sql.Tx) (err error) {
				usage, err = db.SubmissionQuotasTx(ctx, tx, []string{"alice", "bob", "carol"}, since)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if a := usage["alice"]; a.Count != 3 || !a.Oldest.Equal(t0.Add(-2*time.Hour)) || a.Open != 2 {
				t.Fatalf("alice's usage in a batch = %+v; want 3, the oldest 2h before t0, 2 open", a)
			}
			if b := usage["bob"]; b.Count != 1 || !b.Oldest.Equal(t0) || b.Open != 1 {
				t.Fatalf("bob's usage in a batch = %+v; want 1 at t0, 1 open", b)
			}
			if c, ok := usage["carol"]; ok {
				t.Fatalf("carol's usage in a batch = %+v; want none", c)
			}
			// Read with a competition's entrants, the same usage.
			var withEntrants map[string]store.KeyUsage
			if err := db.InTx(ctx, func(tx *sql.Tx) (err error) {
				_, _, withEntrants, err = db.EntrantsAndQuotasTx(ctx, tx, c.ID, []string{"x"}, []string{"alice"}, []string{"alice", "bob", "carol"}, since)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if len(withEntrants) != len(usage) {
				t.Fatalf("usage read with the entrants = %+v; want %+v", withEntrants, usage)
			}
			for k, u := range usage {
				if w := withEntrants[k]; w.Count != u.Count || !w.Oldest.Equal(u.Oldest) || w.Open != u.Open {
					t.Fatalf("%s's usage read with the entrants = %+v; want %+v", k, w, u)
				}
			}
			u, err := db.CompetitionsCreatedSince(ctx, "ed25519:x", since)
			if err != nil || u.Count != 1 || !u.Oldest.Equal(t0) {
				t.Fatalf("competitions of ed25519:x = %+v, %v; want 1 at t0", u, err)
			}
			if u, err := db.CompetitionsCreatedSince(ctx, "ed25519:x", t0.Add(time.Second)); err != nil || u.Count != 0 {
				t.Fatalf("competitions after t0 = %+v, %v; want none", u, err)
			}
		})
	}
}

// The counts run on every creating request, so they must not scan tables.
func TestQuotaCountsUseTheirIndexes(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.Databases(t)[0].URL) // SQLite: its plans do not depend on table sizes
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for query, index := range map[string]string{
		`SELECT COUNT(*), COALESCE(MIN(created_at), 0) FROM competitions WHERE created_by = 'k' AND created_at > 0`:   "competitions_by_creator",
		`SELECT COUNT(*), COALESCE(MIN(committed_at), 0) FROM submissions WHERE submitter = 'k' AND committed_at > 0`: "submissions_by_submitter",
		`SELECT COUNT(*) FROM submissions WHERE submitter = 'k' AND state IN ('queued', 'running')`:                   "submissions_by_submitter_state",
	} {
		rows, err := db.SQL().QueryContext(ctx, "EXPLAIN QUERY PLAN "+query)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, "INDEX "+index) {
			t.Errorf("%s\nplan %q does not use %s", query, p, index)
		}
	}
}
