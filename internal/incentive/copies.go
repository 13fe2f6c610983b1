package incentive

import (
	"cmp"
	"slices"
	"time"
)

// Output is what a submission committed and answered, for copy detection.
type Output struct {
	ID          string
	Digest      string
	CommittedAt time.Time
	// Responses are the submission's raw answers by item index, for the
	// items it was evaluated on.
	Responses map[int]string
}

// CopyRule says how closely a later submission's raw answers must match an
// earlier one's to be a copy of it.
type CopyRule struct {
	// MinItems is the fewest items both must have answered: fewer shared
	// items are too little evidence to call a copy.
	MinItems int
	// Agreement is the fraction of the shared items whose raw answers must be
	// identical (1: every one).
	Agreement float64
}

// Exact is the rule of Copies: the same raw answer on every shared item.
var Exact = CopyRule{MinItems: 1, Agreement: 1}

// Near is the rule of epoch weights (model-competition epochs and validator
// weight vectors): the same raw answer on at least 95 % of the shared
// items. On a handful of items it is Exact; on many, a copier who varies a
// few answers to dodge Exact is still a copy.
var Near = CopyRule{MinItems: 1, Agreement: 0.95}

// Copies finds copies under the Exact rule (see CopiesBy).
func Copies(outs []Output) map[string]string { return CopiesBy(outs, Exact) }

// CopiesBy finds submissions that copy an earlier one: the same commit
// digest, or raw answers that match under rule. It maps each copy's id to
// the id of the earliest submission it copies. A copy earns nothing: time
// priority goes to whoever committed first (ties by id). Raw answers, not
// extracted letters, are compared: two strong models may agree on every
// letter without one copying the other. Ids must be distinct.
//
// Each submission is compared only with the earlier originals that an
// index over (item, raw answer) proposes (see copyIndex), not with every
// earlier one: leaderboards mark copies among 100,000 submissions.
func CopiesBy(outs []Output, rule CopyRule) map[string]string {
	sorted := slices.Clone(outs)
	slices.SortStableFunc(sorted, func(a, b Output) int {
		return cmp.Or(a.CommittedAt.Compare(b.CommittedAt), cmp.Compare(a.ID, b.ID))
	})
	idx := newCopyIndex(sorted, rule)
	copies := map[string]string{}
	for i, later := range sorted {
		if j := idx.original(i); j >= 0 {
			copies[later.ID] = sorted[j].ID
			continue
		}
		idx.add(i) // only originals are indexed: copies point at originals
	}
	return copies
}

// match reports whether a and b agree under the rule on the items both answered.
func (r CopyRule) match(a, b map[int]string) bool {
	shared, same := 0, 0
	for i, x := range a {
		if y, ok := b[i]; ok {
			shared++
			if x == y {
				same++
			}
		}
	}
	return shared > 0 && shared >= r.MinItems && float64(same) >= r.Agreement*float64(shared)
}
