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
	"strings"
	"time"
)

// Entrant is one competitor in an allocation: its name (unique within the
// allocation), its final score (higher is better), whether its evaluation
// failed, when it committed its submission (used to break rounding ties
// deterministically, and rank ties under the earliest tie policy), and
// its progress: the share of the items evaluated, in [0, 1], which a rule
// with the progress factor multiplies the score by (callers of such a
// rule must set it).
type Entrant struct {
	Name        string
	Score       float64
	Failed      bool
	CommittedAt time.Time
	Progress    float64
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
// scores share the total of the ranks they occupy equally (tie policy
// split), or take them in commit order (earliest).
type Rule interface {
	// Name returns the rule's spec, which ParseRule accepts.
	Name() string
	// Shares returns the fraction of the pool for each entrant.
	Shares(entrants []Entrant) []float64
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
// duplicate entrant name, a non-finite score, a progress outside [0, 1], or a rule that breaks its contract
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
		if !(e.Progress >= 0 && e.Progress <= 1) {
			return Allocation{}, fmt.Errorf("allocate: entrant %q has progress %v outside [0, 1]", e.Name, e.Progress)
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
	// Equal remainders go by the score the rule ranked by, so that of two
	// entrants with equal quotas the higher counted score gets the unit.
	ranked := entrants
	if c, ok := rule.(countedScorer); ok {
		ranked = c.counted(entrants)
	}
	slices.SortFunc(qs, func(a, b quota) int {
		if c := b.rem.Cmp(a.rem); c != 0 {
			return c
		}
		ea, eb := ranked[a.i], ranked[b.i]
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
