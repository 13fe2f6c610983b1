package incentive

import (
	"math"
	"testing"
)

func TestSoftmax(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]float64
		temp   float64
		want   map[string]float64
		tol    float64
	}{
		{
			// Reference values from python3 math.exp over [1, 2, 3, 4].
			"softmax of one to four at T=1 matches the reference",
			map[string]float64{"a": 1, "b": 2, "c": 3, "d": 4}, 1,
			map[string]float64{"a": 0.03205860328008499, "b": 0.08714431874203257, "c": 0.23688281808991013, "d": 0.6439142598879722},
			1e-15,
		},
		{
			// e^-50 / (1 + e^-50) = 1.9287498479639178e-22 (python3).
			"at the default temperature a 0.5 lead in win rate takes nearly everything",
			map[string]float64{"a": 1, "b": 0.5}, DefaultTemperature,
			map[string]float64{"a": 1, "b": 1.9287498479639178e-22},
			1e-30,
		},
		{
			"large values do not overflow",
			map[string]float64{"a": 1000, "b": 999}, 1,
			map[string]float64{"a": 0.7310585786300049, "b": 0.2689414213699951},
			1e-15,
		},
		{
			"a zero temperature splits among the maxima",
			map[string]float64{"a": 0.9, "b": 0.9, "c": 0.1}, 0,
			map[string]float64{"a": 0.5, "b": 0.5, "c": 0},
			0,
		},
		{
			"NaN values get no weight",
			map[string]float64{"a": math.NaN(), "b": 0.3}, 0.01,
			map[string]float64{"a": 0, "b": 1},
			0,
		},
		{"an empty input gives an empty output", map[string]float64{}, 1, map[string]float64{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkMap(t, Softmax(tt.values, tt.temp), tt.want, tt.tol)
		})
	}
}

func TestEMA(t *testing.T) {
	tests := []struct {
		name     string
		old, new map[string]float64
		alpha    float64
		want     map[string]float64
	}{
		{
			"half and half averages and treats missing keys as zero",
			map[string]float64{"a": 1, "b": 0.2}, map[string]float64{"a": 0, "c": 0.6}, 0.5,
			map[string]float64{"a": 0.5, "b": 0.1, "c": 0.3},
		},
		{
			"a validator's 0.1 new + 0.9 old keeps most of the history",
			map[string]float64{"a": 1}, map[string]float64{"a": 0}, 0.1,
			map[string]float64{"a": 0.9},
		},
		{
			"alpha above one is clamped to taking the new values",
			map[string]float64{"a": 1}, map[string]float64{"a": 0.25}, 7,
			map[string]float64{"a": 0.25},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkMap(t, EMA(tt.old, tt.new, tt.alpha), tt.want, 1e-15)
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]float64
		want   map[string]float64
	}{
		{"values are scaled to sum to one", map[string]float64{"a": 3, "b": 1}, map[string]float64{"a": 0.75, "b": 0.25}},
		{"negative and NaN values count as zero", map[string]float64{"a": 3, "b": -2, "c": math.NaN()}, map[string]float64{"a": 1, "b": 0, "c": 0}},
		{"all zero stays all zero", map[string]float64{"a": 0, "b": 0}, map[string]float64{"a": 0, "b": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkMap(t, Normalize(tt.values), tt.want, 1e-15)
		})
	}
}

func checkMap(t *testing.T, got, want map[string]float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || math.Abs(g-w) > tol {
			t.Errorf("[%s] = %v (present %v), want %v ± %g", k, g, ok, w, tol)
		}
	}
}
