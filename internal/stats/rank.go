package stats

import (
	"fmt"
	"math"
	"slices"
)

// Ranks returns the 1-based ranks of x, giving tied values the average of
// the ranks they span (scipy.stats.rankdata's default "average" method).
// NaN values sort first; callers should not pass them.
func Ranks(x []float64) []float64 {
	n := len(x)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if x[a] < x[b] || (math.IsNaN(x[a]) && !math.IsNaN(x[b])) {
			return -1
		}
		if x[a] > x[b] || (math.IsNaN(x[b]) && !math.IsNaN(x[a])) {
			return 1
		}
		return 0
	})
	r := make([]float64, n)
	for i := 0; i < n; {
		j := i + 1
		for j < n && x[idx[j]] == x[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // mean of ranks i+1 … j
		for t := i; t < j; t++ {
			r[idx[t]] = avg
		}
		i = j
	}
	return r
}

// Spearman returns Spearman's rank correlation ρ of x and y: the Pearson
// correlation of their average ranks, which stays correct with ties (the
// 1 − 6Σd²/(n(n²−1)) shortcut does not). It returns an error if the lengths
// differ, fewer than two pairs are given or a value is not finite, and
// (0, ErrUndefined) if either series is constant.
func Spearman(x, y []float64) (float64, error) {
	if len(x) != len(y) {
		return 0, fmt.Errorf("spearman: lengths differ (%d and %d)", len(x), len(y))
	}
	if len(x) < 2 {
		return 0, fmt.Errorf("spearman: need at least 2 pairs, got %d", len(x))
	}
	if !finite(x) || !finite(y) {
		return 0, fmt.Errorf("spearman: non-finite value")
	}
	return pearson(Ranks(x), Ranks(y))
}

// pearson returns the Pearson correlation of two equal-length series.
func pearson(x, y []float64) (float64, error) {
	mx, my := Mean(x), Mean(y)
	var sxy, sxx, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return 0, ErrUndefined
	}
	r := sxy / math.Sqrt(sxx*syy)
	return max(-1, min(1, r)), nil
}

// KendallTauDistance returns the normalised Kendall tau distance between two
// rankings of the same n items, where a[i] and b[i] are the ranks (or any
// ordinal scores) that each ranking gives item i. It counts item pairs that
// the rankings order oppositely, adds 1/2 for each pair tied in exactly one
// ranking (Fagin et al., "Comparing and aggregating rankings with ties",
// PODS 2004, K^(p) with p = 1/2), and divides by n(n−1)/2, so 0 means the
// same order and 1 means reversed.
//
// This is the distance the preference scorer should use to compare a
// labeller's ranking with the ground truth: it counts exactly the pairwise
// preference mistakes, is robust to one item being displaced far (unlike the
// footrule it does not weigh how far), and has a direct reading as "fraction
// of pairs misordered".
//
// Rankings of different lengths are maximally distant (1), so a malformed
// ranking scores worst rather than panicking; fewer than two items give 0.
// It runs in O(n²), which is fine for the handful of completions ranked per
// task.
func KendallTauDistance(a, b []int) float64 {
	if len(a) != len(b) {
		return 1
	}
	n := len(a)
	if n < 2 {
		return 0
	}
	var twice int // twice the distance, to keep the half counts exact
	for i := range n {
		for j := i + 1; j < n; j++ {
			sa, sb := sign(a[i]-a[j]), sign(b[i]-b[j])
			switch {
			case sa*sb < 0:
				twice += 2
			case (sa == 0) != (sb == 0):
				twice++
			}
		}
	}
	return float64(twice) / float64(n*(n-1))
}

// Footrule returns Spearman's footrule Σ|a_i − b_i| between two rank vectors
// of the same n items, normalised by its maximum over permutations, ⌊n²/2⌋
// (Diaconis & Graham, "Spearman's footrule as a measure of disarray", JRSS B
// 39(2), 1977), so that for permutations it lies in [0, 1]. Values are
// clamped to 1 for inputs that are not permutations. Rankings of different
// lengths give 1; fewer than two items give 0.
func Footrule(a, b []int) float64 {
	if len(a) != len(b) {
		return 1
	}
	n := len(a)
	if n < 2 {
		return 0
	}
	var sum int
	for i := range a {
		d := a[i] - b[i]
		if d < 0 {
			d = -d
		}
		sum += d
	}
	return min(1, float64(sum)/float64(n*n/2))
}

// sign returns −1, 0 or 1 according to the sign of v.
func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}
