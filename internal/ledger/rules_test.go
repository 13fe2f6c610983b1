package ledger

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// progressed is an entrant with a progress (share of items evaluated).
func progressed(name string, score, progress float64, minute int) Entrant {
	e := ent(name, score, minute)
	e.Progress = progress
	return e
}

// ranked returns n eligible entrants r01, r02, … with falling scores,
// committed a minute apart.
func ranked(n int) []Entrant {
	out := make([]Entrant, n)
	for i := range out {
		out[i] = ent(fmt.Sprintf("r%03d", i+1), 1-float64(i)/float64(n+1), i)
	}
	return out
}

func allocate(t *testing.T, spec string, amount int64, entrants []Entrant) Allocation {
	t.Helper()
	rule, err := ParseRule(spec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Allocate(rule, amount, entrants)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range got.Payouts {
		total += p
	}
	if total+got.Unassigned != amount {
		t.Fatalf("payouts %d + unassigned %d ≠ fund %d", total, got.Unassigned, amount)
	}
	return got
}

// The AO POC's intended ArithmeticDecrease (apuslabs/ao-competition-
// playground-service src/benchmark.lua, Allocation): with more than ten
// entrants the top ten get 10/55, 9/55, …, 1/55; with n ≤ 10, rank r gets
// (n−r+1)/Σ; the score counted is score × progress.
func TestAOArithmeticDecreaseTopTen(t *testing.T) {
	got := allocate(t, "arithmetic-decrease:top=10", 55_000, ranked(12))
	for r := 1; r <= 12; r++ {
		want := int64(max(0, 11-r) * 1000)
		if p := got.Payouts[fmt.Sprintf("r%03d", r)]; p != want {
			t.Errorf("rank %d paid %d, want %d", r, p, want)
		}
	}
	if got.Unassigned != 0 {
		t.Errorf("unassigned %d, want 0", got.Unassigned)
	}
	four := allocate(t, "arithmetic-decrease:top=10", 1000, ranked(4))
	for r, want := range []int64{400, 300, 200, 100} {
		if p := four.Payouts[fmt.Sprintf("r%03d", r+1)]; p != want {
			t.Errorf("of four, rank %d paid %d, want %d", r+1, p, want)
		}
	}
	// Our default pays every entrant: the twelfth gets 1/78.
	if all := allocate(t, "arithmetic-decrease", 78_000, ranked(12)); all.Payouts["r012"] != 1000 {
		t.Errorf("arithmetic-decrease pays rank 12 %d, want 1000", all.Payouts["r012"])
	}
}

func TestProgressFactorRanksByScoreTimesProgress(t *testing.T) {
	// a scores 0.9 on half the items (0.45), b 0.6 on all of them.
	es := []Entrant{progressed("a", 0.9, 0.5, 0), progressed("b", 0.6, 1, 1), progressed("c", 0.8, 0, 2)}
	got := allocate(t, "arithmetic-decrease:top=10+progress", 300, es)
	want := map[string]int64{"b": 200, "a": 100, "c": 0}
	for n, w := range want {
		if got.Payouts[n] != w {
			t.Errorf("payout[%s] = %d, want %d (%v)", n, got.Payouts[n], w, got.Payouts)
		}
	}
	// Without the factor a ranks first.
	if plain := allocate(t, "arithmetic-decrease:top=10", 600, es); plain.Payouts["a"] != 300 {
		t.Errorf("without progress a is paid %d, want 300 (%v)", plain.Payouts["a"], plain.Payouts)
	}
}

// The AO POC's later rule (src/competition.lua, Reward = {35000, 20000,
// 10000, 5000 ×7} and computeReward: 300 for ranks 11–200; ranks by
// ROW_NUMBER() OVER (ORDER BY score DESC, upload time)) on a fund of
// 200000: the table in percent of it is 17.5, 10, 5, 2.5 ×7 and the flat
// 300 is 0.15 %.
func TestAOTableWithFlatPayout(t *testing.T) {
	spec := "table:17.5,10,5,2.5,2.5,2.5,2.5,2.5,2.5,2.5+flat:0.15+ties=earliest"
	got := allocate(t, spec, 200_000, ranked(200))
	reward := []int64{35000, 20000, 10000, 5000, 5000, 5000, 5000, 5000, 5000, 5000}
	for r := 1; r <= 200; r++ {
		want := int64(300)
		if r <= 10 {
			want = reward[r-1]
		}
		if p := got.Payouts[fmt.Sprintf("r%03d", r)]; p != want {
			t.Errorf("rank %d paid %d, want %d", r, p, want)
		}
	}
	if got.Unassigned != 200_000-100_000-190*300 {
		t.Errorf("unassigned %d, want %d", got.Unassigned, 200_000-100_000-190*300)
	}
	// Tied at the top, the earlier upload takes rank 1 (AO), where split
	// shares ranks 1 and 2.
	tied := []Entrant{ent("late", 0.9, 5), ent("early", 0.9, 1), ent("third", 0.5, 0)}
	earliest := allocate(t, spec, 200_000, tied)
	if earliest.Payouts["early"] != 35000 || earliest.Payouts["late"] != 20000 || earliest.Payouts["third"] != 10000 {
		t.Errorf("earliest: %v", earliest.Payouts)
	}
	split := allocate(t, strings.TrimSuffix(spec, "+ties=earliest"), 200_000, tied)
	if split.Payouts["early"] != 27500 || split.Payouts["late"] != 27500 {
		t.Errorf("split: %v", split.Payouts)
	}
	// The table as AO wrote it, in percent of 100000: nothing is left for
	// a flat payout, so rank 11 gets nothing.
	whole := allocate(t, "table:35,20,10,5,5,5,5,5,5,5", 100_000, ranked(11))
	for r, want := range append(reward, 0) {
		if p := whole.Payouts[fmt.Sprintf("r%03d", r+1)]; p != want {
			t.Errorf("whole table: rank %d paid %d, want %d", r+1, p, want)
		}
	}
}

func TestTableFlatStopsWhenTheFundRunsOut(t *testing.T) {
	// 50 % to rank 1, then 20 % each while it fits: ranks 2 and 3; 10 % is left.
	got := allocate(t, "table:50+flat:20", 100, ranked(5))
	for n, w := range map[string]int64{"r001": 50, "r002": 20, "r003": 20, "r004": 0, "r005": 0} {
		if got.Payouts[n] != w {
			t.Errorf("payout[%s] = %d, want %d", n, got.Payouts[n], w)
		}
	}
	if got.Unassigned != 10 {
		t.Errorf("unassigned %d, want 10", got.Unassigned)
	}
}

func TestTiePolicies(t *testing.T) {
	es := []Entrant{ent("b", 0.8, 2), ent("a", 0.8, 1), ent("c", 0.1, 0)}
	split := allocate(t, "arithmetic-decrease", 600, es)
	earliest := allocate(t, "arithmetic-decrease+ties=earliest", 600, es)
	if split.Payouts["a"] != 250 || split.Payouts["b"] != 250 || split.Payouts["c"] != 100 {
		t.Errorf("split: %v", split.Payouts)
	}
	if earliest.Payouts["a"] != 300 || earliest.Payouts["b"] != 200 || earliest.Payouts["c"] != 100 {
		t.Errorf("earliest: %v", earliest.Payouts)
	}
	wta := allocate(t, "winner-take-all+ties=earliest", 7, es)
	if wta.Payouts["a"] != 7 {
		t.Errorf("winner-take-all earliest: %v", wta.Payouts)
	}
}

// A funder writes the rule: a hostile one is refused with a clear error
// before any work (TestHostileRuleCreatesNoPool checks the pool side).
func TestParseRuleRefusesHostileRules(t *testing.T) {
	thousands := "table:" + strings.Repeat("0.01,", 4999) + "0.01"
	tests := []struct{ spec, errPart string }{
		{"arithmetic-decrease:top=99999999999", "N from 1 to 1000"},
		{"arithmetic-decrease:top=1001", "N from 1 to 1000"},
		{"arithmetic-decrease:top=0", "N from 1 to 1000"},
		{"arithmetic-decrease:top=-3", "N from 1 to 1000"},
		{"arithmetic-decrease:top=ten", "N from 1 to 1000"},
		{"arithmetic-decrease:10", "top=N"},
		{"table:150", "more than 100"},
		{"table:60,50", "more than 100"},
		{"table:50,-10", "negative"},
		{"table:NaN", "not a number"},
		{"table:Inf", "not a number"},
		{"table:10,20", "larger than the one before"},
		{"table:", "needs percentages"},
		{thousands, "bytes, more than the limit of 4096"},
		{"top-k:" + strings.Repeat("0,", 1200) + "0", "1201 percentages, more than the limit of 1000"},
		{"table:" + strings.Repeat("1", MaxRuleSpec), "bytes, more than the limit"},
		{"table:50+flat:0", "flat:0 must be a percentage > 0"},
		{"table:50+flat:-1", "must be a percentage > 0"},
		{"table:50+flat:NaN", "must be a percentage > 0"},
		{"table:50+flat:1e308", "must be a percentage > 0"},
		{"table:10,5+flat:6", "more than the table's last percentage"},
		{"table:60,40+flat:1", "leave less than flat"},
		{"top-k:50+flat:5", "follows a table"},
		{"arithmetic-decrease+progress+progress", "given twice"},
		{"table:50+flat:5+flat:5", "given twice"},
		{"arithmetic-decrease+ties=random", "ties=split or ties=earliest"},
		{"proportional+ties=earliest", "applies to ranked rules"},
		{"softmax:0.1+ties=earliest", "applies to ranked rules"},
		{"arithmetic-decrease+bonus", "unknown modifier"},
	}
	for _, tt := range tests {
		name := tt.spec
		if len(name) > 60 {
			name = name[:60] + "…"
		}
		t.Run(name, func(t *testing.T) {
			r, err := ParseRule(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.errPart) {
				t.Fatalf("ParseRule = %v, %v; want an error containing %q", r, err, tt.errPart)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error of %d bytes echoes the spec: %.100s…", len(err.Error()), err)
			}
		})
	}
}

func TestNewRulesRoundTrip(t *testing.T) {
	for spec, name := range map[string]string{
		"arithmetic-decrease:top=10":                     "arithmetic-decrease:top=10",
		"arithmetic-decrease: top=10 + progress":         "arithmetic-decrease:top=10+progress",
		"arithmetic-decrease+progress+ties=earliest":     "arithmetic-decrease+ties=earliest+progress",
		"arithmetic-decrease+ties=split":                 "arithmetic-decrease",
		"table:35,20,10,5,5,5,5,5,5,5":                   "table:35,20,10,5,5,5,5,5,5,5",
		"table:35,20,10+flat:0.5+ties=earliest":          "table:35,20,10+flat:0.5+ties=earliest",
		"table:35,20,10+ties=earliest+flat:0.5+progress": "table:35,20,10+flat:0.5+ties=earliest+progress",
		"top-k:50,30,20+ties=earliest":                   "top-k:50,30,20+ties=earliest",
		"proportional+progress":                          "proportional+progress",
		"softmax:0.1+progress":                           "softmax:0.1+progress",
		"winner-take-all+ties=earliest":                  "winner-take-all+ties=earliest",
	} {
		r, err := ParseRule(spec)
		if err != nil {
			t.Errorf("%q: %v", spec, err)
			continue
		}
		if r.Name() != name {
			t.Errorf("%q: Name() = %q, want %q", spec, r.Name(), name)
		}
		if again, err := ParseRule(r.Name()); err != nil || again.Name() != r.Name() {
			t.Errorf("%q does not round-trip: %v, %v", r.Name(), again, err)
		}
	}
}

func TestAllocateRefusesProgressOutsideZeroToOne(t *testing.T) {
	for _, p := range []float64{-0.1, 1.5, math.NaN()} {
		if _, err := Allocate(Proportional{}, 10, []Entrant{progressed("a", 1, p, 0)}); err == nil || !strings.Contains(err.Error(), "progress") {
			t.Errorf("progress %v: err = %v", p, err)
		}
	}
}

// Conservation and monotonicity for every new rule: payouts plus what stays
// unassigned are the fund exactly, and a higher counted score (score ×
// progress when the rule has the factor) never earns less.
func TestNewRulesConserveTheFund(t *testing.T) {
	specs := []string{"arithmetic-decrease:top=10", "arithmetic-decrease:top=3+ties=earliest", "arithmetic-decrease+progress",
		"table:35,20,10,5,5,5,5,5,5,5", "table:17.5,10,5+flat:0.15", "table:40,30+flat:10+ties=earliest+progress",
		"winner-take-all+ties=earliest", "top-k:50,30,20+ties=earliest", "proportional+progress", "softmax:0.1+progress"}
	rapid.Check(t, func(t *rapid.T) {
		spec := rapid.SampledFrom(specs).Draw(t, "spec")
		rule, err := ParseRule(spec)
		if err != nil {
			t.Fatal(err)
		}
		amount := rapid.OneOf(rapid.Int64Range(0, 1000), rapid.Int64Range(0, math.MaxInt64)).Draw(t, "amount")
		entrants := make([]Entrant, rapid.IntRange(0, 40).Draw(t, "n"))
		for i := range entrants {
			entrants[i] = Entrant{Name: fmt.Sprintf("e%d", i),
				Score:       rapid.SampledFrom([]float64{-0.5, 0, 0.1, 0.5, 0.5, 0.9, 1}).Draw(t, "score"),
				Failed:      rapid.Float64Range(0, 1).Draw(t, "p") < 0.1,
				CommittedAt: t0.Add(time.Duration(rapid.IntRange(0, 5).Draw(t, "min")) * time.Minute),
				Progress:    rapid.SampledFrom([]float64{0, 0.5, 1}).Draw(t, "progress")}
		}
		got, err := Allocate(rule, amount, entrants)
		if err != nil {
			t.Fatal(err)
		}
		total := got.Unassigned
		for _, e := range entrants {
			if p := got.Payouts[e.Name]; p < 0 || (!e.eligible() && p != 0) {
				t.Fatalf("%+v paid %d", e, p)
			}
			total += got.Payouts[e.Name]
		}
		if total != amount || got.Unassigned < 0 {
			t.Fatalf("payouts + unassigned = %d, want %d (%+v)", total, amount, got)
		}
		counted := func(e Entrant) float64 {
			if strings.HasSuffix(spec, "+progress") {
				return e.Score * e.Progress
			}
			return e.Score
		}
		for _, a := range entrants {
			for _, b := range entrants {
				if a.eligible() && b.eligible() && counted(a) > counted(b) && got.Payouts[a.Name] < got.Payouts[b.Name] {
					t.Fatalf("%s (%v) got %d < %s (%v) got %d", a.Name, counted(a), got.Payouts[a.Name], b.Name, counted(b), got.Payouts[b.Name])
				}
			}
		}
	})
}

// Found by TestNewRulesConserveTheFund (rapid seed 10618848767797860528):
// equal remainders were broken by the raw score, so "half" (0.5 × progress
// 0.5 = 0.25 counted) took the last unit ahead of "y" (0.5 counted), whose
// name sorts later.
func TestEqualRemaindersGoByTheCountedScore(t *testing.T) {
	rule, err := ParseRule("table:40,30+flat:10+ties=earliest+progress")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Allocate(rule, 5, []Entrant{progressed("top", 1, 1, 0), progressed("x", 0.5, 1, 0),
		progressed("y", 0.5, 1, 0), progressed("half", 0.5, 0.5, 0), progressed("zero", 0.1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	// Shares 0.4, 0.3, 0.1, 0.1, 0 assign 4 of 5 units: quotas 1.78, 1.33,
	// 0.44 (y), 0.44 (half); top's remainder takes the first spare unit, and
	// y's equal remainder the second.
	want := map[string]int64{"top": 2, "x": 1, "y": 1, "half": 0, "zero": 0}
	for name, p := range want {
		if got.Payouts[name] != p {
			t.Errorf("payouts %v, want %v", got.Payouts, want)
			break
		}
	}
}

// Found by TestNewRulesConserveTheFund: three entrants tied at 0.1 split
// three 5 % ranks, and their mean came out a bit above the 5 % of the
// entrant at 0.5, whose equal remainder then lost the spare unit to them.
func TestATieOnEqualPartsGetsThePartExactly(t *testing.T) {
	rule, err := ParseRule("table:35,20,10,5,5,5,5,5,5,5")
	if err != nil {
		t.Fatal(err)
	}
	var es []Entrant
	for i := range 6 {
		es = append(es, ent(fmt.Sprintf("top%d", i), 1, 0))
	}
	es = append(es, ent("mid", 0.5, 0), ent("low0", 0.1, 0), ent("low1", 0.1, 0), ent("low2", 0.1, 0))
	got, err := Allocate(rule, 36, es)
	if err != nil {
		t.Fatal(err)
	}
	for _, low := range []string{"low0", "low1", "low2"} {
		if got.Payouts["mid"] < got.Payouts[low] {
			t.Fatalf("mid (0.5) got %d < %s (0.1) got %d: %v", got.Payouts["mid"], low, got.Payouts[low], got.Payouts)
		}
	}
}
