package pool_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"crucible/internal/app"
	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/egress"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/intake"
	"crucible/internal/jobs"
	"crucible/internal/jobs/jobstest"
	"crucible/internal/kind"
	"crucible/internal/ledger"
	"crucible/internal/pool"
	"crucible/internal/seal"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

var start = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

type fixture struct {
	db     *store.DB
	clock  *clock.Fake
	queue  *jobs.Queue
	svc    *pool.Service
	models string
}

func newFixture(t *testing.T, url string) *fixture {
	t.Helper()
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ds, err := mcq.Parse(strings.NewReader(string(app.SampleDataset)), "siqa")
	if err != nil {
		t.Fatal(err)
	}
	h, err := mcqtest.New(mcqtest.Config{Policies: app.DemoPolicies, Key: ds})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	clk := clock.NewFake(start.Add(-time.Hour))
	q := jobstest.Start(t, db, clk, loopbackPlanner())
	svc := pool.New(pool.Config{DB: db, Kind: mcq.Name, Evaluations: q, Intake: newIntake(db, q, clk), Clock: clk, Logger: quiet,
		Operators: []string{operator}})
	return &fixture{db: db, clock: clk, queue: q, svc: svc, models: srv.URL}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// tick ticks a pool the way the periodic job does and lets the queue's
// workers finish (see jobstest.Tick).
func (f *fixture) tick(t *testing.T, svc *pool.Service, poolID string) error {
	t.Helper()
	return jobstest.Tick(t, f.queue, func(ctx context.Context) error { return svc.Tick(ctx, poolID) }, poolID)
}

func (f *fixture) drain(t *testing.T, poolID string) {
	t.Helper()
	jobstest.Drain(t, f.queue, poolID)
}

const operator = "ed25519:operator"

// deposit credits funder's account with amount USDC, as an operator does
// before a funder creates a pool.
func (f *fixture) deposit(t *testing.T, funder string, amount int64) {
	t.Helper()
	if _, err := f.svc.Deposit(context.Background(), operator, pool.DepositRequest{To: funder, Amount: amount, Asset: "USDC",
		IdempotencyKey: store.NewID("dep")}); err != nil {
		t.Fatal(err)
	}
}

// run creates a pool with rule, joins oracle, overlap and random (the last
// one hour late), ticks hourly to the end, and returns the pool and its settlement.
func (f *fixture) run(t *testing.T, rule string) (competition.Pool, competition.Settlement) {
	t.Helper()
	ctx := context.Background()
	f.clock.Set(start.Add(-time.Hour))
	f.deposit(t, "ed25519:funder", 1000)
	p, err := f.svc.Create(ctx, "ed25519:funder", pool.CreateRequest{
		Title: "SIQA pool " + rule, Dataset: string(app.SampleDataset), Fund: 1000, Asset: "USDC", Allocation: rule,
		Start: start, End: start.Add(10 * time.Hour), BudgetPerHour: 100, Refresh: 3 * time.Hour, PrivateFraction: 0.5,
	})
	if err != nil {
		t.Fatal(err)
	}
	join := func(policy string) {
		if _, err := f.svc.Join(ctx, p.CompetitionID, "ed25519:"+policy+"@"+p.CompetitionID, nil, pool.JoinRequest{BaseURL: f.models, Model: "baseline-" + policy}); err != nil {
			t.Fatal(err)
		}
	}
	join("oracle")
	join("overlap")
	for h := 1; h <= 11; h++ {
		f.clock.Set(start.Add(time.Duration(h) * time.Hour))
		if h == 2 {
			join("random") // a late joiner
		}
		if err := f.tick(t, f.svc, p.CompetitionID); err != nil {
			t.Fatal(err)
		}
		if h == 1 {
			subs, _ := f.db.ListSubmissions(ctx, p.CompetitionID)
			if used := subs[0].ItemsDone + subs[1].ItemsDone; used != 100 || subs[0].ItemsDone != 50 {
				t.Fatalf("after one hour %d+%d items were evaluated, want the budget of 100 split 50/50", subs[0].ItemsDone, subs[1].ItemsDone)
			}
		}
		if h == 3 {
			subs, _ := f.db.ListSubmissions(ctx, p.CompetitionID)
			// Each hour's 100 went round-robin, the least-evaluated first: the
			// late joiner took 34 of each, not a leftover.
			if late := subs[2]; late.ItemsDone != 68 {
				t.Fatalf("the late joiner has %d items after its second tick, want 2×34", late.ItemsDone)
			}
		}
	}
	got, err := f.db.GetPool(ctx, p.CompetitionID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != competition.PoolSettled || got.Settlement == nil {
		t.Fatalf("pool is %s after its end", got.State)
	}
	return got, *got.Settlement
}

func normalised(w []float64) []float64 {
	var total float64
	for _, v := range w {
		total += v
	}
	out := make([]float64, len(w))
	for i, v := range w {
		out[i] = v / total
	}
	return out
}

// largestRemainder is the test's own rounding of exact shares, written
// independently of the ledger's: floor each, then hand out the units left
// to the largest remainders.
func largestRemainder(amount int64, weights []float64) []int64 {
	var total float64
	for _, w := range weights {
		total += w
	}
	out := make([]int64, len(weights))
	type rem struct {
		i int
		r float64
	}
	var rems []rem
	var given int64
	for i, w := range weights {
		exact := float64(amount) * w / total
		out[i] = int64(math.Floor(exact))
		given += out[i]
		rems = append(rems, rem{i, exact - math.Floor(exact)})
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for k := 0; given < amount; k++ {
		out[rems[k].i]++
		given++
	}
	return out
}

func TestPoolLifecyclePaysEveryRuleToTheUnit(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL)
			ctx := context.Background()
			// Each rule's shares by private rank, computed here independently of
			// the ledger; tied entrants then share their ranks' total equally.
			rules := []struct {
				rule   string
				shares func(scores []float64) []float64
			}{
				{"winner-take-all", func([]float64) []float64 { return []float64{1, 0, 0} }},
				{"top-k:50,30", func([]float64) []float64 { return []float64{0.5, 0.3, 0} }},
				{"arithmetic-decrease", func([]float64) []float64 { return []float64{3.0 / 6, 2.0 / 6, 1.0 / 6} }},
				{"proportional", func(s []float64) []float64 { return normalised(s) }},
				{"softmax:0.1", func(s []float64) []float64 {
					w := make([]float64, len(s))
					for i, v := range s {
						w[i] = math.Exp(v / 0.1)
					}
					return normalised(w)
				}},
			}
			for _, r := range rules {
				t.Run(r.rule, func(t *testing.T) {
					p, st := f.run(t, r.rule)
					if len(st.Payouts) != 3 || st.Payouts[0].Name != "baseline-oracle" || st.Payouts[0].Score != 1 {
						t.Fatalf("payouts %+v: want three, oracle first with 1.0 on the private items", st.Payouts)
					}
					scores := []float64{st.Payouts[0].Score, st.Payouts[1].Score, st.Payouts[2].Score}
					shares := r.shares(scores)
					for i := 0; i < len(shares); i++ { // equal scores split their ranks' shares
						j := i
						for j+1 < len(scores) && scores[j+1] == scores[i] {
							j++
						}
						var sum float64
						for k := i; k <= j; k++ {
							sum += shares[k]
						}
						for k := i; k <= j; k++ {
							shares[k] = sum / float64(j-i+1)
						}
						i = j
					}
					var total float64
					for _, v := range shares {
						total += v
					}
					assigned := int64(math.Round(1000 * total))
					want, refund := largestRemainder(assigned, shares), 1000-assigned
					var paid int64
					for i, po := range st.Payouts {
						if po.Items != 150 {
							t.Errorf("%s ranked on %d private items, want all 150", po.Name, po.Items)
						}
						if po.Units != want[i] {
							t.Errorf("rank %d %s (score %.4f) got %d units, want %d", i+1, po.Name, po.Score, po.Units, want[i])
						}
						bal, _ := f.db.Balance(ctx, po.Account, "USDC")
						if bal != po.Units {
							t.Errorf("%s's account holds %d, the settlement says %d", po.Account, bal, po.Units)
						}
						paid += po.Units
					}
					if st.Refunded != refund || paid+st.Refunded != 1000 {
						t.Errorf("paid %d + refunded %d, want refund %d and a total of 1000", paid, st.Refunded, refund)
					}
					escrow, _ := f.db.Balance(ctx, ledger.EscrowAccount(p.CompetitionID), "USDC")
					if escrow != 0 {
						t.Errorf("escrow still holds %d after settlement", escrow)
					}
					// Settling again returns the first result and moves nothing.
					again, err := f.svc.Settle(ctx, p.CompetitionID, "", false)
					if err != nil || !again.SettledAt.Equal(st.SettledAt) || len(again.Payouts) != 3 {
						t.Fatalf("second settle: %+v, %v", again, err)
					}
					bal, _ := f.db.Balance(ctx, st.Payouts[0].Account, "USDC")
					if bal != st.Payouts[0].Units {
						t.Fatalf("a second settle paid again: %d", bal)
					}
					// Snapshots were taken every 3 hours, on public items only.
					snap, err := f.svc.Leaderboard(ctx, p.CompetitionID, start.Add(4*time.Hour))
					if err != nil {
						t.Fatal(err)
					}
					if !snap.TakenAt.Equal(start.Add(4*time.Hour)) && !snap.TakenAt.Equal(start.Add(time.Hour)) {
						t.Errorf("snapshot at 4h was taken at %s", snap.TakenAt)
					}
					times, _ := f.db.Snapshots(ctx, p.CompetitionID)
					if len(times) != 4 { // 1h, 4h, 7h, 10h
						t.Errorf("%d snapshots over 10 hours with a 3-hour refresh, want 4: %v", len(times), times)
					}
					final, _ := f.svc.Leaderboard(ctx, p.CompetitionID, time.Time{})
					for _, row := range final.Rows {
						if row.Items != 150 {
							t.Errorf("public board row %s has %d items, want the 150 public ones", row.Name, row.Items)
						}
					}
				})
			}
			// The funder put 5×1000 in and got back only the refunds.
			var refunds int64 = 200
			bal, _ := f.db.Balance(ctx, ledger.FunderAccount("ed25519:funder"), "USDC")
			if bal != refunds {
				t.Errorf("funder holds %d, want the refunded %d", bal, refunds)
			}
		})
	}
}

