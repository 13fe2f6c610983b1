package ledger

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// ent builds an eligible entrant committed minute minutes after t0.
func ent(name string, score float64, minute int) Entrant {
	return Entrant{Name: name, Score: score, CommittedAt: t0.Add(time.Duration(minute) * time.Minute)}
}

func TestAllocate(t *testing.T) {
	failed := ent("f", 0.99, 0)
	failed.Failed = true
	tests := []struct {
		name       string
		spec       string
		amount     int64
		entrants   []Entrant
		want       map[string]int64
		unassigned int64
	}{
		{
			"arithmetic decrease gives 3:2:1 and the last unit to the largest remainder",
			"arithmetic-decrease", 1000,
			[]Entrant{ent("a", .9, 0), ent("b", .8, 0), ent("c", .7, 0)},
			map[string]int64{"a": 500, "b": 333, "c": 167}, 0,
		},
		{
			"arithmetic decrease splits tied ranks' parts equally",
			"arithmetic-decrease", 100,
			[]Entrant{ent("a", .9, 0), ent("b", .8, 0), ent("c", .8, 0), ent("d", .1, 0)},
			map[string]int64{"a": 40, "b": 25, "c": 25, "d": 10}, 0,
		},
		{
			"arithmetic decrease with 101 units gives the spare unit to the top remainder",
			"arithmetic-decrease", 101,
			[]Entrant{ent("a", .9, 0), ent("b", .8, 0), ent("c", .8, 0), ent("d", .1, 0)},
			map[string]int64{"a": 41, "b": 25, "c": 25, "d": 10}, 0,
		},
		{
			"arithmetic decrease skips failed, zero and negative entrants",
			"arithmetic-decrease", 30,
			[]Entrant{ent("a", .9, 0), failed, ent("z", 0, 0), ent("n", -1, 0), ent("b", .3, 0)},
			map[string]int64{"a": 20, "b": 10, "f": 0, "z": 0, "n": 0}, 0,
		},
		{
			"proportional follows the scores exactly despite 0.3 not being exact in binary",
			"proportional", 10,
			[]Entrant{ent("a", .5, 0), ent("b", .3, 0), ent("c", .2, 0)},
			map[string]int64{"a": 5, "b": 3, "c": 2}, 0,
		},
		{
			"proportional ignores ineligible entrants",
			"proportional", 100,
			[]Entrant{ent("a", .6, 0), failed, ent("z", 0, 0), ent("e", .2, 0)},
			map[string]int64{"a": 75, "e": 25, "f": 0, "z": 0}, 0,
		},
		{
			"winner takes all",
			"winner-take-all", 1000,
			[]Entrant{ent("a", .9, 0), ent("b", .5, 0)},
			map[string]int64{"a": 1000, "b": 0}, 0,
		},
		{
			"tied winners split and the odd unit goes to the earliest commit",
			"winner-take-all", 10,
			[]Entrant{ent("a", .9, 5), ent("b", .9, 1), ent("c", .9, 3), ent("d", .2, 0)},
			map[string]int64{"a": 3, "b": 4, "c": 3, "d": 0}, 0,
		},
		{
			"tied winners committed together break the remainder tie by name",
			"winner-take-all", 11,
			[]Entrant{ent("carol", .9, 0), ent("alice", .9, 0), ent("bob", .9, 0)},
			map[string]int64{"alice": 4, "bob": 4, "carol": 3}, 0,
		},
		{
			"top-k pays by rank and leaves nothing over when it sums to 100",
			"top-k:50,30,20", 1000,
			[]Entrant{ent("a", .9, 0), ent("b", .8, 0), ent("c", .7, 0), ent("d", .6, 0)},
			map[string]int64{"a": 500, "b": 300, "c": 200, "d": 0}, 0,
		},
		{
			"top-k leaves ranks without an entrant unassigned",
			"top-k:50,30,20", 1000,
			[]Entrant{ent("a", .9, 0), ent("b", .8, 0)},
			map[string]int64{"a": 500, "b": 300}, 200,
		},
		{
			"top-k splits tied ranks' percentages equally",
			"top-k:50,30,20", 1000,
			[]Entrant{ent("a", .9, 0), ent("b", .8, 0), ent("c", .8, 0)},
			map[string]int64{"a": 500, "b": 250, "c": 250}, 0,
		},
		{
			"top-k ties straddling the last paid rank share it",
			"top-k:50,30", 1000,
			[]Entrant{ent("a", .9, 0), ent("b", .8, 0), ent("c", .8, 0)},
			map[string]int64{"a": 500, "b": 150, "c": 150}, 200,
		},
		{
			"top-k percentages below 100 leave the rest unassigned",
			"top-k:70", 100,
			[]Entrant{ent("a", .9, 0), ent("b", .8, 0)},
			map[string]int64{"a": 70, "b": 0}, 30,
		},
		{
			// Shares 1/(1+e^-1) = 0.7310585786 and 0.2689414214 (python3 math).
			"softmax at T=0.5 over scores 1 and 0.5 pays 731 and 269",
			"softmax:0.5", 1000,
			[]Entrant{ent("a", 1, 0), ent("b", .5, 0)},
			map[string]int64{"a": 731, "b": 269}, 0,
		},
		{
			// Quotas 6652.41, 2447.28, 900.31 (python3 math.exp).
			"softmax at T=0.1 pays 6653, 2447 and 900 of 10000",
			"softmax:0.1", 10000,
			[]Entrant{ent("a", .9, 0), ent("b", .8, 0), ent("c", .7, 0)},
			map[string]int64{"a": 6653, "b": 2447, "c": 900}, 0,
		},
		{
			"softmax is stable for large scores and tiny temperatures",
			"softmax:0.001", 500,
			[]Entrant{ent("a", 1000, 0), ent("b", 999, 0)},
			map[string]int64{"a": 500, "b": 0}, 0,
		},
		{
			"no eligible entrant leaves everything unassigned",
			"proportional", 77,
			[]Entrant{failed, ent("z", 0, 0)},
			map[string]int64{"f": 0, "z": 0}, 77,
		},
		{
			"no entrants at all leaves everything unassigned",
			"winner-take-all", 5, nil, map[string]int64{}, 5,
		},
		{
			"a zero pool pays nothing",
			"arithmetic-decrease", 0,
			[]Entrant{ent("a", .9, 0)},
			map[string]int64{"a": 0}, 0,
		},
		{
			"the largest pool is split exactly",
			"arithmetic-decrease", math.MaxInt64,
			[]Entrant{ent("a", .9, 0), ent("b", .8, 0)},
			map[string]int64{"a": 6148914691236517205, "b": 3074457345618258602}, 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, err := ParseRule(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Allocate(rule, tt.amount, tt.entrants)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Payouts) != len(tt.want) {
				t.Errorf("payouts %v, want %v", got.Payouts, tt.want)
			}
			for name, want := range tt.want {
				if p, ok := got.Payouts[name]; !ok || p != want {
					t.Errorf("payout[%s] = %d (present %v), want %d", name, p, ok, want)
				}
			}
			if got.Unassigned != tt.unassigned {
				t.Errorf("unassigned = %d, want %d", got.Unassigned, tt.unassigned)
			}
		})
	}
}

