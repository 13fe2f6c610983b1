package web_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"crucible/internal/app"
	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/consensus"
	"crucible/internal/egress"
	"crucible/internal/eval"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/identity"
	"crucible/internal/intake"
	"crucible/internal/jobs/jobstest"
	"crucible/internal/kind"
	"crucible/internal/pool"
	"crucible/internal/seal"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
	"crucible/internal/web"
	"crucible/internal/weights"
)

// poolStart is when the fixture's pools start.
var poolStart = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// poolFixture is a store with three pools run by pool.Service on a fake
// clock (one settled, one running, one upcoming) and a competition with
// three closed epochs, one of them with a copy.
type poolFixture struct {
	db                      *store.DB
	clock                   *clock.Fake
	settled, open, upcoming string
	// snapshots are the settled pool's snapshot times, oldest first.
	snapshots []time.Time
	epochComp string
	epochs    []int64
	// consensus is the closed validator consensus epoch.
	consensus int64
}

func newPoolFixture(t *testing.T) *poolFixture {
	t.Helper()
	ctx := context.Background()
	db := newStore(t)
	ds, err := mcq.Parse(strings.NewReader(string(app.SampleDataset)), "siqa")
	if err != nil {
		t.Fatal(err)
	}
	h, err := mcqtest.New(mcqtest.Config{Policies: app.DemoPolicies, Key: ds})
	if err != nil {
		t.Fatal(err)
	}
	models := httptest.NewServer(h)
	t.Cleanup(models.Close)
	clk := clock.NewFake(poolStart.Add(-time.Hour))
	q := jobstest.Start(t, db, clk, loopbackPlanner())
	svc := pool.New(pool.Config{DB: db, Kind: mcq.Name, Evaluations: q, Intake: intake.New(intake.Config{DB: db, Kinds: loopbackPlanner(), Evaluations: q, Clock: clk}), Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Operators: []string{"ed25519:operator"}})
	f := &poolFixture{db: db, clock: clk}
	// The funder's money for the three pools below, deposited by an operator.
	if _, err := svc.Deposit(ctx, "ed25519:operator", pool.DepositRequest{To: "ed25519:funder", Amount: 1000 + 250000 + 5000, Asset: "USDC",
		IdempotencyKey: "funder-wire"}); err != nil {
		t.Fatal(err)
	}

	create := func(title string, fund int64, rule string, start, end time.Time, perHour int, refresh time.Duration) string {
		p, err := svc.Create(ctx, "ed25519:funder", pool.CreateRequest{Title: title, DatasetName: "siqa-sample",
			Dataset: string(app.SampleDataset), Fund: fund, Asset: "USDC", Allocation: rule, Start: start, End: end,
			BudgetPerHour: perHour, Refresh: refresh, PrivateFraction: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		return p.CompetitionID
	}
	join := func(id, policy string) {
		if _, err := svc.Join(ctx, id, "ed25519:"+policy+"@"+id, nil, pool.JoinRequest{BaseURL: models.URL, Model: "baseline-" + policy}); err != nil {
			t.Fatal(err)
		}
	}
	f.settled = create("SIQA prize pool", 1000, "top-k:60,30", poolStart, poolStart.Add(10*time.Hour), 100, 3*time.Hour)
	f.open = create("SIQA weekend pool", 250000, "proportional", poolStart, poolStart.Add(48*time.Hour), 40, 2*time.Hour)
	f.upcoming = create("SIQA next month", 5000, "winner-take-all", poolStart.Add(30*24*time.Hour), poolStart.Add(31*24*time.Hour), 1000, 24*time.Hour)
	join(f.settled, "oracle")
	join(f.settled, "overlap")
	join(f.open, "overlap")
	join(f.open, "first")
	for h := 1; h <= 11; h++ {
		clk.Set(poolStart.Add(time.Duration(h) * time.Hour))
		if h == 2 {
			join(f.settled, "random") // a late joiner
		}
		if err := jobstest.Tick(t, q, svc.TickAll, f.settled, f.open, f.upcoming); err != nil {
			t.Fatal(err)
		}
	}
	if f.snapshots, err = db.Snapshots(ctx, f.settled); err != nil || len(f.snapshots) != 4 {
		t.Fatalf("settled pool snapshots %v, %v: want 4", f.snapshots, err)
	}
	f.addEpochs(t)
	f.addConsensus(t)
	return f
}

// addConsensus registers three miners, stakes two validators that post
// weights (disagreeing on one UID) and closes one consensus epoch.
func (f *poolFixture) addConsensus(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	key := func() string {
		k, err := identity.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		return k.ID()
	}
	admin := key()
	vs := consensus.New(consensus.Config{DB: f.db, Clock: f.clock, Admins: []string{admin}, Emission: 1_000_000, Asset: "CRU"})
	var uids []int64
	for i := 0; i < 3; i++ {
		reg, err := vs.Register(ctx, key())
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, reg.UID)
	}
	big, small := key(), key()
	for v, stake := range map[string]int64{big: 3000, small: 1000} {
		if _, err := vs.SetStake(ctx, admin, v, stake); err != nil {
			t.Fatal(err)
		}
	}
	n := vs.Of(f.clock.Now())
	for v, w := range map[string]map[int64]float64{
		big:   {uids[0]: 0.6, uids[1]: 0.3, uids[2]: 0.1},
		small: {uids[0]: 0.2, uids[1]: 0.2, uids[2]: 0.6},
	} {
		if _, err := vs.PostWeights(ctx, v, n, f.epochComp, w); err != nil {
			t.Fatal(err)
		}
	}
	_, end := vs.Bounds(n)
	f.clock.Set(end.Add(time.Second))
	if _, err := vs.Close(ctx, n); err != nil {
		t.Fatal(err)
	}
	f.consensus = n
}

// addEpochs makes a competition whose submissions are scored one epoch after
// another, one of them a copy of an earlier one, and closes three epochs.
func (f *poolFixture) addEpochs(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	db := f.db
	const items = 40
	// A softer temperature than the default, so that the weights spread.
	es := weights.New(weights.Config{DB: db, Kinds: loopbackPlanner(), Clock: f.clock, Temperature: 0.05})
	n0 := es.Of(poolStart.Add(12 * time.Hour))
	start, _ := es.Bounds(n0)
	f.epochComp = "c-epochs"
	rows := make([]json.RawMessage, items)
	for i := range rows {
		rows[i] = json.RawMessage(`{}`)
	}
	c := competition.Competition{ID: f.epochComp, Kind: mcq.Name, Title: "Persona chat (epochs)",
		Config: json.RawMessage(`{"mode":"generative","max_tokens":16}`), DatasetName: "personas", DatasetDigest: strings.Repeat("ef", 32),
		Items: items, CreatedBy: "key-1", CreatedAt: start.Add(-time.Minute)}
	if err := db.CreateCompetition(ctx, c, rows); err != nil {
		t.Fatal(err)
	}
	// add scores a submission at `at`: it gets the items in right correct;
	// responses of a copy repeat those of copyOf word for word.
	add := func(name string, at time.Time, right func(i int) bool, copyOf string) {
		id := "s-" + name
		sub := competition.Submission{ID: id, CompetitionID: c.ID, Name: name, Submitter: "key-" + name,
			Model: competition.ModelSpec{BaseURL: "http://127.0.0.1:9/v1", Model: name}, Digest: fmt.Sprintf("%x", sha256.Sum256([]byte(name))),
			CommittedAt: at, State: competition.StateQueued, ItemsTotal: items, UpdatedAt: at}
		if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, sub, "") }); err != nil {
			t.Fatal(err)
		}
		source := name
		if copyOf != "" {
			source = copyOf
		}
		for i := 0; i < items; i++ {
			r := eval.Result{Index: i, Prompt: fmt.Sprintf("persona %d", i), Response: fmt.Sprintf("%s says %d", source, i),
				Correct: right(i), Started: at, Ended: at, LatencyMS: 3}
			if r.Correct {
				r.Score = 1
			}
			if err := db.InsertResult(ctx, id, r); err != nil {
				t.Fatal(err)
			}
		}
		scores, n, err := db.ItemScores(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		card := competition.NewCard(scores, n)
		if _, err := storetest.SetState(ctx, db, id, competition.StateScored, "", &card, at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	closeEpoch := func(n int64) {
		_, end := es.Bounds(n)
		f.clock.Set(end.Add(30 * time.Second))
		if _, err := es.Close(ctx, c.ID, n); err != nil {
			t.Fatal(err)
		}
		f.epochs = append(f.epochs, n)
	}
	add("warm-llama", start.Add(5*time.Minute), func(i int) bool { return i%2 == 0 }, "")
	add("chatty-mistral", start.Add(20*time.Minute), func(i int) bool { return i%4 != 3 }, "")
	closeEpoch(n0)
	s1, _ := es.Bounds(n0 + 1)
	add("copycat", s1.Add(10*time.Minute), func(i int) bool { return i%4 != 3 }, "chatty-mistral")
	add("careful-qwen", s1.Add(30*time.Minute), func(i int) bool { return i%5 != 4 }, "")
	closeEpoch(n0 + 1)
	s2, _ := es.Bounds(n0 + 2)
	add("sharp-gemma", s2.Add(15*time.Minute), func(i int) bool { return i%8 != 7 }, "")
	closeEpoch(n0 + 2)
}

// server serves the fixture's UI on its fake clock.
func (f *poolFixture) server(t *testing.T) *httptest.Server {
	t.Helper()
	ui, err := web.New(web.Config{Store: seal.Public{DB: f.db}, Clock: f.clock, Kinds: builtinKinds(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)
	return srv
}

func TestPoolAndEpochPages(t *testing.T) {
	f := newPoolFixture(t)
	f.clock.Set(poolStart.Add(11 * time.Hour)) // the pools' view of now
	srv := f.server(t)
	at := func(t time.Time) string { return url.QueryEscape(t.UTC().Format(time.RFC3339Nano)) }
	tests := []struct {
		name, path string
		code       int
		want       []string // in this order
		notWant    []string
	}{
		{
			name: "the home page lists open pools, then settled ones, with fund, escrow, allocation, schedule and state",
			path: "/", code: 200,
			want: []string{`id="pools"`,
				"SIQA weekend pool", "250,000</strong> USDC", "250,000 in escrow", "proportional", "2026-12-03 00:00:00 UTC", "40 items/h, snapshot every 2h", "running", "baseline-", "(public ",
				"SIQA next month", "5,000</strong> USDC", "upcoming", "no snapshot yet",
				"SIQA prize pool", "1,000</strong> USDC", "0 in escrow", "top-k:60,30", "100 items/h, snapshot every 3h", "settled", "baseline-oracle", "(won 600, private 1.000)",
				"All competitions", `href="#pools">funded pool`},
		},
		{
			name: "the home page shows no all-items leader for a pool",
			path: "/", code: 200,
			want: []string{"public board on the pool's page"},
		},
		{
			name: "a settled pool shows its terms, the private ranking with payouts and the refund",
			path: "/c/" + f.settled, code: 200,
			want: []string{"funded pool", ">settled<", "1,000 USDC", "top-k:60,30", "2026-12-01 00:00:00 UTC", "2026-12-01 10:00:00 UTC", "(10h)",
				"every 3h", "300: 150 public", "150 private", "50.0%",
				"Settlement: private ranking and payouts", "of which 100 unassigned and refunded", `id="payouts"`,
				"baseline-oracle", "1.000", ">150<", `payout">600<`, "participant:ed25519:oracle@", `payout">`, `payout">`},
		},
		{
			name: "a settled pool's budget shows what was used of what was allowed",
			path: "/c/" + f.settled, code: 200,
			want: []string{"Inference budget", "900 of 1,000 items allowed so far (90%)", "100 items an hour", "1,000 items allowed; the entrants need 900"},
		},
		{
			name: "a settled pool offers its four snapshots, the latest selected",
			path: "/c/" + f.settled, code: 200,
			want: []string{`<select id="at" name="at">`, `selected>2026-12-01 10:00:00 UTC (latest)`, "2026-12-01 07:00:00 UTC", "2026-12-01 04:00:00 UTC",
				"2026-12-01 01:00:00 UTC", "4 snapshots published", `id="leaderboard"`, "baseline-oracle", `class="bar"`},
		},
		{
			name: "?at= shows the snapshot in force at that time",
			path: "/c/" + f.settled + "?at=" + at(poolStart.Add(5*time.Hour)), code: 200,
			want: []string{`selected>2026-12-01 04:00:00 UTC`, "as published <time", "2026-12-01 04:00:00 UTC"},
		},
		{
			name: "?at= before the first snapshot says so",
			path: "/c/" + f.settled + "?at=" + at(poolStart), code: 200,
			want:    []string{"No snapshot had been published by 2026-12-01 00:00:00 UTC; the first was taken 2026-12-01 01:00:00 UTC."},
			notWant: []string{`id="leaderboard"`},
		},
		{
			name: "?at= that is not a time is a 400",
			path: "/c/" + f.settled + "?at=yesterday", code: 400, want: []string{"at must be an RFC 3339 time"},
		},
		{
			name: "a running pool shows its budget and public board but no private scores or item results",
			path: "/c/" + f.open, code: 200,
			want: []string{">running<", "250,000 USDC", "In escrow now", "250,000 USDC", "440 of 440 items allowed so far (100%)", "40 items an hour", "1,920 items allowed; the entrants need 600",
				"6 snapshots published", "The private items are not shown until settlement", `id="entrants"`, "Scores over all items stay hidden", "baseline-", "220/300"},
			notWant: []string{`id="payouts"`, `href="/s/`, "Score card"},
		},
		{
			name: "an upcoming pool has no snapshot yet",
			path: "/c/" + f.upcoming, code: 200,
			want: []string{">upcoming<", "0 of 0 items allowed so far", "No snapshot has been published yet", "No entrants yet", "crucible pool join --pool " + f.upcoming},
		},
		{
			name: "/epochs shows the latest epoch's weights as bars and a table with win rates and copies",
			path: "/epochs", code: 200,
			want: []string{"Epochs", "Persona chat (epochs)", fmt.Sprintf("Latest closed epoch: <strong>%d</strong>", f.epochs[2]),
				`role="img"`, fmt.Sprintf("Weights of epoch %d", f.epochs[2]), `class="wbar top"`, `class="wbar copy"`,
				`id="epoch-c-epochs-`, "sharp-gemma", "copycat", "chatty-mistral",
				"Validator consensus", `<select id="consensus" name="consensus">`, "(latest)", "2 staked validators", "1,000,000 CRU",
				"Incentive per UID", "UID 0", "UID 1", "UID 2", `id="consensus-miners"`, `id="consensus-validators"`, ">3,000<", ">1,000<"},
			notWant: []string{"No validator epochs yet"},
		},
		{
			name: "/epochs/{id} selects the latest epoch and lists the earlier ones",
			path: "/epochs/c-epochs", code: 200,
			want: []string{"5 submissions, 4 originals", `<select id="epoch" name="epoch">`, fmt.Sprintf(`<option value="%d" selected>%d:`, f.epochs[2], f.epochs[2]), "(latest)",
				fmt.Sprintf(`<option value="%d">`, f.epochs[1]), fmt.Sprintf(`<option value="%d">`, f.epochs[0]), "3 recent closed epochs",
				"copy</span> of <a href=\"/s/s-chatty-mistral\">chatty-mistral</a>"},
		},
		{
			name: "/epochs/{id}?epoch=N shows an earlier epoch",
			path: fmt.Sprintf("/epochs/c-epochs?epoch=%d", f.epochs[0]), code: 200,
			want:    []string{"2 submissions, 2 originals", fmt.Sprintf(`<option value="%d" selected>`, f.epochs[0]), "chatty-mistral", "warm-llama"},
			notWant: []string{"copycat", "sharp-gemma"},
		},
		{
			name: "?consensus=N that never closed is a 404",
			path: "/epochs?consensus=7", code: 404, want: []string{"consensus epoch 7 has not closed"},
		},
		{
			name: "?consensus= that is not a number is a 400",
			path: "/epochs?consensus=x", code: 400, want: []string{"consensus must be"},
		},
		{
			name: "an epoch that never closed is a 404",
			path: "/epochs/c-epochs?epoch=3", code: 404, want: []string{"has not closed"},
		},
		{
			name: "an epoch that is not a number is a 400",
			path: "/epochs/c-epochs?epoch=last", code: 400, want: []string{"epoch must be"},
		},
		{
			name: "a competition without epochs has no epoch page",
			path: "/epochs/" + f.open, code: 404, want: []string{"No epoch of SIQA weekend pool has closed yet"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, srv.URL+tt.path)
			if code != tt.code {
				t.Fatalf("GET %s: %d, want %d\n%s", tt.path, code, tt.code, body)
			}
			rest := body
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("GET %s: %q missing (or out of order)\n%s", tt.path, w, body)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tt.notWant {
				if strings.Contains(body, w) {
					t.Fatalf("GET %s: %q present, want it absent\n%s", tt.path, w, body)
				}
			}
		})
	}
}

// TestASettledPoolPaysWhatTheSettlementSays checks the payout column against
// the stored settlement (the split is seeded at random, so overlap and
// random may tie on the private items and share ranks 2 and 3).
func TestASettledPoolPaysWhatTheSettlementSays(t *testing.T) {
	f := newPoolFixture(t)
	srv := f.server(t)
	p, err := f.db.GetPool(context.Background(), f.settled)
	if err != nil || p.Settlement == nil {
		t.Fatalf("pool %+v, %v: want it settled", p, err)
	}
	_, body := get(t, srv.URL+"/c/"+f.settled)
	var want, got []string
	var total int64
	for _, po := range p.Settlement.Payouts {
		want = append(want, fmt.Sprint(po.Units))
		total += po.Units
	}
	for _, m := range regexp.MustCompile(`payout">([0-9,]+)<`).FindAllStringSubmatch(body, -1) {
		got = append(got, m[1])
	}
	if strings.Join(got, " ") != strings.Join(want, " ") || total+p.Settlement.Refunded != 1000 {
		t.Fatalf("page pays %v, the settlement %v (+ refund %d)", got, want, p.Settlement.Refunded)
	}
}

func TestTheEpochsPageWithNoEpochsSaysSo(t *testing.T) {
	srv := newServer(t, newStore(t))
	code, body := get(t, srv.URL+"/epochs")
	if code != 200 || !strings.Contains(body, "No epoch has closed yet") || !strings.Contains(body, "No validator epochs yet") {
		t.Fatalf("GET /epochs: %d\n%s", code, body)
	}
}

// loopbackPlanner is the production planner with the test's loopback model
// servers allowed (the zero Planner refuses them).
func loopbackPlanner() *kind.Registry {
	policy, _ := egress.ParseAllowList("127.0.0.0/8,::1")
	reg, err := kind.NewRegistry(kinds.MCQ{Egress: kinds.Egress{HTTPClient: egress.NewSafeHTTPClient(policy, egress.Timeouts{})}})
	if err != nil {
		panic(err)
	}
	return reg
}
