package incentive

import (
	"cmp"
	"hash/maphash"
	"math"
	"slices"
)

// copyIndex proposes, for a submission L, the earlier originals it may
// copy, so that CopiesBy verifies a few candidates instead of every earlier
// original. It never misses one; the argument:
//
// Let L answer k items, E be an indexed original and s the number of items
// both answered. E matches L iff s ≥ m = max(1, MinItems) and at least
// need(s) of the s shared answers are equal. Take any s0 ≥ m and split:
//   - s ≥ s0: at most k − need(s) ≤ k − need(s0) of L's (item, answer)
//     pairs are not also E's (an item E did not answer counts as unequal),
//     so any k − need(s0) + 1 of L's pairs include one of E's: E is on the
//     posting list of that pair.
//   - s < s0: E missed at least k − s0 + 1 of L's items, so it missed one
//     of any s0 of them: E is on that item's missing list. With s0 = m this
//     half is empty (s < m never matches).
//
// L probes the pairs and items with the shortest lists, at the s0 that
// makes the probes cheapest. An answer everyone gives (a bare letter) has a
// long list and is probed last, if at all. Candidates are verified with
// match, so pair hashes that collide (merging two lists) only add
// candidates.
type copyIndex struct {
	outs []Output
	rule CopyRule
	m    int
	// Output i's answers are [start[i], start[i+1]) in pair (the dense id
	// of its (item, answer)) and item (the dense id of its item).
	start, pair, item []int32
	// Pair p's posting list, the indexed originals that gave it in commit
	// order, is post[off[p]:end[p]]: one array, sized by every output's pairs.
	off, end, post []int32
	// missing[t] lists the indexed originals that did not answer item t. It
	// is nil when item sets differ so much that these lists would outweigh
	// the postings; then s0 is always m.
	missing  [][]int32
	byDigest map[string]int32
	// origs are the indexed originals in commit order, scanned when any
	// shared items match (Agreement ≤ 0, no pair need be equal).
	origs []int32
	// Scratch reused across outputs; a stamp of i+1 means "seen for output i".
	seen, itemSeen   []int32
	cand, byPair     []int32
	byItem           []int32
	pairSum, itemSum []int
}

func newCopyIndex(outs []Output, rule CopyRule) *copyIndex {
	x := &copyIndex{outs: outs, rule: rule, m: max(1, rule.MinItems), byDigest: map[string]int32{},
		seen: make([]int32, len(outs)), start: make([]int32, len(outs)+1)}
	total := 0
	for _, o := range outs {
		total += len(o.Responses)
	}
	x.pair, x.item = make([]int32, 0, total), make([]int32, 0, total)
	seed := maphash.MakeSeed()
	pairIDs, itemIDs := map[uint64]int32{}, map[int]int32{}
	var count []int32
	for i, o := range outs {
		for it, answer := range o.Responses {
			key := maphash.String(seed, answer) ^ uint64(it)*0x9e3779b97f4a7c15
			p, ok := pairIDs[key]
			if !ok {
				p = int32(len(count))
				pairIDs[key] = p
				count = append(count, 0)
			}
			count[p]++
			t, ok := itemIDs[it]
			if !ok {
				t = int32(len(itemIDs))
				itemIDs[it] = t
			}
			x.pair, x.item = append(x.pair, p), append(x.item, t)
		}
		x.start[i+1] = int32(len(x.pair))
	}
	x.off, x.end = make([]int32, len(count)), make([]int32, len(count))
	at := int32(0)
	for p, c := range count {
		x.off[p], x.end[p] = at, at
		at += c
	}
	x.post = make([]int32, total)
	if len(itemIDs)*len(outs)-total <= total {
		x.missing = make([][]int32, len(itemIDs))
		x.itemSeen = make([]int32, len(itemIDs))
	}
	return x
}

// need is the fewest equal answers among s shared items that match under
// r: the least t with float64(t) ≥ Agreement·s, as match computes it, or
// s+1 when none is.
func (r CopyRule) need(s int) int {
	x := r.Agreement * float64(s)
	switch {
	case math.IsNaN(x) || x > float64(s):
		return s + 1
	case x <= 0:
		return 0
	}
	return int(math.Ceil(x))
}

