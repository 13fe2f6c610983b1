package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

func TestLeaderboardVersionsAndPages(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, d.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			t.Run("scoring bumps the version, other moves do not", func(t *testing.T) { testLeaderboardVersion(t, db) })
			t.Run("one statement reads the competition, its pool and its version", func(t *testing.T) { testLeaderboardState(t, db) })
			t.Run("submission pages follow the cursor in commit order", func(t *testing.T) { testSubmissionPages(t, db) })
		})
	}
}

func addSubmission(t *testing.T, db *store.DB, c competition.Competition, at time.Time) competition.Submission {
	t.Helper()
	ctx := context.Background()
	s := competition.Submission{ID: store.NewID("s"), CompetitionID: c.ID, Name: "m", Submitter: "ed25519:y", Digest: "d",
		CommittedAt: at, State: competition.StateQueued, ItemsTotal: c.Items, UpdatedAt: at}
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, s, "") }); err != nil {
		t.Fatal(err)
	}
	return s
}

func testLeaderboardVersion(t *testing.T, db *store.DB) {
	ctx := context.Background()
	c := newCompetition(t, db, 2)
	other := newCompetition(t, db, 2)
	version := func(id string) int64 {
		t.Helper()
		v, err := db.LeaderboardVersion(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		st, err := db.LeaderboardState(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Version != v {
			t.Fatalf("LeaderboardState's version = %d, LeaderboardVersion = %d", st.Version, v)
		}
		return v
	}
	if v := version(c.ID); v != 0 {
		t.Fatalf("a new competition's version = %d, want 0", v)
	}
	s := addSubmission(t, db, c, t0)
	if _, err := db.AdvanceSubmission(ctx, s.ID, competition.EventStart, "", nil, t0); err != nil {
		t.Fatal(err)
	}
	if v := version(c.ID); v != 0 {
		t.Fatalf("after queued → running the version = %d, want 0 (nothing ranked changed)", v)
	}
	card := &competition.Card{Score: 1, Items: 2, Correct: 2}
	if _, err := db.AdvanceSubmission(ctx, s.ID, competition.EventComplete, "", card, t0); err != nil {
		t.Fatal(err)
	}
	if v := version(c.ID); v != 1 {
		t.Fatalf("after scoring the version = %d, want 1", v)
	}
	s2 := addSubmission(t, db, c, t0.Add(time.Second))
	for _, ev := range []competition.Event{competition.EventStart, competition.EventComplete} {
		if _, err := db.AdvanceSubmission(ctx, s2.ID, ev, "", card, t0); err != nil {
			t.Fatal(err)
		}
	}
	if v := version(c.ID); v != 2 {
		t.Fatalf("after a second scoring the version = %d, want 2", v)
	}
	if v := version(other.ID); v != 0 {
		t.Fatalf("another competition's version = %d, want 0", v)
	}
	// A refused event changes nothing, so it bumps nothing either.
	if _, err := db.AdvanceSubmission(ctx, s.ID, competition.EventComplete, "", card, t0); err == nil {
		t.Fatal("completing a scored submission again was accepted")
	}
	if v := version(c.ID); v != 2 {
		t.Fatalf("after a refused event the version = %d, want 2", v)
	}
}

func testLeaderboardState(t *testing.T, db *store.DB) {
	ctx := context.Background()
	c := newCompetition(t, db, 3)
	st, err := db.LeaderboardState(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	want, err := db.GetCompetition(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st.Competition, want) || st.Pool != nil || st.Version != 0 {
		t.Fatalf("LeaderboardState = %+v, want %+v, no pool, version 0", st, want)
	}
	if _, err := db.LeaderboardState(ctx, "c-missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a missing competition's state: %v, want ErrNotFound", err)
	}
	pc := competition.Competition{ID: store.NewID("c"), Kind: c.Kind, Title: "pool", Config: c.Config, DatasetName: "d",
		DatasetDigest: "d", CreatedBy: "ed25519:x", CreatedAt: t0}
	p := competition.Pool{CompetitionID: pc.ID, Funder: "ed25519:f", Asset: "USDC", Amount: 100, Rule: "winner",
		Start: t0, End: t0.Add(time.Hour), PrivateFraction: 0.25, Seed: 1 << 63}
	items := []json.RawMessage{json.RawMessage(`{"n":1}`), json.RawMessage(`{"n":2}`)}
	if err := db.InTx(ctx, func(tx *sql.Tx) error {
		if err := db.CreateCompetitionTx(ctx, tx, pc, items); err != nil {
			return err
		}
		return db.CreatePoolTx(ctx, tx, p)
	}); err != nil {
		t.Fatal(err)
	}
	st, err = db.LeaderboardState(ctx, pc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pool == nil || st.Pool.State != competition.PoolOpen || st.Pool.PrivateFraction != 0.25 || st.Pool.Seed != 1<<63 || st.Competition.Items != 2 {
		t.Fatalf("a pool's state = %+v (pool %+v), want open, fraction 0.25, seed 1<<63, 2 items", st, st.Pool)
	}
}

func testSubmissionPages(t *testing.T, db *store.DB) {
	ctx := context.Background()
	c := newCompetition(t, db, 1)
	var want []string
	for i := 0; i < 5; i++ {
		// Two share a commit time: the id breaks the tie, as in ListSubmissions.
		want = append(want, addSubmission(t, db, c, t0.Add(time.Duration(i/2)*time.Second)).ID)
	}
	all, err := db.ListSubmissions(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		page, err := db.ListSubmissionsPage(ctx, c.ID, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page {
			got = append(got, s.ID)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].ID
	}
	if len(got) != len(all) || len(got) != len(want) {
		t.Fatalf("pages gave %d submissions, the list %d, want %d", len(got), len(all), len(want))
	}
	for i := range all {
		if got[i] != all[i].ID {
			t.Fatalf("page order %v differs from list order at %d (%s)", got, i, all[i].ID)
		}
	}
	other := newCompetition(t, db, 1)
	if _, err := db.ListSubmissionsPage(ctx, other.ID, want[0], 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a cursor from another competition: err = %v, want ErrNotFound", err)
	}
	for _, limit := range []int{0, store.MaxSubmissionsPage + 1} {
		if _, err := db.ListSubmissionsPage(ctx, c.ID, "", limit); err == nil {
			t.Fatalf("limit %d accepted", limit)
		}
	}
}