func TestSettleRefusesBeforeTheEnd(t *testing.T) {
	f := newFixture(t, storetest.Databases(t)[0].URL)
	f.deposit(t, "ed25519:f", 10)
	p, err := f.svc.Create(context.Background(), "ed25519:f", pool.CreateRequest{Title: "p", Dataset: string(app.SampleDataset),
		Fund: 10, Asset: "USDC", Allocation: "winner-take-all", Start: start, End: start.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Settle(context.Background(), p.CompetitionID, "ed25519:f", true); err == nil || !strings.Contains(err.Error(), "ends at") {
		t.Fatalf("settling an open pool: %v", err)
	}
}

func TestConcurrentSettlesPayOnce(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL)
			ctx := context.Background()
			f.clock.Set(start.Add(-time.Hour))
			f.deposit(t, "ed25519:f", 777)
			p, err := f.svc.Create(ctx, "ed25519:f", pool.CreateRequest{Title: "p", Dataset: string(app.SampleDataset),
				Fund: 777, Asset: "USDC", Allocation: "winner-take-all", Start: start, End: start.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			pol, err := seal.Public{DB: f.db}.Policy(ctx, p.CompetitionID)
			sealed := make([]bool, 301)
			for i := range sealed {
				sealed[i] = pol.Private(i)
			}
			if err != nil || countTrue(sealed) != 150 || sealed[300] {
				t.Fatalf("an open pool seals %d of its 300 items (%v), want its 150 private ones", countTrue(sealed), err)
			}
			f.clock.Set(start.Add(2 * time.Hour))
			results := make(chan competition.Settlement, 20)
			errs := make(chan error, 20)
			for i := 0; i < 20; i++ {
				go func() {
					s, err := f.svc.Settle(ctx, p.CompetitionID, "ed25519:f", true)
					results <- s
					errs <- err
				}()
			}
			var first competition.Settlement
			for i := 0; i < 20; i++ {
				s, err := <-results, <-errs
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = s
				} else if !s.SettledAt.Equal(first.SettledAt) || s.Refunded != first.Refunded {
					t.Fatalf("two different settlements: %+v and %+v", first, s)
				}
			}
			if pol, _ := (seal.Public{DB: f.db}).Policy(ctx, p.CompetitionID); pol.Sealed() {
				t.Fatal("a settled pool still seals its private items")
			}
			// Nobody entered, so everything is refunded — once.
			bal, _ := f.db.Balance(ctx, ledger.FunderAccount("ed25519:f"), "USDC")
			if first.Refunded != 777 || bal != 777 {
				t.Fatalf("refunded %d, funder holds %d; want 777 once", first.Refunded, bal)
			}
		})
	}
}

