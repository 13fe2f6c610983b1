package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// The preference tables pass the same suite on both databases.
func TestPreferenceStore(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, d.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			t.Run("tasks, copies and ratings round-trip and the next task is the earliest unrated open one", func(t *testing.T) {
				testPreferenceFlow(t, db)
			})
			t.Run("contributor keys are found by hash and revoked once", func(t *testing.T) { testContributorKeys(t, db) })
			t.Run("the validator secret is generated once", func(t *testing.T) {
				a, err := db.PreferenceSecret(ctx, "copies", func() string { return "first" })
				if err != nil {
					t.Fatal(err)
				}
				b, err := db.PreferenceSecret(ctx, "copies", func() string { return "second" })
				if err != nil {
					t.Fatal(err)
				}
				if a != "first" || b != "first" {
					t.Fatalf("secrets %q, %q; want the first both times", a, b)
				}
			})
		})
	}
}

func testPreferenceFlow(t *testing.T, db *store.DB) {
	ctx := context.Background()
	c := newCompetition(t, db, 0)
	tasks := []store.PreferenceTask{
		{CompetitionID: c.ID, TaskID: "late", Index: 0, Deadline: t0.Add(2 * time.Hour), Task: json.RawMessage(`{"id":"late"}`)},
		{CompetitionID: c.ID, TaskID: "soon", Index: 1, Deadline: t0.Add(time.Hour), Task: json.RawMessage(`{"id":"soon"}`)},
	}
	if err := db.InsertPreferenceTasks(ctx, tasks); err != nil {
		t.Fatal(err)
	}
	if err := db.InsertPreferenceTasks(ctx, tasks); err != nil {
		t.Fatalf("inserting the same tasks again: %v", err)
	}
	got, err := db.PreferenceTasks(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].TaskID != "late" || !got[1].Deadline.Equal(t0.Add(time.Hour)) || string(got[1].Task) != `{"id":"soon"}` {
		t.Fatalf("tasks %+v", got)
	}
	if _, err := db.NextPreferenceCopy(ctx, "m1", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("next task without copies: %v, want ErrNotFound", err)
	}
	for _, id := range []string{"late", "soon"} {
		ok, err := db.InsertPreferenceCopy(ctx, store.PreferenceCopy{CompetitionID: c.ID, TaskID: id, Miner: "m1",
			Copy: json.RawMessage(`{"task_id":"` + id + `"}`), CreatedAt: t0})
		if err != nil || !ok {
			t.Fatalf("insert copy %s: %v %v", id, ok, err)
		}
	}
	if ok, err := db.InsertPreferenceCopy(ctx, store.PreferenceCopy{CompetitionID: c.ID, TaskID: "soon", Miner: "m1",
		Copy: json.RawMessage(`{}`), CreatedAt: t0}); err != nil || ok {
		t.Fatalf("a second copy for the same miner: inserted=%v err=%v, want false, nil", ok, err)
	}
	next, err := db.NextPreferenceCopy(ctx, "m1", t0)
	if err != nil || next.TaskID != "soon" {
		t.Fatalf("next = %+v, %v; want the task with the earlier deadline", next, err)
	}
	r := store.PreferenceRating{CompetitionID: c.ID, TaskID: "soon", Miner: "m1", Contributor: "ck-1", Values: []int{2, 1, 3}, SubmittedAt: t0}
	if err := db.InsertPreferenceRating(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := db.InsertPreferenceRating(ctx, r); !errors.Is(err, store.ErrAlreadyRated) {
		t.Fatalf("second rating: %v, want ErrAlreadyRated", err)
	}
	if next, err = db.NextPreferenceCopy(ctx, "m1", t0); err != nil || next.TaskID != "late" {
		t.Fatalf("after rating: next = %+v, %v; want the other task", next, err)
	}
	if _, err := db.NextPreferenceCopy(ctx, "m1", t0.Add(3*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after every deadline: %v, want ErrNotFound", err)
	}
	ratings, err := db.PreferenceRatings(ctx, c.ID)
	if err != nil || len(ratings) != 1 || ratings[0].Contributor != "ck-1" || len(ratings[0].Values) != 3 || ratings[0].Values[0] != 2 ||
		!ratings[0].SubmittedAt.Equal(t0) {
		t.Fatalf("ratings %+v, %v", ratings, err)
	}
	copies, err := db.PreferenceCopies(ctx, c.ID, "soon")
	if err != nil || len(copies) != 1 || copies[0].Miner != "m1" {
		t.Fatalf("copies %+v, %v", copies, err)
	}
	if _, err := db.PreferenceCopy(ctx, c.ID, "soon", "m2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another miner's copy: %v, want ErrNotFound", err)
	}
}

func testContributorKeys(t *testing.T, db *store.DB) {
	ctx := context.Background()
	k := store.ContributorKey{ID: store.NewID("ck"), Miner: "m1", Label: "alice", Hash: "h1", CreatedAt: t0}
	if err := db.CreateContributorKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	got, err := db.ContributorKeyByHash(ctx, "h1")
	if err != nil || got.ID != k.ID || got.Miner != "m1" || got.Revoked() {
		t.Fatalf("by hash: %+v, %v", got, err)
	}
	if _, err := db.ContributorKeyByHash(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	if _, err := db.RevokeContributorKey(ctx, "m2", k.ID, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another miner revoking: %v, want ErrNotFound", err)
	}
	rev, err := db.RevokeContributorKey(ctx, "m1", k.ID, t0.Add(time.Minute))
	if err != nil || !rev.Revoked() || !rev.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("revoke: %+v, %v", rev, err)
	}
	again, err := db.RevokeContributorKey(ctx, "m1", k.ID, t0.Add(time.Hour))
	if err != nil || !again.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("second revoke moved the time: %+v, %v", again, err)
	}
	list, err := db.ContributorKeys(ctx, "m1")
	if err != nil || len(list) != 1 || !list[0].Revoked() {
		t.Fatalf("list %+v, %v", list, err)
	}
}
