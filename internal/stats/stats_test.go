package stats

import (
	"errors"
	"math"
	"testing"
)

// near reports whether got is within tol of want.
func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestMean(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		want   float64
	}{
		{"an empty slice has mean zero", nil, 0},
		{"one value is its own mean", []float64{3.5}, 3.5},
		{"the mean of one to four is two and a half", []float64{1, 2, 3, 4}, 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Mean(tt.values); got != tt.want {
				t.Errorf("Mean(%v) = %v, want %v", tt.values, got, tt.want)
			}
		})
	}
}

func TestCohenKappa(t *testing.T) {
	rep := func(v, n int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = v
		}
		return s
	}
	cat := func(parts ...[]int) []int {
		var s []int
		for _, p := range parts {
			s = append(s, p...)
		}
		return s
	}
	// scikit-learn sklearn/metrics/tests/test_classification.py::test_cohen_kappa.
	skA := cat(rep(0, 40), rep(1, 60))
	skB := cat(rep(0, 20), rep(1, 20), rep(0, 10), rep(1, 50))
	sk3A := cat(rep(0, 46), rep(1, 44), rep(2, 10))
	sk3B := cat(rep(0, 52), rep(1, 32), rep(2, 16))
	sk3C := cat(rep(0, 50), rep(1, 40), rep(2, 10))
	// Wikipedia "Cohen's kappa", worked example: 50 proposals, yes/yes 20,
	// yes/no 5, no/yes 10, no/no 15 → κ = 0.4.
	wikiA := cat(rep(1, 25), rep(0, 25))
	wikiB := cat(rep(1, 20), rep(0, 5), rep(1, 10), rep(0, 15))
	// Non-contiguous labels: weights use label positions, not values. Expected
	// values computed exactly (fractions) by a python3 re-implementation of
	// scikit-learn's formula: 3/8, 1/2, 1/2.
	gapA := []int{1, 2, 3, 3, 5, 5, 8, 8, 1, 2}
	gapB := []int{1, 3, 3, 5, 5, 8, 8, 1, 2, 2}
	tests := []struct {
		name string
		a, b []int
		w    Weighting
		want float64
		tol  float64
	}{
		{"scikit-learn's binary example gives 0.348", skA, skB, None, 0.348, 5e-4},
		{"the binary example is symmetric in the raters", skB, skA, None, 0.348, 5e-4},
		{"scikit-learn's three-label example gives 0.8013", sk3A, sk3B, None, 0.8013, 5e-5},
		{"scikit-learn's second three-label example gives 0.9315 unweighted", sk3A, sk3C, None, 0.9315, 5e-5},
		{"scikit-learn's second three-label example gives 0.9412 linear", sk3A, sk3C, Linear, 0.9412, 5e-5},
		{"scikit-learn's second three-label example gives 0.9541 quadratic", sk3A, sk3C, Quadratic, 0.9541, 5e-5},
		{"the exact linear value is 16/17", sk3A, sk3C, Linear, 16.0 / 17, 1e-12},
		{"the exact quadratic value is 104/109", sk3A, sk3C, Quadratic, 104.0 / 109, 1e-12},
		{"Wikipedia's proposal example gives 0.4", wikiA, wikiB, None, 0.4, 1e-12},
		{"with two labels linear weighting equals unweighted", wikiA, wikiB, Linear, 0.4, 1e-12},
		{"with two labels quadratic weighting equals unweighted", wikiA, wikiB, Quadratic, 0.4, 1e-12},
		{"gapped labels unweighted give 3/8", gapA, gapB, None, 3.0 / 8, 1e-12},
		{"gapped labels weigh linear distance by position", gapA, gapB, Linear, 0.5, 1e-12},
		{"gapped labels weigh quadratic distance by position", gapA, gapB, Quadratic, 0.5, 1e-12},
		{"identical raters agree perfectly", []int{0, 1, 2, 1}, []int{0, 1, 2, 1}, Quadratic, 1, 1e-12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CohenKappa(tt.a, tt.b, tt.w)
			if err != nil {
				t.Fatalf("CohenKappa: %v", err)
			}
			if !near(got, tt.want, tt.tol) {
				t.Errorf("CohenKappa(%v) = %.6f, want %.6f ± %g", tt.w, got, tt.want, tt.tol)
			}
		})
	}
}

