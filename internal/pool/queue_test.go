package pool_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"crucible/internal/app"
	"crucible/internal/competition"
	"crucible/internal/pool"
	"crucible/internal/store/storetest"
)

// TestAPoolEntrantGetsTheSubmitCheck: pool evaluations run on the evaluate
// worker, so an entrant whose server does not serve its model fails the
// submit check before any item is spent on it (the tick's own evaluation
// loop skipped the check), and its share of the budget goes to the others.
func TestAPoolEntrantGetsTheSubmitCheck(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL)
			ctx := context.Background()
			f.deposit(t, "ed25519:f", 100)
			p, err := f.svc.Create(ctx, "ed25519:f", pool.CreateRequest{Title: "p", Dataset: string(app.SampleDataset), Fund: 100,
				Asset: "USDC", Allocation: "winner-take-all", Start: start, End: start.Add(10 * time.Hour), BudgetPerHour: 100})
			if err != nil {
				t.Fatal(err)
			}
			honest, err := f.svc.Join(ctx, p.CompetitionID, "ed25519:h", nil, pool.JoinRequest{BaseURL: f.models, Model: "baseline-oracle"})
			if err != nil {
				t.Fatal(err)
			}
			ghost, err := f.svc.Join(ctx, p.CompetitionID, "ed25519:g", nil, pool.JoinRequest{BaseURL: f.models, Model: "not-served"})
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Set(start.Add(time.Hour))
			if err := f.tick(t, f.svc, p.CompetitionID); err != nil {
				t.Fatal(err)
			}
			f.drain(t, p.CompetitionID)
			g, _ := f.db.GetSubmission(ctx, ghost.ID)
			if g.State != competition.StateFailed || g.ItemsDone != 0 || !strings.Contains(g.Reason, "submit check") {
				t.Fatalf("the unserved entrant is %s with %d items (%q); want failed by the submit check with none", g.State, g.ItemsDone, g.Reason)
			}
			if h, _ := f.db.GetSubmission(ctx, honest.ID); h.ItemsDone != 100 {
				t.Fatalf("the honest entrant has %d items after an hour; want the whole budget of 100", h.ItemsDone)
			}
		})
	}
}

// TestSettlementWaitsForTheFinalEvaluations: the tick after the end
// enqueues what remains of the budget; until those evaluations finish the
// pool is not settled and an unforced Settle is refused, so no entrant is
// paid on a board missing its last items.
func TestSettlementWaitsForTheFinalEvaluations(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL)
			ctx := context.Background()
			f.deposit(t, "ed25519:f", 100)
			p, err := f.svc.Create(ctx, "ed25519:f", pool.CreateRequest{Title: "p", Dataset: string(app.SampleDataset), Fund: 100,
				Asset: "USDC", Allocation: "winner-take-all", Start: start, End: start.Add(time.Hour), BudgetPerHour: 100})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Join(ctx, p.CompetitionID, "ed25519:h", nil, pool.JoinRequest{BaseURL: f.models, Model: "baseline-oracle"}); err != nil {
				t.Fatal(err)
			}
			// Stop the workers: the final tick's evaluations stay queued.
			if err := f.queue.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			f.clock.Set(start.Add(2 * time.Hour))
			for range 2 {
				if err := f.svc.Tick(ctx, p.CompetitionID); err != nil {
					t.Fatal(err)
				}
			}
			if got, _ := f.db.GetPool(ctx, p.CompetitionID); got.State != competition.PoolOpen {
				t.Fatalf("the pool is %s with its final evaluations queued; want open", got.State)
			}
			if _, err := f.svc.Settle(ctx, p.CompetitionID, "", false); !errors.Is(err, pool.ErrFinalTickPending) {
				t.Fatalf("settling with the final evaluations queued: %v; want ErrFinalTickPending", err)
			}
			if err := f.queue.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if err := f.tick(t, f.svc, p.CompetitionID); err != nil {
				t.Fatal(err)
			}
			got, _ := f.db.GetPool(ctx, p.CompetitionID)
			subs, _ := f.db.ListSubmissions(ctx, p.CompetitionID)
			done, _ := f.db.DoneItems(ctx, subs[0].ID)
			split, private := pool.NewSplit(subs[0].ItemsTotal, got.PrivateFraction, got.Seed), 0
			for i := range done {
				if split.Private[i] {
					private++
				}
			}
			if subs[0].ItemsDone != 100 || got.State != competition.PoolSettled || got.Settlement == nil ||
				len(got.Settlement.Payouts) != 1 || got.Settlement.Payouts[0].Items != private {
				t.Fatalf("after the final evaluations: %d items, pool %s, %+v; want settled on the %d private items of the hour's 100",
					subs[0].ItemsDone, got.State, got.Settlement, private)
			}
		})
	}
}
