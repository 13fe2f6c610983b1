package ledger

// This file holds the allocation rules: pure functions from a pool amount and
// scored entrants to integer payouts. It does no I/O and depends on nothing
// else in the package, so the rest of the ledger can be built around it.

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Entrant is one competitor in an allocation: its name (unique within the
// allocation), its final score (higher is better), whether its evaluation
// failed, and when it committed its submission (used only to break rounding
// ties deterministically).
type Entrant struct {
	Name        string
	Score       float64
	Failed      bool
	CommittedAt time.Time
}

// eligible reports whether an entrant takes part in ranking: it did not fail
// and has a finite score above zero.
func (e Entrant) eligible() bool {
	return !e.Failed && e.Score > 0 && !math.IsInf(e.Score, 1)
}

// Rule turns scored entrants into fractions of a pool.
//
// Shares returns one fraction per entrant, in the same order, each ≥ 0 and
// summing to at most 1; whatever is not shared out stays unassigned (and is
// refunded). Ineligible entrants (failed, or score ≤ 0) get 0 and are not
// ranked. Entrants are ranked by score, descending; entrants with equal
// scores share the total of the ranks they occupy equally.
type Rule interface {
	// Name returns the rule's spec, which ParseRule accepts.
	Name() string
	// Shares returns the fraction of the pool for each entrant.
	Shares(entrants []Entrant) []float64
}

// ParseRule parses an allocation rule spec:
//
//	arithmetic-decrease   ranks 1..n get n, n−1, …, 1 parts
//	proportional          shares ∝ score
//	winner-take-all       rank 1 takes everything (ties split)
//	top-k:50,30,20        percentages by rank, non-increasing, sum ≤ 100;
//	                      the rest and ranks without an entrant stay unassigned
//	softmax:T             shares ∝ exp(score/T), T > 0
func ParseRule(spec string) (Rule, error) {
	name, arg, hasArg := strings.Cut(strings.TrimSpace(spec), ":")
	noArg := func(r Rule) (Rule, error) {
		if hasArg {
			return nil, fmt.Errorf("allocation rule %q: %s takes no parameter", spec, name)
		}
		return r, nil
	}
	switch name {
	case "arithmetic-decrease":
		return noArg(ArithmeticDecrease{})
	case "proportional":
		return noArg(Proportional{})
	case "winner-take-all":
		return noArg(WinnerTakeAll{})
	case "top-k":
		if !hasArg || strings.TrimSpace(arg) == "" {
			return nil, fmt.Errorf("allocation rule %q: top-k needs percentages, e.g. top-k:50,30,20", spec)
		}
		var ps []float64
		var sum float64
		for i, f := range strings.Split(arg, ",") {
			p, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || math.IsNaN(p) || math.IsInf(p, 0) {
				return nil, fmt.Errorf("allocation rule %q: percentage %d (%q) is not a number", spec, i+1, f)
			}
			if p < 0 {
				return nil, fmt.Errorf("allocation rule %q: percentage %d is negative (%v)", spec, i+1, p)
			}
			if i > 0 && p > ps[i-1] {
				return nil, fmt.Errorf("allocation rule %q: percentage %d (%v) is larger than the one before it; a lower rank must not earn more", spec, i+1, p)
			}
			ps = append(ps, p)
			sum += p
		}
		if sum > 100+1e-9 {
			return nil, fmt.Errorf("allocation rule %q: percentages sum to %v, more than 100", spec, sum)
		}
		return TopK{Percents: ps}, nil
	case "softmax":
		if !hasArg {
			return nil, fmt.Errorf("allocation rule %q: softmax needs a temperature, e.g. softmax:0.1", spec)
		}
		tmp, err := strconv.ParseFloat(strings.TrimSpace(arg), 64)
		if err != nil || math.IsNaN(tmp) || math.IsInf(tmp, 0) || tmp <= 0 {
			return nil, fmt.Errorf("allocation rule %q: temperature must be a finite number > 0", spec)
		}
		return Softmax{Temperature: tmp}, nil
	}
	return nil, fmt.Errorf("allocation rule %q: unknown rule (want arithmetic-decrease, proportional, winner-take-all, top-k:P1,P2,… or softmax:T)", spec)
}

// ArithmeticDecrease gives the n eligible entrants ranked 1..n a share
// proportional to n, n−1, …, 1.
type ArithmeticDecrease struct{}

// Name returns "arithmetic-decrease".
func (ArithmeticDecrease) Name() string { return "arithmetic-decrease" }

// Shares implements Rule.
func (ArithmeticDecrease) Shares(entrants []Entrant) []float64 {
	return byRank(entrants, func(rank, n int) float64 {
		return float64(n-rank) / (float64(n) * float64(n+1) / 2)
	})
}

// Proportional gives each eligible entrant a share proportional to its score.
type Proportional struct{}

// Name returns "proportional".
func (Proportional) Name() string { return "proportional" }

// Shares implements Rule.
func (Proportional) Shares(entrants []Entrant) []float64 {
	out := make([]float64, len(entrants))
	var sum float64
	for _, e := range entrants {
		if e.eligible() {
			sum += e.Score
		}
	}
	if sum == 0 || math.IsInf(sum, 0) {
		return out
	}
	for i, e := range entrants {
		if e.eligible() {
			out[i] = e.Score / sum
		}
	}
	return out
}

// WinnerTakeAll gives the whole pool to rank 1; entrants tied for first
// split it equally.
type WinnerTakeAll struct{}

// Name returns "winner-take-all".
func (WinnerTakeAll) Name() string { return "winner-take-all" }

// Shares implements Rule.
func (WinnerTakeAll) Shares(entrants []Entrant) []float64 {
	return byRank(entrants, func(rank, _ int) float64 {
		if rank == 0 {
			return 1
		}
		return 0
	})
}

// TopK gives rank i (1-based) Percents[i−1] percent of the pool. Ranks
// beyond the percentages get nothing; percentages for ranks without an
// eligible entrant, and whatever the percentages leave below 100, stay
// unassigned. Percents must be non-increasing (ParseRule enforces it), so
// that a better rank never earns less.
type TopK struct {
	Percents []float64
}

// Name returns the spec, e.g. "top-k:50,30,20".
func (r TopK) Name() string {
	parts := make([]string, len(r.Percents))
	for i, p := range r.Percents {
		parts[i] = strconv.FormatFloat(p, 'g', -1, 64)
	}
	return "top-k:" + strings.Join(parts, ",")
}

// Shares implements Rule.
func (r TopK) Shares(entrants []Entrant) []float64 {
	return byRank(entrants, func(rank, _ int) float64 {
		if rank < len(r.Percents) {
			return r.Percents[rank] / 100
		}
		return 0
	})
}

// Softmax gives each eligible entrant a share proportional to
// exp(score/Temperature), computed as exp((score − max)/Temperature) so that
// it cannot overflow.
type Softmax struct {
	Temperature float64
}

// Name returns the spec, e.g. "softmax:0.1".
func (r Softmax) Name() string {
	return "softmax:" + strconv.FormatFloat(r.Temperature, 'g', -1, 64)
}

// Shares implements Rule. A non-positive temperature behaves as its limit
// T → 0⁺: the top-scoring entrants split the pool.
func (r Softmax) Shares(entrants []Entrant) []float64 {
	out := make([]float64, len(entrants))
	top := math.Inf(-1)
	for _, e := range entrants {
		if e.eligible() {
			top = max(top, e.Score)
		}
	}
	if math.IsInf(top, -1) {
		return out
	}
	if !(r.Temperature > 0) {
		return WinnerTakeAll{}.Shares(entrants)
	}
	var sum float64
	for i, e := range entrants {
		if e.eligible() {
			out[i] = math.Exp((e.Score - top) / r.Temperature)
			sum += out[i]
		}
	}
	for i := range out {
		out[i] /= sum // sum ≥ 1: the top entrant contributes exp(0)
	}
	return out
}

// byRank ranks the eligible entrants by score (descending), gives rank r
// (0-based, of n eligible) the share part(r, n), and lets entrants with equal
// scores share their ranks' total equally.
func byRank(entrants []Entrant, part func(rank, n int) float64) []float64 {
	out := make([]float64, len(entrants))
	var idx []int
	for i, e := range entrants {
		if e.eligible() {
			idx = append(idx, i)
		}
	}
	n := len(idx)
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(entrants[b].Score, entrants[a].Score) })
	for i := 0; i < n; {
		j := i + 1
		for j < n && entrants[idx[j]].Score == entrants[idx[i]].Score {
			j++
		}
		var total float64
		for r := i; r < j; r++ {
			total += part(r, n)
		}
		for r := i; r < j; r++ {
			out[idx[r]] = total / float64(j-i)
		}
		i = j
	}
	return out
}

