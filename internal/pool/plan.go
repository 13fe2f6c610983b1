package pool

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"sort"
	"time"
)

// Split is a pool's fixed, seeded division of items into public and private,
// and the order in which every entrant's items are evaluated (the same for
// all, so entrants are always compared on the same items).
type Split struct {
	Private []bool // by item index
	Order   []int  // evaluation order of item indices
}

// NewSplit makes the split for n items: round(fraction·n) private items
// chosen by a permutation seeded with seed, and an evaluation order from a
// second seeded permutation.
func NewSplit(n int, fraction float64, seed uint64) Split {
	rng := rand.New(rand.NewPCG(seed, 0x5eed_0001))
	private := make([]bool, n)
	k := int(fraction*float64(n) + 0.5)
	for _, i := range rng.Perm(n)[:k] {
		private[i] = true
	}
	order := rand.New(rand.NewPCG(seed, 0x5eed_0002)).Perm(n)
	return Split{Private: private, Order: order}
}

// Allowed is how many inferences a budget of perHour allows from start to t
// (never past end): ⌊perHour × (t − start) / 1h⌋, exact to the nanosecond.
// The product is taken in 128 bits, as it leaves int64 after a day at
// 100,000 items per hour; a result beyond int (unreachable within
// MaxBudgetPerHour and MaxLength) is clamped.
func Allowed(perHour int, start, end, t time.Time) int {
	if t.After(end) {
		t = end
	}
	if !t.After(start) || perHour <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(perHour), uint64(t.Sub(start)))
	if hi >= uint64(time.Hour) { // the quotient would not fit in 64 bits
		return math.MaxInt
	}
	q, _ := bits.Div64(hi, lo, uint64(time.Hour))
	return int(min(q, math.MaxInt))
}

// Entrant is a joined model's evaluation progress, for sharing a budget.
type Entrant struct {
	ID        string
	Done      int // items evaluated so far
	Remaining int // items left
}

// Share divides allowance inferences among entrants round-robin: one each
// in turn, skipping entrants with nothing left, until the allowance is spent.
// Each turn starts with the least-evaluated entrant (ties in the given order,
// which callers make commit order), so the remainder of an uneven split goes
// to whoever is behind, and a late joiner is never starved.
func Share(allowance int, entrants []Entrant) map[string]int {
	live := make([]Entrant, 0, len(entrants))
	for _, e := range entrants {
		if e.Remaining > 0 {
			live = append(live, e)
		}
	}
	sort.SliceStable(live, func(i, j int) bool { return live[i].Done < live[j].Done })
	quota := map[string]int{}
	for allowance > 0 && len(live) > 0 {
		next := live[:0]
		for _, e := range live {
			if allowance == 0 {
				break
			}
			quota[e.ID]++
			allowance--
			if e.Remaining--; e.Remaining > 0 {
				next = append(next, e)
			}
		}
		live = next
	}
	return quota
}
