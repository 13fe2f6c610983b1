package stats

import (
	"fmt"
	"slices"
)

// Weighting selects how Cohen's kappa penalises a disagreement between two
// labels.
type Weighting int

const (
	// None counts every disagreement as 1 (Cohen 1960).
	None Weighting = iota
	// Linear weighs a disagreement by |i−j|, the distance between the label
	// positions (Cohen 1968).
	Linear
	// Quadratic weighs a disagreement by (i−j)², the squared distance between
	// the label positions.
	Quadratic
)

// String returns the scikit-learn name of the weighting.
func (w Weighting) String() string {
	switch w {
	case None:
		return "none"
	case Linear:
		return "linear"
	case Quadratic:
		return "quadratic"
	}
	return fmt.Sprintf("Weighting(%d)", int(w))
}

// CohenKappa returns Cohen's kappa between two raters' labels of the same
// items, as scikit-learn's cohen_kappa_score defines it: labels are the
// sorted union of the values in a and b; O is the confusion matrix over
// those labels; E = outer(row sums, column sums)/N; weights depend on label
// positions i, j (not on label values): 1−δ_ij for None, |i−j| for Linear,
// (i−j)² for Quadratic; and κ = 1 − Σ w·O / Σ w·E.
//
// It returns an error if the slices differ in length or are empty, and
// (0, ErrUndefined) when Σ w·E is zero (for example when both raters use a
// single, identical label), where scikit-learn returns NaN.
func CohenKappa(a, b []int, w Weighting) (float64, error) {
	if len(a) != len(b) {
		return 0, fmt.Errorf("cohen kappa: rater lengths differ (%d and %d)", len(a), len(b))
	}
	if len(a) == 0 {
		return 0, fmt.Errorf("cohen kappa: no items")
	}
	if w != None && w != Linear && w != Quadratic {
		return 0, fmt.Errorf("cohen kappa: unknown weighting %v", w)
	}
	labels := make([]int, 0, 2*len(a))
	labels = append(labels, a...)
	labels = append(labels, b...)
	slices.Sort(labels)
	labels = slices.Compact(labels)
	k := len(labels)
	pos := func(v int) int { i, _ := slices.BinarySearch(labels, v); return i }

	obs := make([]float64, k*k)
	rows := make([]float64, k)
	cols := make([]float64, k)
	for i := range a {
		r, c := pos(a[i]), pos(b[i])
		obs[r*k+c]++
		rows[r]++
		cols[c]++
	}
	n := float64(len(a))
	var num, den float64
	for i := range k {
		for j := range k {
			var wt float64
			d := float64(i - j)
			switch w {
			case None:
				if i != j {
					wt = 1
				}
			case Linear:
				if d < 0 {
					d = -d
				}
				wt = d
			case Quadratic:
				wt = d * d
			}
			num += wt * obs[i*k+j]
			den += wt * rows[i] * cols[j] / n
		}
	}
	if den == 0 {
		return 0, ErrUndefined
	}
	return 1 - num/den, nil
}