func TestParseRule(t *testing.T) {
	tests := []struct {
		spec    string
		name    string // canonical name, "" when an error is expected
		errPart string
	}{
		{"arithmetic-decrease", "arithmetic-decrease", ""},
		{" proportional ", "proportional", ""},
		{"winner-take-all", "winner-take-all", ""},
		{"top-k:50,30,20", "top-k:50,30,20", ""},
		{"top-k: 60 , 40", "top-k:60,40", ""},
		{"top-k:33.5,33.5,33", "top-k:33.5,33.5,33", ""},
		{"top-k:20,30", "", "larger than the one before"},
		{"softmax:0.01", "softmax:0.01", ""},
		{"", "", "unknown rule"},
		{"random", "", "unknown rule"},
		{"proportional:2", "", "takes no parameter"},
		{"top-k", "", "needs percentages"},
		{"top-k:", "", "needs percentages"},
		{"top-k:50,x", "", "not a number"},
		{"top-k:50,,20", "", "not a number"},
		{"top-k:-5", "", "negative"},
		{"top-k:60,50", "", "more than 100"},
		{"top-k:NaN", "", "not a number"},
		{"softmax", "", "needs a temperature"},
		{"softmax:0", "", "> 0"},
		{"softmax:-1", "", "> 0"},
		{"softmax:abc", "", "> 0"},
		{"softmax:Inf", "", "> 0"},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%q parses to %q", tt.spec, tt.name)
		if tt.name == "" {
			name = fmt.Sprintf("%q is rejected because it %s", tt.spec, tt.errPart)
		}
		t.Run(name, func(t *testing.T) {
			r, err := ParseRule(tt.spec)
			if tt.name == "" {
				if err == nil || !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("err = %v, want one containing %q", err, tt.errPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Name() != tt.name {
				t.Errorf("Name() = %q, want %q", r.Name(), tt.name)
			}
			again, err := ParseRule(r.Name())
			if err != nil || again.Name() != r.Name() {
				t.Errorf("Name() does not round-trip: %v, %v", again, err)
			}
		})
	}
}

// brokenRule returns fixed shares, to test that Allocate checks the contract.
type brokenRule []float64

func (brokenRule) Name() string                   { return "broken" }
func (r brokenRule) Shares(_ []Entrant) []float64 { return r }

func TestAllocateErrors(t *testing.T) {
	two := []Entrant{ent("a", .9, 0), ent("b", .5, 0)}
	tests := []struct {
		name     string
		rule     Rule
		amount   int64
		entrants []Entrant
		errPart  string
	}{
		{"a nil rule is an error", nil, 1, two, "no rule"},
		{"a negative amount is an error", Proportional{}, -1, two, "negative amount"},
		{"a duplicate name is an error", Proportional{}, 1, []Entrant{ent("a", 1, 0), ent("a", 2, 0)}, "twice"},
		{"an empty name is an error", Proportional{}, 1, []Entrant{ent("", 1, 0)}, "no name"},
		{"a NaN score is an error", Proportional{}, 1, []Entrant{ent("a", math.NaN(), 0)}, "non-finite"},
		{"an infinite score is an error", Proportional{}, 1, []Entrant{ent("a", math.Inf(1), 0)}, "non-finite"},
		{"a rule with the wrong number of shares is an error", brokenRule{1}, 1, two, "returned 1 shares"},
		{"a rule handing out more than the pool is an error", brokenRule{.7, .7}, 1, two, "more than 1"},
		{"a negative share is an error", brokenRule{1.2, -.2}, 1, two, "invalid share"},
		{"a share for an ineligible entrant is an error", brokenRule{.5, .5}, 1,
			[]Entrant{ent("a", 1, 0), ent("z", 0, 0)}, "ineligible"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Allocate(tt.rule, tt.amount, tt.entrants)
			if err == nil || !strings.Contains(err.Error(), tt.errPart) {
				t.Fatalf("err = %v, want one containing %q", err, tt.errPart)
			}
		})
	}
}

func TestAllocateProperties(t *testing.T) {
	specs := []string{"arithmetic-decrease", "proportional", "winner-take-all",
		"top-k:50,30,20", "top-k:70", "top-k:40,40", "top-k:33.4,33.3,33.3", "top-k:10,10,10,10,10,10,10,10,10,10",
		"softmax:0.01", "softmax:0.5", "softmax:10"}
	rapid.Check(t, func(t *rapid.T) {
		spec := rapid.SampledFrom(specs).Draw(t, "spec")
		rule, err := ParseRule(spec)
		if err != nil {
			t.Fatal(err)
		}
		amount := rapid.OneOf(rapid.Int64Range(0, 1000), rapid.Int64Range(0, math.MaxInt64)).Draw(t, "amount")
		n := rapid.IntRange(0, 9).Draw(t, "n")
		score := rapid.OneOf(
			rapid.SampledFrom([]float64{-0.5, 0, 0.1, 0.25, 0.5, 0.9, 1}),
			rapid.Float64Range(-1, 1),
		)
		entrants := make([]Entrant, n)
		for i := range entrants {
			entrants[i] = Entrant{
				Name:        fmt.Sprintf("e%d", i),
				Score:       score.Draw(t, "score"),
				Failed:      rapid.Float64Range(0, 1).Draw(t, "p") < 0.15,
				CommittedAt: t0.Add(time.Duration(rapid.IntRange(0, 5).Draw(t, "min")) * time.Minute),
			}
		}
		got, err := Allocate(rule, amount, entrants)
		if err != nil {
			t.Fatal(err)
		}
		sum := got.Unassigned
		if got.Unassigned < 0 {
			t.Fatalf("unassigned %d < 0", got.Unassigned)
		}
		for _, e := range entrants {
			p := got.Payouts[e.Name]
			if p < 0 {
				t.Fatalf("%s paid %d < 0", e.Name, p)
			}
			if !e.eligible() && p != 0 {
				t.Fatalf("ineligible %+v paid %d", e, p)
			}
			sum += p // no overflow: every part is ≤ amount and they sum to it
		}
		if sum != amount {
			t.Fatalf("payouts + unassigned = %d, want %d (%+v)", sum, amount, got)
		}
		for _, a := range entrants {
			for _, b := range entrants {
				if a.eligible() && b.eligible() && a.Score > b.Score && got.Payouts[a.Name] < got.Payouts[b.Name] {
					t.Fatalf("%s (score %v) got %d < %s (score %v) got %d",
						a.Name, a.Score, got.Payouts[a.Name], b.Name, b.Score, got.Payouts[b.Name])
				}
			}
		}
	})
}
