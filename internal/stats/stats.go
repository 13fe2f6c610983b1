// Package stats owns the agreement and ranking statistics that Crucible's
// scorers use: the mean and its percentile bootstrap interval, Cohen's kappa
// (unweighted, linear and quadratic, scikit-learn's definition), the six
// Shrout & Fleiss intraclass correlations, Spearman's rank correlation with
// average ranks for ties, and distances between rankings (Kendall tau
// distance and Spearman's footrule).
//
// Every statistic is tested against published values or the output of a
// reference implementation, and each test names its source.
//
// The package is pure computation: it must never import anything that does
// I/O (no os, net, database/sql, log or internal packages of Crucible). It
// depends only on computational parts of the standard library (math,
// math/rand/v2, slices, errors, fmt).
package stats

import (
	"errors"
	"math"
)

// ErrUndefined reports that a statistic has no value for the given input,
// for example a correlation of a constant series. Functions that return it
// return 0 alongside it, so a caller that wants "no evidence means 0" can
// ignore the error explicitly.
var ErrUndefined = errors.New("stats: statistic undefined for this input")

// Mean returns the arithmetic mean of values, or 0 for an empty slice.
func Mean(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	var sum float64
	for _, v := range values {
		sum += v
	}
	return sum / float64(len(values))
}

// finite reports whether every value is neither NaN nor infinite.
func finite(values []float64) bool {
	for _, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
