package stats

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBootstrapMeanCI(t *testing.T) {
	tests := []struct {
		name      string
		values    []float64
		low, high float64
	}{
		{"empty input gives a zero interval", nil, 0, 0},
		{"a constant sample gives a degenerate interval at the constant", []float64{0.7, 0.7, 0.7, 0.7}, 0.7, 0.7},
		{"a single value gives that value", []float64{2}, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := BootstrapMeanCI(tt.values, 200, 0.95, 1)
			if !near(lo, tt.low, 1e-12) || !near(hi, tt.high, 1e-12) {
				t.Errorf("got (%v, %v), want (%v, %v)", lo, hi, tt.low, tt.high)
			}
		})
	}
}

// TestBootstrapMatchesNormalTheory compares the percentile interval with the
// normal-theory interval mean ± z·s/√n (Efron & Tibshirani 1993, §13.3: for
// the mean of a large sample the two agree to O(1/n)). The bootstrap's own
// standard error is s·√((n−1)/n)/√n, which is what we compare against.
func TestBootstrapMatchesNormalTheory(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	values := make([]float64, 2000)
	for i := range values {
		values[i] = rng.Float64() // uniform [0,1): sd = 1/√12
	}
	n := float64(len(values))
	m := Mean(values)
	var ss float64
	for _, v := range values {
		ss += (v - m) * (v - m)
	}
	se := math.Sqrt(ss/n) / math.Sqrt(n)
	tests := []struct {
		name  string
		level float64
		z     float64
	}{
		{"a 95% interval is about mean ± 1.96 standard errors", 0.95, 1.959964},
		{"a 90% interval is about mean ± 1.645 standard errors", 0.90, 1.644854},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := BootstrapMeanCI(values, 4000, tt.level, 42)
			if !(lo < m && m < hi) {
				t.Fatalf("interval (%v, %v) excludes the mean %v", lo, hi, m)
			}
			// Monte Carlo error with 4000 resamples is a few percent of a
			// half-width; allow 10%.
			for _, half := range []float64{m - lo, hi - m} {
				if want := tt.z * se; math.Abs(half-want) > 0.1*want {
					t.Errorf("half-width %v, normal theory %v", half, want)
				}
			}
		})
	}
}

func TestBootstrapIsDeterministicForASeed(t *testing.T) {
	values := []float64{0.1, 0.5, 0.9, 0.3, 0.2, 0.8}
	l1, h1 := BootstrapMeanCI(values, 500, 0.95, 99)
	l2, h2 := BootstrapMeanCI(values, 500, 0.95, 99)
	if l1 != l2 || h1 != h2 {
		t.Errorf("same seed gave (%v,%v) then (%v,%v)", l1, h1, l2, h2)
	}
	l3, h3 := BootstrapMeanCI(values, 500, 0.95, 100)
	if l1 == l3 && h1 == h3 {
		t.Errorf("different seeds gave the same interval (%v,%v)", l1, h1)
	}
}

func TestBootstrapIsFastEnough(t *testing.T) {
	if testing.Short() {
		t.Skip("timing check skipped in -short mode")
	}
	values := make([]float64, 2000)
	for i := range values {
		values[i] = float64(i%7) / 7
	}
	start := time.Now()
	BootstrapMeanCI(values, 1000, 0.95, 3)
	// The target is well under 100 ms; allow slack for loaded CI machines
	// and the race detector.
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("2000 values × 1000 resamples took %v", d)
	}
}

func BenchmarkBootstrapMeanCI(b *testing.B) {
	values := make([]float64, 2000)
	for i := range values {
		values[i] = float64(i%7) / 7
	}
	b.ReportAllocs()
	for b.Loop() {
		BootstrapMeanCI(values, 1000, 0.95, 3)
	}
}
