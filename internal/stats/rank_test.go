package stats

import (
	"errors"
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func TestRanks(t *testing.T) {
	tests := []struct {
		name string
		x    []float64
		want []float64
	}{
		// scipy.stats.rankdata documentation example.
		{"scipy's rankdata example averages the tied twos", []float64{0, 2, 3, 2}, []float64{1, 2.5, 4, 2.5}},
		{"all ties share the middle rank", []float64{7, 7, 7}, []float64{2, 2, 2}},
		{"distinct values get their order", []float64{30, 10, 20}, []float64{3, 1, 2}},
		{"an empty input has no ranks", nil, []float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Ranks(tt.x); !slices.Equal(got, tt.want) {
				t.Errorf("Ranks(%v) = %v, want %v", tt.x, got, tt.want)
			}
		})
	}
}

func TestSpearman(t *testing.T) {
	tests := []struct {
		name string
		x, y []float64
		want float64
	}{
		// Wikipedia "Spearman's rank correlation coefficient", IQ vs hours of
		// TV per week: ρ = −29/165 ≈ −0.175757575.
		{"Wikipedia's IQ and television example gives −29/165",
			[]float64{106, 100, 86, 101, 99, 103, 97, 113, 112, 110},
			[]float64{7, 27, 2, 50, 28, 29, 20, 12, 6, 17}, -29.0 / 165},
		// scipy.stats.spearmanr documentation example (a tie in y):
		// 0.8207826816681233.
		{"scipy's spearmanr example with a tie gives 0.82078",
			[]float64{1, 2, 3, 4, 5}, []float64{5, 6, 7, 8, 7}, 0.8207826816681233},
		{"a monotone transform correlates perfectly",
			[]float64{1, 2, 3, 4}, []float64{1, 8, 27, 64}, 1},
		{"a reversed order correlates at minus one",
			[]float64{1, 2, 3, 4}, []float64{4, 3, 2, 1}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Spearman(tt.x, tt.y)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got, tt.want, 1e-12) {
				t.Errorf("Spearman = %.15f, want %.15f", got, tt.want)
			}
		})
	}
}

func TestSpearmanErrors(t *testing.T) {
	tests := []struct {
		name  string
		x, y  []float64
		undef bool
	}{
		{"different lengths are an error", []float64{1, 2}, []float64{1}, false},
		{"a single pair is an error", []float64{1}, []float64{1}, false},
		{"an infinite value is an error", []float64{1, math.Inf(1)}, []float64{1, 2}, false},
		{"a constant series is undefined", []float64{1, 1, 1}, []float64{1, 2, 3}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Spearman(tt.x, tt.y)
			if err == nil {
				t.Fatal("want an error")
			}
			if errors.Is(err, ErrUndefined) != tt.undef {
				t.Errorf("errors.Is(ErrUndefined) = %v, want %v", !tt.undef, tt.undef)
			}
			if got != 0 {
				t.Errorf("value = %v, want 0", got)
			}
		})
	}
}

func TestRankingDistances(t *testing.T) {
	tests := []struct {
		name          string
		a, b          []int
		kendall, foot float64
	}{
		// Wikipedia "Kendall tau distance": τ1 = (1,2,3,4,5), τ2 = (3,4,1,2,5)
		// has K = 4, normalised 4/10. Footrule Σ|d| = 8 of at most ⌊25/2⌋ = 12.
		{"Wikipedia's five-item example has four discordant pairs",
			[]int{1, 2, 3, 4, 5}, []int{3, 4, 1, 2, 5}, 0.4, 8.0 / 12},
		{"identical rankings are at distance zero", []int{2, 1, 3}, []int{2, 1, 3}, 0, 0},
		{"a reversed ranking is at distance one", []int{1, 2, 3, 4}, []int{4, 3, 2, 1}, 1, 1},
		{"an odd-length reversal also reaches footrule one", []int{1, 2, 3}, []int{3, 2, 1}, 1, 1},
		{"a tie in one ranking counts half a pair (Fagin et al. p = 1/2)",
			[]int{1, 2}, []int{1, 1}, 0.5, 0.5},
		{"rankings of different lengths are maximally distant", []int{1, 2}, []int{1}, 1, 1},
		{"a single item has no pairs", []int{1}, []int{1}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KendallTauDistance(tt.a, tt.b); !near(got, tt.kendall, 1e-12) {
				t.Errorf("KendallTauDistance = %v, want %v", got, tt.kendall)
			}
			if got := Footrule(tt.a, tt.b); !near(got, tt.foot, 1e-12) {
				t.Errorf("Footrule = %v, want %v", got, tt.foot)
			}
		})
	}
}

// TestDiaconisGrahamInequality checks K ≤ F ≤ 2K for random permutations
// (Diaconis & Graham 1977), with K and F the unnormalised distances.
func TestDiaconisGrahamInequality(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 12).Draw(t, "n")
		a := rapid.Permutation(seq(n)).Draw(t, "a")
		b := rapid.Permutation(seq(n)).Draw(t, "b")
		k := KendallTauDistance(a, b) * float64(n*(n-1)/2)
		f := Footrule(a, b) * float64(n*n/2)
		if k > f+1e-9 || f > 2*k+1e-9 {
			t.Fatalf("K = %v, F = %v violate K ≤ F ≤ 2K", k, f)
		}
	})
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}
