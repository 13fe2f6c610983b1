package intake_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/intake"
	"crucible/internal/kind"
	"crucible/internal/kind/kindtest"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// queue records the evaluations enqueued, or fails them with err.
type queue struct {
	ids []string
	err error
}

func (q *queue) EnqueueEvaluationsTx(_ context.Context, _ *sql.Tx, ids []string) error {
	if q.err != nil {
		return q.err
	}
	q.ids = append(q.ids, ids...)
	return nil
}

// silent is a kind that takes no submissions (as preference does).
type silent struct{ kindtest.Echo }

func (silent) Name() string      { return "silent" }
func (silent) Entry() kind.Entry { return kind.EntryNone }

type fixture struct {
	db  *store.DB
	q   *queue
	svc *intake.Service
}

func each(t *testing.T, run func(t *testing.T, f *fixture)) {
	eachWith(t, []kind.Kind{kindtest.Echo{}, silent{}}, run)
}

// eachWith runs run against every test database with the kinds registered.
func eachWith(t *testing.T, kinds []kind.Kind, run func(t *testing.T, f *fixture)) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			db, err := store.Open(context.Background(), d.URL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			reg, err := kind.NewRegistry(kinds...)
			if err != nil {
				t.Fatal(err)
			}
			q := &queue{}
			clk := clock.NewFake(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
			run(t, &fixture{db: db, q: q, svc: intake.New(intake.Config{DB: db, Kinds: reg, Evaluations: q, Clock: clk})})
		})
	}
}