// TestAFailureMidSettlementPaysNobody makes the last payout of a settlement
// fail (its account name is invalid) after earlier payouts were written in
// the same transaction: nothing may remain of them.
func TestAFailureMidSettlementPaysNobody(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL)
			ctx := context.Background()
			f.clock.Set(start.Add(-time.Hour))
			f.deposit(t, "ed25519:f", 900)
			p, err := f.svc.Create(ctx, "ed25519:f", pool.CreateRequest{Title: "p", Dataset: string(app.SampleDataset),
				Fund: 900, Asset: "USDC", Allocation: "proportional", Start: start, End: start.Add(time.Hour), BudgetPerHour: 100000})
			if err != nil {
				t.Fatal(err)
			}
			for submitter, policy := range map[string]string{"ed25519:good": "oracle", "ed25519:bad key": "random"} {
				if _, err := f.svc.Join(ctx, p.CompetitionID, submitter, nil, pool.JoinRequest{BaseURL: f.models, Model: "baseline-" + policy}); err != nil {
					t.Fatal(err)
				}
			}
			f.clock.Set(start.Add(2 * time.Hour))
			if err := f.tick(t, f.svc, p.CompetitionID); err == nil || !strings.Contains(err.Error(), "bad key") {
				t.Fatalf("tick with a failing payout: %v", err)
			}
			got, _ := f.db.GetPool(ctx, p.CompetitionID)
			good, _ := f.db.Balance(ctx, ledger.ParticipantAccount("ed25519:good"), "USDC")
			escrow, _ := f.db.Balance(ctx, ledger.EscrowAccount(p.CompetitionID), "USDC")
			if got.State != competition.PoolOpen || good != 0 || escrow != 900 {
				t.Fatalf("after a failed settlement: state %s, good holds %d, escrow %d; want open, 0, 900", got.State, good, escrow)
			}
		})
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// TestAPoolAtTheLargestBudgetKeepsEvaluating replays the budget overflow: a
// pool at 10^7 items per hour over a year, ticked a day after its start,
// must evaluate its entrant (the overflowed allowance was negative and
// stopped evaluation for good); budgets and lengths beyond the bounds are
// refused.
func TestAPoolAtTheLargestBudgetKeepsEvaluating(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL)
			ctx := context.Background()
			f.deposit(t, "ed25519:f", 100)
			terms := pool.CreateRequest{Title: "p", Dataset: string(app.SampleDataset), Fund: 100, Asset: "USDC", Allocation: "winner-take-all",
				Start: start, End: start.Add(365 * 24 * time.Hour), BudgetPerHour: pool.MaxBudgetPerHour}
			for _, bad := range []struct {
				change func(*pool.CreateRequest)
				want   string
			}{
				{func(r *pool.CreateRequest) { r.BudgetPerHour = pool.MaxBudgetPerHour + 1 }, "budget must be between 1 and 10000000"},
				{func(r *pool.CreateRequest) { r.End = r.Start.Add(pool.MaxLength + time.Second) }, "at most"},
			} {
				req := terms
				bad.change(&req)
				if _, err := f.svc.Create(ctx, "ed25519:f", req); err == nil || !strings.Contains(err.Error(), bad.want) {
					t.Fatalf("creating %+v: %v; want a refusal saying %q", req, err, bad.want)
				}
			}
			p, err := f.svc.Create(ctx, "ed25519:f", terms)
			if err != nil {
				t.Fatal(err)
			}
			sub, err := f.svc.Join(ctx, p.CompetitionID, "ed25519:m", nil, pool.JoinRequest{BaseURL: f.models, Model: "baseline-oracle"})
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Set(start.Add(24 * time.Hour))
			if err := f.tick(t, f.svc, p.CompetitionID); err != nil {
				t.Fatal(err)
			}
			got, err := f.db.GetSubmission(ctx, sub.ID)
			if err != nil || got.ItemsDone != 300 || got.State != competition.StateScored {
				t.Fatalf("a day into the pool the entrant is %s with %d/300 items (%v); want all evaluated and scored", got.State, got.ItemsDone, err)
			}
		})
	}
}

