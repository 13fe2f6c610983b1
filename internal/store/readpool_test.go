package store_test

import (
	"context"
	"errors"
	"testing"

	"crucible/internal/competition"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// The competition and leaderboard-state reads run on SQLite's read-only
// pool beside the writer: each must see every transaction committed before
// it began, as a read on the writer's connection would, or a leaderboard
// read right after a scoring would be served the old ranking under the new
// one's version, or a new competition would refuse its first entries.
func TestHotReadsSeeEachCommitAtOnce(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d)
			board := newCompetition(t, db, 1)
			for i := 1; i <= 20; i++ {
				c := newCompetition(t, db, 1)
				if got, pool, err := db.CompetitionToEnter(ctx, c.ID); err != nil || got.ID != c.ID || pool {
					t.Fatalf("competition %s just created: %+v, pool %v, %v", c.ID, got, pool, err)
				}
				s := addSubmission(t, db, board, t0)
				for _, ev := range []competition.Event{competition.EventStart, competition.EventComplete} {
					if _, err := db.AdvanceSubmission(ctx, s.ID, ev, "", &competition.Card{Score: 1, Items: 1, Correct: 1}, t0); err != nil {
						t.Fatal(err)
					}
				}
				if st, err := db.LeaderboardState(ctx, board.ID); err != nil || st.Version != int64(i) {
					t.Fatalf("after %d scorings the leaderboard state reads version %d (%v); want %d", i, st.Version, err, i)
				}
			}
		})
	}
}

// SQLite's read pool must not write: a write there would take the write
// lock beside the one writer connection and could fail as busy.
func TestSQLiteReadPoolIsReadOnly(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir()+"/crucible.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := store.ReadPool(db)
	if r == db.SQL() {
		t.Fatal("SQLite reads share the writer's pool")
	}
	if _, err := r.ExecContext(ctx, `INSERT INTO request_nonces (key_id, nonce, expires_at) VALUES ('k', 'n', 0)`); err == nil {
		t.Fatal("the read pool wrote a row")
	}
	var n int
	if err := r.QueryRowContext(ctx, `SELECT COUNT(*) FROM request_nonces`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("request_nonces holds %d rows, %v; want 0 and a working read", n, err)
	}
}

// A competition is read once per process for entry (its row is never
// updated or deleted): a second read answers without the database, with a
// configuration of its own. A missing one is not remembered as missing:
// another process may create it.
func TestCompetitionToEnterReadsOnce(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d)
			later := newCompetition(t, db, 0)
			later.ID = store.NewID("c")
			if _, _, err := db.CompetitionToEnter(ctx, later.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("missing competition: %v", err)
			}
			if err := db.CreateCompetition(ctx, later, nil); err != nil {
				t.Fatal(err)
			}
			if got, _, err := db.CompetitionToEnter(ctx, later.ID); err != nil || got.ID != later.ID {
				t.Fatalf("competition created after a miss: %+v, %v", got, err)
			}
			// Gone from the database (which the hub never does), it is
			// still answered: the first read was the only one.
			if _, err := db.SQL().ExecContext(ctx, `DELETE FROM competitions WHERE id = '`+later.ID+`'`); err != nil {
				t.Fatal(err)
			}
			got, pool, err := db.CompetitionToEnter(ctx, later.ID)
			if err != nil || got.ID != later.ID || pool || string(got.Config) != string(later.Config) {
				t.Fatalf("second read: %+v, pool %v, %v", got, pool, err)
			}
			got.Config[0] = 'X'
			if again, _, _ := db.CompetitionToEnter(ctx, later.ID); string(again.Config) != string(later.Config) {
				t.Fatalf("a caller's change reached the cache: %s", again.Config)
			}
		})
	}
}
