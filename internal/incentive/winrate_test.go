package incentive

import (
	"math"
	"slices"
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

func TestWinRates(t *testing.T) {
	leader := []float64{0.8, 0.6, 0.9}
	tests := []struct {
		name    string
		cs      []Contender
		epsilon float64
		want    map[string]float64
	}{
		{
			"a contender alone wins everything",
			[]Contender{{ID: "a", CommittedAt: at(0), Scores: leader}},
			0.03, map[string]float64{"a": 1},
		},
		{
			"a copy of the leader submitted later wins nothing",
			[]Contender{
				{ID: "leader", CommittedAt: at(0), Scores: leader},
				{ID: "copy", CommittedAt: at(5), Scores: slices.Clone(leader)},
			},
			0.03, map[string]float64{"leader": 1, "copy": 0},
		},
		{
			"a late model better by less than epsilon still loses",
			[]Contender{
				{ID: "leader", CommittedAt: at(0), Scores: []float64{0.8}},
				{ID: "late", CommittedAt: at(5), Scores: []float64{0.8 * 1.02}},
			},
			0.03, map[string]float64{"leader": 1, "late": 0},
		},
		{
			"a late model better by more than epsilon wins",
			[]Contender{
				{ID: "leader", CommittedAt: at(0), Scores: []float64{0.8}},
				{ID: "late", CommittedAt: at(5), Scores: []float64{0.8 * 1.04}},
			},
			0.03, map[string]float64{"leader": 0, "late": 1},
		},
		{
			"equal commit times give no advantage and equal scores win nothing",
			[]Contender{
				{ID: "a", CommittedAt: at(0), Scores: []float64{0.5, 0.7}},
				{ID: "b", CommittedAt: at(0), Scores: []float64{0.5, 0.6}},
			},
			0.03, map[string]float64{"a": 0.5, "b": 0},
		},
		{
			// By hand, ε = 0.1: A·1.1 beats B on item 1 (1.1 > 0.9) but not
			// item 2 (0.55 < 0.9); A and B (earlier) beat C on both items.
			// A: 3 of 4, B: 3 of 4, C: 0 of 4.
			"three contenders share wins over items × (N−1)",
			[]Contender{
				{ID: "A", CommittedAt: at(0), Scores: []float64{1, 0.5}},
				{ID: "B", CommittedAt: at(1), Scores: []float64{0.9, 0.9}},
				{ID: "C", CommittedAt: at(2), Scores: []float64{0.5, 0.2}},
			},
			0.1, map[string]float64{"A": 0.75, "B": 0.75, "C": 0},
		},
		{
			"no items gives zero win rates to several contenders",
			[]Contender{{ID: "a", CommittedAt: at(0)}, {ID: "b", CommittedAt: at(1)}},
			0.03, map[string]float64{"a": 0, "b": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := WinRates(tt.cs, tt.epsilon)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for id, w := range tt.want {
				if math.Abs(got[id]-w) > 1e-12 {
					t.Errorf("win rate[%s] = %v, want %v", id, got[id], w)
				}
			}
		})
	}
}

func TestDecayingEpsilon(t *testing.T) {
	tests := []struct {
		name      string
		age, span int
		want      float64
	}{
		{"a new model gets the full advantage", 0, 2000, 0.005},
		{"halfway (1002 of 2000 blocks) it is 0.005 − 0.0049·0.501", 1002, 2000, 0.0025451},
		{"at the end of the span it reaches the floor", 2000, 2000, 0.0001},
		{"past the span it stays at the floor", 14400, 2000, 0.0001},
		{"a negative age counts as new", -5, 2000, 0.005},
		{"a zero span gives the floor", 10, 0, 0.0001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DecayingEpsilon(0.005, 0.0001, tt.age, tt.span); math.Abs(got-tt.want) > 1e-15 {
				t.Errorf("DecayingEpsilon = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCompetitiveModels(t *testing.T) {
	// Pretraining subnet test vector (REFERENCE.md; macrocosm-os/pretraining,
	// compute_competitive_uids): ε decays 0.005 → 0.0001 over 2000 blocks, so
	// the fully decayed advantage is 0.0001.
	eps := DecayingEpsilon(0.005, 0.0001, math.MaxInt32, 2000)
	tests := []struct {
		name   string
		models []LossModel
		want   []string // sorted numerically
	}{
		{
			"a clearly better later model and the first are competitive",
			[]LossModel{{"100", 0.5, 1000}, {"50", 0.499, 2000}, {"75", 0.499, 2001}, {"80", 0.499, 2002}},
			[]string{"50", "100"},
		},
		{
			"a later clone of an earlier loss is not competitive",
			[]LossModel{{"100", 0.5, 1000}, {"50", 0.5, 2000}, {"75", 0.499, 2001}},
			[]string{"75", "100"},
		},
		{
			"equal losses in the same block exclude each other",
			[]LossModel{{"1", 0.4, 10}, {"2", 0.4, 10}},
			nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CompetitiveModels(tt.models, eps)
			slices.SortFunc(got, func(a, b string) int {
				x, _ := strconv.Atoi(a)
				y, _ := strconv.Atoi(b)
				return x - y
			})
			if !slices.Equal(got, tt.want) {
				t.Errorf("CompetitiveModels = %v, want %v", got, tt.want)
			}
		})
	}
}