// loopbackPlanner is the production planner with the test's loopback model
// servers allowed (the zero Planner refuses them).
// newIntake is the intake service over db that pools create their
// competitions and entries with.
func newIntake(db *store.DB, q *jobs.Queue, clk clock.Clock) *intake.Service {
	return intake.New(intake.Config{DB: db, Kinds: loopbackPlanner(), Evaluations: q, Clock: clk})
}

func loopbackPlanner() *kind.Registry {
	policy, _ := egress.ParseAllowList("127.0.0.0/8,::1")
	reg, err := kind.NewRegistry(kinds.MCQ{Egress: kinds.Egress{HTTPClient: egress.NewSafeHTTPClient(policy, egress.Timeouts{})}})
	if err != nil {
		panic(err)
	}
	return reg
}

// A funder's hostile allocation rule is refused with a clear error before
// anything is stored or moved: no pool, no competition, no escrow.
func TestHostileRuleCreatesNoPool(t *testing.T) {
	f := newFixture(t, storetest.Databases(t)[0].URL)
	ctx := context.Background()
	f.deposit(t, "ed25519:f", 100)
	for _, rule := range []string{
		"arithmetic-decrease:top=99999999999",
		"table:150",
		"table:60,50",
		"table:-5",
		"table:NaN",
		"table:" + strings.Repeat("0,", 1200) + "0",
		"table:50+flat:0",
	} {
		_, err := f.svc.Create(ctx, "ed25519:f", pool.CreateRequest{Title: "p", Dataset: string(app.SampleDataset),
			Fund: 100, Asset: "USDC", Allocation: rule, Start: start, End: start.Add(time.Hour)})
		if err == nil || !strings.Contains(err.Error(), "allocation rule") {
			t.Errorf("rule %.40q: err = %v, want a clear allocation rule error", rule, err)
		}
	}
	pools, err := f.db.ListPools(ctx)
	if err != nil || len(pools) != 0 {
		t.Errorf("pools after hostile rules: %v, %v", pools, err)
	}
	comps, err := f.db.ListCompetitions(ctx)
	if err != nil || len(comps) != 0 {
		t.Errorf("competitions after hostile rules: %d, %v", len(comps), err)
	}
	if bal, _ := f.db.Balance(ctx, ledger.FunderAccount("ed25519:f"), "USDC"); bal != 100 {
		t.Errorf("funder holds %d, want the 100 deposited", bal)
	}
}