// Allocation is the result of splitting a pool: integer payouts in base
// units for every entrant (0 for those who get nothing) and the amount left
// unassigned, to be refunded. Σ Payouts + Unassigned equals the pool.
type Allocation struct {
	Payouts    map[string]int64
	Unassigned int64
}

// shareTolerance absorbs float rounding in a rule's shares: shares summing to
// within this of 1 assign the whole pool.
const shareTolerance = 1e-9

// Allocate splits amount base units among entrants according to rule.
//
// The rule's shares fix each entrant's exact quota. The total assigned is
// the whole amount when the shares sum to 1 (within 1e-9), otherwise
// ⌊Σshares·amount⌋, rounded up instead when it falls short of an integer by
// no more than float noise (relative 1e-12, so "top-k:70" assigns 70 of 100
// although 0.7 is not exact in binary); each entrant gets the floor of its quota and the units
// left over go one each to the largest remainders (Hamilton's method). Equal
// remainders are ordered by higher score, then earliest CommittedAt, then
// name, so the result is deterministic and a higher score never receives
// less than a lower one. Exact rational arithmetic is used, so amounts up to
// math.MaxInt64 are split without float error.
//
// It returns an error for a nil rule, a negative amount, an empty or
// duplicate entrant name, a non-finite score, or a rule that breaks its contract
// (wrong length, negative or non-finite shares, shares summing above 1, or a
// share for an ineligible entrant).
func Allocate(rule Rule, amount int64, entrants []Entrant) (Allocation, error) {
	if rule == nil {
		return Allocation{}, errors.New("allocate: no rule")
	}
	if amount < 0 {
		return Allocation{}, fmt.Errorf("allocate: negative amount %d", amount)
	}
	seen := make(map[string]bool, len(entrants))
	for i, e := range entrants {
		if e.Name == "" {
			return Allocation{}, fmt.Errorf("allocate: entrant %d has no name", i)
		}
		if seen[e.Name] {
			return Allocation{}, fmt.Errorf("allocate: entrant %q appears twice", e.Name)
		}
		seen[e.Name] = true
		if math.IsNaN(e.Score) || math.IsInf(e.Score, 0) {
			return Allocation{}, fmt.Errorf("allocate: entrant %q has a non-finite score %v", e.Name, e.Score)
		}
	}
	shares := rule.Shares(entrants)
	if len(shares) != len(entrants) {
		return Allocation{}, fmt.Errorf("allocate: rule %s returned %d shares for %d entrants", rule.Name(), len(shares), len(entrants))
	}
	var sum float64
	for i, s := range shares {
		if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 {
			return Allocation{}, fmt.Errorf("allocate: rule %s gave %q an invalid share %v", rule.Name(), entrants[i].Name, s)
		}
		if s > 0 && !entrants[i].eligible() {
			return Allocation{}, fmt.Errorf("allocate: rule %s gave ineligible entrant %q a share", rule.Name(), entrants[i].Name)
		}
		sum += s
	}
	if sum > 1+shareTolerance {
		return Allocation{}, fmt.Errorf("allocate: rule %s shares sum to %v, more than 1", rule.Name(), sum)
	}

	out := Allocation{Payouts: make(map[string]int64, len(entrants))}
	for _, e := range entrants {
		out.Payouts[e.Name] = 0
	}
	if sum == 0 || amount == 0 {
		out.Unassigned = amount
		return out, nil
	}

	// Exact rationals: each float64 share is a dyadic rational.
	amt := new(big.Rat).SetInt64(amount)
	rs := make([]*big.Rat, len(shares))
	total := new(big.Rat)
	for i, s := range shares {
		rs[i] = new(big.Rat).SetFloat64(s)
		total.Add(total, rs[i])
	}
	var assigned int64
	if sum >= 1-shareTolerance {
		assigned = amount
	} else {
		assigned = assignedUnits(new(big.Rat).Mul(total, amt), amount)
	}

	type quota struct {
		i     int
		floor int64
		rem   *big.Rat
	}
	qs := make([]quota, 0, len(shares))
	var floors int64
	scale := new(big.Rat).SetFrac(big.NewInt(assigned), big.NewInt(1))
	scale.Quo(scale, total) // quota_i = share_i · assigned / Σshares
	for i, r := range rs {
		if r.Sign() == 0 {
			continue
		}
		q := new(big.Rat).Mul(r, scale)
		f := floorRat(q)
		qs = append(qs, quota{i: i, floor: f, rem: q.Sub(q, new(big.Rat).SetInt64(f))})
		floors += f
	}
	slices.SortFunc(qs, func(a, b quota) int {
		if c := b.rem.Cmp(a.rem); c != 0 {
			return c
		}
		ea, eb := entrants[a.i], entrants[b.i]
		if c := cmp.Compare(eb.Score, ea.Score); c != 0 {
			return c
		}
		if c := ea.CommittedAt.Compare(eb.CommittedAt); c != 0 {
			return c
		}
		return strings.Compare(ea.Name, eb.Name)
	})
	left := assigned - floors // < len(qs), since Σ remainders < count
	for k := range qs {
		p := qs[k].floor
		if int64(k) < left {
			p++
		}
		out.Payouts[entrants[qs[k].i].Name] = p
	}
	out.Unassigned = amount - assigned
	return out, nil
}

// assignedUnits returns ⌊v⌋ for the exact product v = Σshares·amount, or ⌈v⌉
// when v is within a relative 1e-12 of it (float noise in the shares), never
// more than amount.
func assignedUnits(v *big.Rat, amount int64) int64 {
	f := floorRat(v)
	if f >= amount {
		return amount
	}
	gap := new(big.Rat).Sub(new(big.Rat).SetInt64(f+1), v)
	slack := new(big.Rat).Mul(v, big.NewRat(1, 1_000_000_000_000))
	if gap.Cmp(slack) <= 0 {
		return f + 1
	}
	return f
}

// floorRat returns ⌊r⌋ for a non-negative rational that fits in an int64.
func floorRat(r *big.Rat) int64 {
	return new(big.Int).Quo(r.Num(), r.Denom()).Int64()
}
