package stats

import (
	"math"
	"math/rand/v2"
	"slices"
)

// BootstrapMeanCI returns a percentile bootstrap confidence interval for the
// mean of values (Efron & Tibshirani, An Introduction to the Bootstrap, 1993,
// ch. 13): it draws resamples samples of len(values) with replacement, takes
// each sample's mean, and returns the (1−level)/2 and (1+level)/2 quantiles of
// those means, interpolated linearly between order statistics (NumPy's
// default "linear" quantile method).
//
// The result is deterministic for a given seed (a PCG generator from
// math/rand/v2 seeded with seed). Empty input returns (0, 0). A level outside
// (0, 1) is clamped into it; resamples < 1 is treated as 1. The loop does not
// allocate: one slice of resamples means is the only allocation.
func BootstrapMeanCI(values []float64, resamples int, level float64, seed uint64) (low, high float64) {
	n := len(values)
	if n == 0 {
		return 0, 0
	}
	if resamples < 1 {
		resamples = 1
	}
	if math.IsNaN(level) || level <= 0 {
		level = 0
	}
	if level >= 1 {
		level = 1
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	means := make([]float64, resamples)
	un := uint64(n)
	for r := range means {
		var sum float64
		for range n {
			sum += values[rng.Uint64N(un)]
		}
		means[r] = sum / float64(n)
	}
	slices.Sort(means)
	alpha := (1 - level) / 2
	return quantileSorted(means, alpha), quantileSorted(means, 1-alpha)
}

// quantileSorted returns the q-quantile of sorted data using linear
// interpolation between the order statistics at positions (n−1)·q.
func quantileSorted(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 1 {
		return sorted[0]
	}
	pos := q * float64(n-1)
	lo := int(math.Floor(pos))
	if lo < 0 {
		return sorted[0]
	}
	if lo >= n-1 {
		return sorted[n-1]
	}
	frac := pos - float64(lo)
	return sorted[lo] + frac*(sorted[lo+1]-sorted[lo])
}