// original returns the earliest indexed original that output i copies
// (by digest or under the rule), or -1.
func (x *copyIndex) original(i int) int {
	o := x.outs[i]
	best := int32(len(x.outs))
	if o.Digest != "" {
		if j, ok := x.byDigest[o.Digest]; ok {
			best = j
		}
	}
	k := int(x.start[i+1] - x.start[i])
	switch {
	case k < x.m:
		// Fewer answers than MinItems: only the digest can make a copy.
	case x.rule.need(x.m) == 0:
		for _, j := range x.origs {
			if j >= best {
				break
			}
			if x.rule.match(o.Responses, x.outs[j].Responses) {
				return int(j)
			}
		}
	default:
		x.candidates(i, best)
		slices.Sort(x.cand)
		for _, j := range x.cand {
			if x.rule.match(o.Responses, x.outs[j].Responses) {
				return int(j) // sorted and below best: the earliest
			}
		}
	}
	if int(best) == len(x.outs) {
		return -1
	}
	return int(best)
}

// candidates sets x.cand to the indexed originals below best that output i
// may copy (see copyIndex), each once.
func (x *copyIndex) candidates(i int, best int32) {
	lo, hi := x.start[i], x.start[i+1]
	k := int(hi - lo)
	x.byPair = x.byPair[:0]
	for pos := lo; pos < hi; pos++ {
		x.byPair = append(x.byPair, pos)
	}
	length := func(pos int32) int { p := x.pair[pos]; return int(x.end[p] - x.off[p]) }
	slices.SortFunc(x.byPair, func(a, b int32) int { return cmp.Compare(length(a), length(b)) })
	x.pairSum = prefixSums(x.pairSum, x.byPair, length)
	s0, cost := x.m, x.pairSum[max(0, k-x.rule.need(x.m)+1)]
	if x.missing != nil {
		x.byItem = append(x.byItem[:0], x.byPair...)
		missed := func(pos int32) int { return len(x.missing[x.item[pos]]) }
		slices.SortFunc(x.byItem, func(a, b int32) int { return cmp.Compare(missed(a), missed(b)) })
		x.itemSum = prefixSums(x.itemSum, x.byItem, missed)
		for s := x.m + 1; s <= k; s++ {
			if c := x.pairSum[max(0, k-x.rule.need(s)+1)] + x.itemSum[s]; c < cost {
				s0, cost = s, c
			}
		}
	}
	x.cand = x.cand[:0]
	stamp := int32(i + 1)
	consider := func(list []int32) {
		for _, j := range list {
			if j >= best {
				return // lists are in commit order
			}
			if x.seen[j] != stamp {
				x.seen[j] = stamp
				x.cand = append(x.cand, j)
			}
		}
	}
	for _, pos := range x.byPair[:max(0, k-x.rule.need(s0)+1)] {
		p := x.pair[pos]
		consider(x.post[x.off[p]:x.end[p]])
	}
	if s0 > x.m {
		for _, pos := range x.byItem[:s0] {
			consider(x.missing[x.item[pos]])
		}
	}
}

// prefixSums sets sums[n] to the total weight of the first n of order.
func prefixSums(sums []int, order []int32, weight func(int32) int) []int {
	sums = append(sums[:0], 0)
	for _, pos := range order {
		sums = append(sums, sums[len(sums)-1]+weight(pos))
	}
	return sums
}

// add indexes output i, an original.
func (x *copyIndex) add(i int) {
	j := int32(i)
	for _, p := range x.pair[x.start[i]:x.start[i+1]] {
		x.post[x.end[p]] = j
		x.end[p]++
	}
	if d := x.outs[i].Digest; d != "" {
		if _, ok := x.byDigest[d]; !ok {
			x.byDigest[d] = j
		}
	}
	x.origs = append(x.origs, j)
	if x.missing != nil {
		stamp := int32(i + 1)
		for _, t := range x.item[x.start[i]:x.start[i+1]] {
			x.itemSeen[t] = stamp
		}
		for t := range x.missing {
			if x.itemSeen[t] != stamp {
				x.missing[t] = append(x.missing[t], j)
			}
		}
	}
}