func TestCohenKappaErrors(t *testing.T) {
	tests := []struct {
		name    string
		a, b    []int
		w       Weighting
		undef   bool
		wantErr bool
	}{
		{"different lengths are an error", []int{1}, []int{1, 2}, None, false, true},
		{"no items is an error", nil, nil, None, false, true},
		{"an unknown weighting is an error", []int{1, 2}, []int{1, 2}, Weighting(9), false, true},
		{"a single shared label is undefined, where scikit-learn gives NaN", []int{1, 1}, []int{1, 1}, None, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CohenKappa(tt.a, tt.b, tt.w)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if errors.Is(err, ErrUndefined) != tt.undef {
				t.Errorf("errors.Is(err, ErrUndefined) = %v, want %v", !tt.undef, tt.undef)
			}
			if got != 0 {
				t.Errorf("value = %v, want 0 on error", got)
			}
		})
	}
}

func TestICCShroutFleissExample(t *testing.T) {
	// Shrout & Fleiss (1979), Table 2 (6 targets × 4 judges) and Table 4.
	// Exact mean squares computed with python3 fractions from the table:
	// BMS = 1349/120, JMS = 2339/72, EMS = 367/360, WMS = 451/72; the paper
	// prints 11.24, 32.49, 1.02, 6.26. Exact ICCs from the same script:
	// 448/2703, 184/635, 920/1287, 1792/4047, 736/1187, 3680/4047 (pingouin
	// prints 0.166, 0.290, 0.715, 0.443, 0.620, 0.909).
	ratings := [][]float64{
		{9, 2, 5, 8}, {6, 1, 3, 2}, {8, 4, 6, 8},
		{7, 1, 2, 6}, {10, 5, 6, 9}, {6, 2, 4, 7},
	}
	r, err := ICC(ratings)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got       float64
		published float64
		exact     float64
	}{
		{"between-targets mean square matches BMS", r.MSR, 11.24, 1349.0 / 120},
		{"between-judges mean square matches JMS", r.MSC, 32.49, 2339.0 / 72},
		{"residual mean square matches EMS", r.MSE, 1.02, 367.0 / 360},
		{"within-target mean square matches WMS", r.MSW, 6.26, 451.0 / 72},
		{"ICC(1,1) is .17", r.ICC1, 0.17, 448.0 / 2703},
		{"ICC(2,1) is .29", r.ICC2, 0.29, 184.0 / 635},
		{"ICC(3,1) is .71", r.ICC3, 0.71, 920.0 / 1287},
		{"ICC(1,k) is .44", r.ICC1k, 0.44, 1792.0 / 4047},
		{"ICC(2,k) is .62", r.ICC2k, 0.62, 736.0 / 1187},
		{"ICC(3,k) is .91", r.ICC3k, 0.91, 3680.0 / 4047},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !near(tt.got, tt.published, 0.005) {
				t.Errorf("got %.4f, published %.2f", tt.got, tt.published)
			}
			if !near(tt.got, tt.exact, 1e-12) {
				t.Errorf("got %.15f, exact %.15f", tt.got, tt.exact)
			}
		})
	}
}

func TestICCEdgeCases(t *testing.T) {
	tests := []struct {
		name    string
		ratings [][]float64
		wantErr bool
		want    float64 // every coefficient
	}{
		{"flat data gives zero, not NaN", [][]float64{{3, 3}, {3, 3}, {3, 3}}, false, 0},
		{"perfect agreement gives one", [][]float64{{1, 1}, {2, 2}, {5, 5}}, false, 1},
		{"one target is an error", [][]float64{{1, 2}}, true, 0},
		{"one rater is an error", [][]float64{{1}, {2}}, true, 0},
		{"a ragged matrix is an error", [][]float64{{1, 2}, {3}}, true, 0},
		{"a NaN rating is an error", [][]float64{{1, 2}, {3, math.NaN()}}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ICC(tt.ratings)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			for i, v := range []float64{r.ICC1, r.ICC2, r.ICC3, r.ICC1k, r.ICC2k, r.ICC3k} {
				if math.IsNaN(v) || !near(v, tt.want, 1e-12) {
					t.Errorf("coefficient %d = %v, want %v", i, v, tt.want)
				}
			}
		})
	}
}
