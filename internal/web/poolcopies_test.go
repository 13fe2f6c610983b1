package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"crucible/internal/app"
	"crucible/internal/clock"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/intake"
	"crucible/internal/jobs/jobstest"
	"crucible/internal/pool"
)

// TestAPoolPageMarksCopies: a copy of the oracle served from another base
// URL is marked "copy of <original's name>", linked to the original, on the
// public board and in the payouts.
func TestAPoolPageMarksCopies(t *testing.T) {
	ctx := context.Background()
	db := newStore(t)
	ds, err := mcq.Parse(strings.NewReader(string(app.SampleDataset)), "siqa")
	if err != nil {
		t.Fatal(err)
	}
	serve := func() string {
		h, err := mcqtest.New(mcqtest.Config{Policies: app.DemoPolicies, Key: ds})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	clk := clock.NewFake(poolStart.Add(-time.Hour))
	q := jobstest.Start(t, db, clk, loopbackPlanner())
	svc := pool.New(pool.Config{DB: db, Kind: mcq.Name, Evaluations: q, Intake: intake.New(intake.Config{DB: db, Kinds: loopbackPlanner(), Evaluations: q, Clock: clk}), Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Operators: []string{"ed25519:operator"}, ExternalFunding: true})
	p, err := svc.Create(ctx, "ed25519:funder", pool.CreateRequest{Title: "copies", Dataset: string(app.SampleDataset), Fund: 100,
		Asset: "USDC", Allocation: "proportional", Start: poolStart, End: poolStart.Add(time.Hour), BudgetPerHour: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	original, err := svc.Join(ctx, p.CompetitionID, "ed25519:alice", nil, pool.JoinRequest{BaseURL: serve(), Model: "baseline-oracle"})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if _, err := svc.Join(ctx, p.CompetitionID, "ed25519:mallory", nil, pool.JoinRequest{BaseURL: serve(), Model: "baseline-oracle"}); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{poolStart.Add(time.Minute), poolStart.Add(time.Hour)} {
		clk.Set(at)
		if err := jobstest.Tick(t, q, func(ctx context.Context) error { return svc.Tick(ctx, p.CompetitionID) }, p.CompetitionID); err != nil {
			t.Fatal(err)
		}
	}
	f := &poolFixture{db: db, clock: clk}
	_, body := get(t, f.server(t).URL+"/c/"+p.CompetitionID)
	// Both tables name the original and link to it: an id alone says
	// nothing to a reader.
	if original.Name == "" || original.Name == original.ID {
		t.Fatalf("the original's name %q does not tell a name from an id", original.Name)
	}
	mark := `<span class="copy-mark">copy</span> of <a href="/s/` + original.ID + `">` + original.Name + `</a></th>`
	if strings.Count(body, mark) != 2 || !strings.Contains(body, `payout">100<`) || !strings.Contains(body, `payout">0<`) {
		t.Fatalf("the pool page does not mark the copy on the board and in the payouts (%q twice), paid 0 beside the original's 100:\n%s", mark, body)
	}
}