// With +progress a pool ranks score × share of the private items
// evaluated (the AO POC's rule): an oracle that joined late and was
// evaluated on a tenth of them ranks below a random model evaluated on
// all, which it would beat on score alone.
func TestProgressRuleRanksByScoreTimesItemsEvaluated(t *testing.T) {
	f := newFixture(t, storetest.Databases(t)[0].URL)
	ctx := context.Background()
	f.clock.Set(start.Add(-time.Hour))
	f.deposit(t, "ed25519:funder", 900)
	p, err := f.svc.Create(ctx, "ed25519:funder", pool.CreateRequest{Title: "progress", Dataset: string(app.SampleDataset), Fund: 900,
		Asset: "USDC", Allocation: "arithmetic-decrease:top=10+progress", Start: start, End: start.Add(2 * time.Hour),
		BudgetPerHour: 300, Refresh: 3 * time.Hour, PrivateFraction: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	join := func(policy string) {
		if _, err := f.svc.Join(ctx, p.CompetitionID, "ed25519:"+policy, nil, pool.JoinRequest{BaseURL: f.models, Model: "baseline-" + policy}); err != nil {
			t.Fatal(err)
		}
	}
	join("random")
	f.clock.Set(start.Add(time.Hour)) // the budget so far, 300 items, all go to random
	if err := f.tick(t, f.svc, p.CompetitionID); err != nil {
		t.Fatal(err)
	}
	join("oracle")
	f.clock.Set(start.Add(66 * time.Minute)) // 30 more items, all the oracle's
	if err := f.tick(t, f.svc, p.CompetitionID); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(start.Add(2 * time.Hour))
	st, err := f.svc.Settle(ctx, p.CompetitionID, "ed25519:funder", true)
	if err != nil {
		t.Fatal(err)
	}
	units := map[string]competition.Payout{}
	for _, po := range st.Payouts {
		units[po.Account] = po
	}
	random, oracle := units[ledger.ParticipantAccount("ed25519:random")], units[ledger.ParticipantAccount("ed25519:oracle")]
	if random.Items != 150 || oracle.Items == 0 || oracle.Items > 30 || oracle.Score <= random.Score {
		t.Fatalf("random %d items score %v, oracle %d items score %v; want all 150 private items for random, a few for the better oracle",
			random.Items, random.Score, oracle.Items, oracle.Score)
	}
	if random.Units != 600 || oracle.Units != 300 || st.Refunded != 0 {
		t.Errorf("random got %d, oracle %d, refunded %d; want 600 and 300: score × progress ranks random first", random.Units, oracle.Units, st.Refunded)
	}
}
