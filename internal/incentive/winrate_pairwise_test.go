package incentive

import (
	"math"
	"testing"
	"time"
)

// Each row of the pairwise matrix averages to the contender's win rate,
// and the earlier commit wins ties within its advantage.
func TestPairwiseWinRatesAverageToWinRates(t *testing.T) {
	t0 := time.Unix(0, 0)
	cs := []Contender{
		{ID: "a", CommittedAt: t0, Scores: []float64{1, 0.5, 0.2, 0.9}},
		{ID: "b", CommittedAt: t0.Add(time.Hour), Scores: []float64{0.9, 0.5, 0.8, 0.1}},
		{ID: "c", CommittedAt: t0.Add(2 * time.Hour), Scores: []float64{0.2, 0.6}},
	}
	m := PairwiseWinRates(cs, 0.01)
	rates := WinRates(cs, 0.01)
	for a, c := range cs {
		if m[a][a] != 0 {
			t.Errorf("diagonal %s: %v", c.ID, m[a][a])
		}
		sum := 0.0
		for b := range cs {
			sum += m[a][b]
		}
		if got := sum / float64(len(cs)-1); math.Abs(got-rates[c.ID]) > 1e-12 {
			t.Errorf("%s: row mean %v, win rate %v", c.ID, got, rates[c.ID])
		}
	}
	if m[0][1] != 0.75 || m[1][0] != 0.25 { // a wins 1 (1>.9), .5 tie by ε, .9>.1; b wins .8>.2
		t.Errorf("a vs b: %v / %v, want 0.75 / 0.25", m[0][1], m[1][0])
	}
}
