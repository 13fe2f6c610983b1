package incentive

import (
	"slices"
	"strings"
	"testing"
)

func preset(t *testing.T, name string) WinRateConfig {
	t.Helper()
	c, err := Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// blocks is a timeline in block numbers.
func blocks(now int64) Timeline { return Timeline{Now: now, BlockTicks: 1} }

// The issue's three models (issue 17; Dippy's rule from
// impel-intelligence/dippy-bittensor-subnet utilities/compete.py iswin and
// neurons/validator.py compute_wins): A 0.80 @100, B 0.82 @200, C 0.79 @50.
// A beats B (0.82·0.97 = 0.7954 < 0.80), C beats A (0.80·0.97 = 0.776 <
// 0.79), B beats C (0.7954 > 0.79): one win each, a third of the weight each.
func TestDippyGivesEachOfTheIssuesThreeModelsAThird(t *testing.T) {
	models := []Model{{ID: "A", Committed: 100, Score: 0.80}, {ID: "B", Committed: 200, Score: 0.82}, {ID: "C", Committed: 50, Score: 0.79}}
	got := preset(t, PresetDippy).Compute(models, blocks(300))
	checkMap(t, got.WinRates, map[string]float64{"A": 0.5, "B": 0.5, "C": 0.5}, 0)
	checkMap(t, got.Weights, map[string]float64{"A": 1.0 / 3, "B": 1.0 / 3, "C": 1.0 / 3}, 1e-15)

	// Crucible's own rule on the same totals (one item each): the earlier
	// side ×1.01 lets B beat both, so B takes everything.
	for i := range models {
		models[i].Items = []float64{models[i].Score}
	}
	cru := preset(t, PresetCrucible).Compute(models, blocks(300))
	checkMap(t, cru.WinRates, map[string]float64{"A": 0.5, "B": 1, "C": 0}, 0)
	checkMap(t, cru.Weights, map[string]float64{"A": 1.9287498479639178e-22, "B": 1, "C": 3.720075976020836e-44}, 1e-30)
}

func TestDippyFailedAndZeroScoredModelsWeighExactlyZero(t *testing.T) {
	models := []Model{
		{ID: "good", Committed: 100, Score: 0.8},
		{ID: "failed", Committed: 50, Failed: true, Score: 0.9},
		{ID: "zero", Committed: 60},
	}
	got := preset(t, PresetDippy).Compute(models, blocks(300))
	// They still take part in the comparisons (Dippy scores them 0), so
	// "good" wins both of its comparisons.
	checkMap(t, got.WinRates, map[string]float64{"good": 1, "failed": 0, "zero": 0}, 0)
	if got.Weights["failed"] != 0 || got.Weights["zero"] != 0 || got.Weights["good"] != 1 {
		t.Errorf("weights = %v, want good 1 and exactly 0 for the others", got.Weights)
	}
	// Crucible leaves the failed model out but softmaxes the zero-scored one.
	cru := preset(t, PresetCrucible)
	cru.PerItem = false
	if w := cru.Compute(models, blocks(300)).Weights; !(w["zero"] > 0) || w["failed"] != 0 {
		t.Errorf("crucible weights = %v, want a tiny positive weight for zero and 0 for failed", w)
	}
}

func TestDippyTemperatureAndSameBlock(t *testing.T) {
	// Same block: no penalty, the higher total wins. Win rates 1 and 0 at
	// T = 0.075: 1/(1+e^(−1/0.075)) (python3 math).
	models := []Model{{ID: "a", Committed: 100, Score: 0.80}, {ID: "b", Committed: 100, Score: 0.79}}
	got := preset(t, PresetDippy).Compute(models, blocks(100))
	checkMap(t, got.WinRates, map[string]float64{"a": 1, "b": 0}, 0)
	checkMap(t, got.Weights, map[string]float64{"a": 0.9999983804058309, "b": 1.6195941692230886e-06}, 1e-15)
}

// Pretraining's own cases (tests/pretrain/test_validation.py,
// test_compute_filtered_win_rates and test_compute_wins_one_uid), with its
// LinearDecay(0.005, 0.0001, 2000) and losses (lower is better).
func TestPretrainingFilteredWinRates(t *testing.T) {
	c := preset(t, PresetPretraining)
	c.LowerIsBetter, c.Decay = true, &Decay{Start: 0.005, End: 0.0001, Blocks: 2000}
	tests := []struct {
		name     string
		models   []Model
		now      int64
		winRates map[string]float64
		weighed  []string
	}{
		{
			"the current top model's clones are filtered out",
			[]Model{{ID: "100", Committed: 1000, Score: 0.5}, {ID: "50", Committed: 2000, Score: 0.5}, {ID: "75", Committed: 2001, Score: 0.499}},
			2001, map[string]float64{"100": 1, "75": 0, "50": 0}, []string{"100", "75"},
		},
		{
			// 100's ε at age 1002 is 0.005 − 0.0049·0.501 = 0.0025451:
			// 0.5·(1 − 0.0025451) = 0.49873 < 0.499, so 100 still wins.
			"a new top model's clones are filtered out and the old top keeps its advantage",
			[]Model{{ID: "100", Committed: 1000, Score: 0.5}, {ID: "50", Committed: 2000, Score: 0.499},
				{ID: "75", Committed: 2001, Score: 0.499}, {ID: "80", Committed: 2002, Score: 0.499}},
			2002, map[string]float64{"100": 1, "50": 0, "75": 0, "80": 0}, []string{"100", "50"},
		},
		{
			"a lone model wins everything",
			[]Model{{ID: "100", Committed: 1000, Score: 0.5}}, 1000,
			map[string]float64{"100": 1}, []string{"100"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Compute(tt.models, blocks(tt.now))
			checkMap(t, got.WinRates, tt.winRates, 0)
			var weighed []string
			for id, w := range got.Weights {
				if w > 0 {
					weighed = append(weighed, id)
				}
			}
			slices.Sort(weighed)
			slices.Sort(tt.weighed)
			if !slices.Equal(weighed, tt.weighed) {
				t.Errorf("models with weight = %v, want %v (weights %v)", weighed, tt.weighed, got.Weights)
			}
		})
	}
}

// Pretraining's compute_competitive_uids cases (tests/pretrain/
// test_validation.py), LinearDecay(0.005, 0.0001 or 0.01, 1000).
func TestPretrainingCompetitiveFilter(t *testing.T) {
	tests := []struct {
		name   string
		end    float64
		models []Model
		want   []string
	}{
		{"better models in sequence are all kept", 0.0001,
			[]Model{{ID: "100", Committed: 1000, Score: 0.5}, {ID: "50", Committed: 2000, Score: 0.499}, {ID: "75", Committed: 2500, Score: 0.498}},
			[]string{"100", "50", "75"}},
		{"better by less than the decayed epsilon keeps only the first", 0.01,
			[]Model{{ID: "100", Committed: 1000, Score: 0.5}, {ID: "50", Committed: 2000, Score: 0.4999}, {ID: "75", Committed: 2500, Score: 0.499}},
			[]string{"100"}},
		{"a later model worse than an earlier one is filtered", 0.0001,
			[]Model{{ID: "100", Committed: 1000, Score: 0.5}, {ID: "50", Committed: 2000, Score: 0.498}, {ID: "75", Committed: 2500, Score: 0.499}},
			[]string{"100", "50"}},
		{"in the same block the lower loss is kept", 0.0001,
			[]Model{{ID: "100", Committed: 1000, Score: 0.5}, {ID: "50", Committed: 1000, Score: 0.4}},
			[]string{"50"}},
		{"a later worse model leaves only the first", 0.0001,
			[]Model{{ID: "100", Committed: 1000, Score: 0.5}, {ID: "50", Committed: 2000, Score: 0.7}},
			[]string{"100"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := preset(t, PresetPretraining)
			c.LowerIsBetter, c.Decay = true, &Decay{Start: 0.005, End: tt.end, Blocks: 1000}
			var got []string
			for _, m := range c.competitive(tt.models) {
				got = append(got, m.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("competitive = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPretrainingOnScoresDiscountsTheLaterModel(t *testing.T) {
	// Higher-is-better scores: a model 0.2 % better than one committed
	// 50400 blocks earlier (ε fully decayed to 0.0001) wins; one only 0.2 %
	// better than a brand-new model (ε 0.005) does not.
	c := preset(t, PresetPretraining)
	old := []Model{{ID: "old", Committed: 0, Score: 0.5}, {ID: "new", Committed: 50400, Score: 0.501}}
	if got := c.Compute(old, blocks(50400)).WinRates; got["new"] != 1 {
		t.Errorf("against an old model: %v, want new to win", got)
	}
	young := []Model{{ID: "old", Committed: 50399, Score: 0.5}, {ID: "new", Committed: 50400, Score: 0.501}}
	if got := c.Compute(young, blocks(50400)).WinRates; got["old"] != 1 {
		t.Errorf("against a young model: %v, want old to win", got)
	}
}

func TestSmooth(t *testing.T) {
	c := preset(t, PresetPretraining)
	got := c.Smooth(map[string]float64{"a": 1, "gone": 0}, map[string]float64{"a": 0, "b": 1})
	checkMap(t, got, map[string]float64{"a": 0.5, "b": 0.5}, 1e-15)
	if got := preset(t, PresetDippy).Smooth(map[string]float64{"a": 1}, map[string]float64{"b": 1}); got["b"] != 1 || len(got) != 1 {
		t.Errorf("without EMA Smooth = %v, want the new weights", got)
	}
}

func TestPresetAndValidate(t *testing.T) {
	for _, name := range PresetNames() {
		if err := preset(t, name).Validate(); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	if c := preset(t, ""); c.Preset != PresetCrucible {
		t.Errorf("empty preset = %q, want crucible", c.Preset)
	}
	if _, err := Preset("yuma"); err == nil || !strings.Contains(err.Error(), "unknown win-rate preset") {
		t.Errorf("err = %v", err)
	}
	bad := []WinRateConfig{
		{Advantage: "sideways", Temperature: 1},
		{Advantage: BoostEarlier, Epsilon: 1, Temperature: 1},
		{Advantage: BoostEarlier, Epsilon: -0.1, Temperature: 1},
		{Advantage: BoostEarlier, Temperature: 0},
		{Advantage: BoostEarlier, Temperature: 1, EMA: 2},
		{Advantage: BoostEarlier, Temperature: 1, Decay: &Decay{Start: 2, End: 0, Blocks: 1}},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
}