func (f *fixture) create(t *testing.T, k competition.Kind) competition.Competition {
	t.Helper()
	c, err := f.svc.CreateCompetition(context.Background(), intake.NewCompetition{Kind: k, CreatedBy: "ed25519:creator",
		Spec: kind.Spec{Title: "  echoes  ", DatasetName: "words", Dataset: []byte("\"a\"\n\"b\"\n")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func model(c competition.Competition, by, name string) intake.Entry {
	return intake.Entry{CompetitionID: c.ID, Submitter: by, BaseURL: "http://127.0.0.1:9/v1", Model: name, Limit: 2}
}

func TestCreateCompetition(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		c := f.create(t, "echo")
		got, err := f.db.GetCompetition(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Title != "echoes" || got.Items != 2 || got.CreatedBy != "ed25519:creator" || got.DatasetName != "words" {
			t.Errorf("stored %+v", got)
		}
		_, err = f.svc.CreateCompetition(ctx, intake.NewCompetition{Kind: "echo", Spec: kind.Spec{Title: "empty", DatasetName: "words"}}, nil)
		if !errors.Is(err, intake.ErrInvalid) || err.Error() != "dataset words: no items" {
			t.Errorf("empty dataset: %v, want ErrInvalid with the kind's reason", err)
		}
		// What also does is part of the competition's transaction: its
		// failure leaves no competition.
		boom := errors.New("escrow refused")
		_, err = f.svc.CreateCompetition(ctx, intake.NewCompetition{Kind: "echo", Spec: kind.Spec{Title: "x", Dataset: []byte(`"a"`)}},
			func(context.Context, *sql.Tx, competition.Competition) error { return boom })
		if err != boom {
			t.Errorf("also's error: %v, want it as is", err)
		}
		if list, err := f.db.ListCompetitions(ctx); err != nil || len(list) != 1 {
			t.Errorf("competitions %v (%v), want only the first", list, err)
		}
	})
}

func TestSubmitEnqueuesInOneTransaction(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		c := f.create(t, "echo")
		sub, err := f.svc.Submit(ctx, model(c, "ed25519:a", " m1 "))
		if err != nil {
			t.Fatal(err)
		}
		if sub.Name != "m1" || sub.State != competition.StateQueued || sub.ItemsTotal != 2 || !slices.Equal(f.q.ids, []string{sub.ID}) {
			t.Errorf("submission %+v, enqueued %v", sub, f.q.ids)
		}
		// A failed enqueue rolls the submission back: none exists without its job.
		f.q.err = errors.New("queue down")
		if _, err := f.svc.Submit(ctx, model(c, "ed25519:a", "m2")); !errors.Is(err, f.q.err) {
			t.Fatalf("submit with the queue down: %v", err)
		}
		if subs, err := f.db.ListSubmissions(ctx, c.ID); err != nil || len(subs) != 1 {
			t.Errorf("submissions after a failed enqueue: %d (%v), want 1", len(subs), err)
		}
	})
}

func TestSubmitRefusals(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		c := f.create(t, "echo")
		for _, name := range []string{"m1", "m2"} {
			if _, err := f.svc.Submit(ctx, model(c, "ed25519:a", name)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := f.svc.Submit(ctx, model(c, "ed25519:b", "m1"))
		if !errors.Is(err, intake.ErrConflict) || !errors.Is(err, competition.ErrDuplicateEntry) {
			t.Errorf("same model again: %v, want ErrConflict and ErrDuplicateEntry", err)
		}
		_, err = f.svc.Submit(ctx, model(c, "ed25519:a", "m3"))
		if !errors.Is(err, intake.ErrConflict) || !errors.Is(err, competition.ErrEntryLimit) {
			t.Errorf("third entry of a key limited to 2: %v, want ErrConflict and ErrEntryLimit", err)
		}
		unlimited := model(c, "ed25519:a", "m3")
		unlimited.Limit = 0
		if _, err := f.svc.Submit(ctx, unlimited); err != nil {
			t.Errorf("entry without a limit: %v", err)
		}
		noModel := model(c, "ed25519:b", " ")
		if _, err := f.svc.Submit(ctx, noModel); !errors.Is(err, intake.ErrInvalid) {
			t.Errorf("no model: %v, want ErrInvalid", err)
		}
		patch := intake.Entry{CompetitionID: c.ID, Submitter: "ed25519:b", Task: "t-1", Patch: "--- a/x\n+++ b/x\n", Limit: 2}
		_, err = f.svc.Submit(ctx, patch)
		if !errors.Is(err, intake.ErrInvalid) || !strings.Contains(err.Error(), "competition "+c.ID+" takes models, not patches") {
			t.Errorf("a patch into a model competition: %v, want it named as a patch", err)
		}
		s := f.create(t, "silent")
		_, err = f.svc.Submit(ctx, model(s, "ed25519:b", "m9"))
		if !errors.Is(err, intake.ErrInvalid) || err.Error() != s.ID+" is a silent competition: it takes no submissions" {
			t.Errorf("entry into a kind without entries: %v", err)
		}
		if _, err := f.svc.Submit(ctx, model(competition.Competition{ID: "c-missing"}, "ed25519:b", "m9")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing competition: %v, want ErrNotFound", err)
		}
		if len(f.q.ids) != 3 {
			t.Errorf("enqueued %d evaluations, want one per accepted entry (3)", len(f.q.ids))
		}
	})
}

// A pool is entered only through its service (Entry.Pool), whose ticks
// enqueue the evaluation within the budget.
func TestSubmitIntoPool(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		c, err := f.svc.CreateCompetition(ctx, intake.NewCompetition{Kind: "echo", CreatedBy: "ed25519:funder",
			Spec: kind.Spec{Title: "pool", Dataset: []byte(`"a"`)}},
			func(ctx context.Context, tx *sql.Tx, c competition.Competition) error {
				return f.db.CreatePoolTx(ctx, tx, competition.Pool{CompetitionID: c.ID, Title: c.Title, Funder: "ed25519:funder",
					Asset: "usd", Amount: 10, Rule: "winner", Start: start, End: start.Add(time.Hour), BudgetPerHour: 10,
					Refresh: time.Hour, PrivateFraction: 0.5, State: competition.PoolOpen})
			})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Submit(ctx, model(c, "ed25519:a", "m1"))
		if !errors.Is(err, intake.ErrConflict) {
			t.Errorf("plain entry into a pool: %v, want ErrConflict", err)
		}
		e := model(c, "ed25519:a", "m1")
		e.Pool = true
		sub, err := f.svc.Submit(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.q.ids) != 0 {
			t.Errorf("a pool entry enqueued %v; its ticks do", f.q.ids)
		}
		if _, err := f.db.GetSubmission(ctx, sub.ID); err != nil {
			t.Errorf("pool entry not stored: %v", err)
		}
		if _, err := f.svc.Submit(ctx, e); !errors.Is(err, competition.ErrDuplicateEntry) {
			t.Errorf("same model into the pool again: %v, want ErrDuplicateEntry", err)
		}
	})
}
