package roleplay

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"crucible/internal/eval"
)

// uniform returns n results with components c, the first incoherent ones
// incoherent (Coherence 0) and the given parameter count; replies are empty
// so no cross-reply penalty changes creativity. With every item alike, the
// mean of the item scores is Dippy's formula on the evaluation's averages.
func uniform(t *testing.T, n, incoherent int, c Components, params int64) []eval.Result {
	t.Helper()
	rs := make([]eval.Result, n)
	for i := range rs {
		ci := c
		ci.Coherence = 1
		if i < incoherent {
			ci.Coherence = 0
		}
		d, err := json.Marshal(Detail{Components: ci, Params: params})
		if err != nil {
			t.Fatal(err)
		}
		rs[i] = eval.Result{Index: i, Prompt: "p" + string(rune('a'+i)), Detail: d}
	}
	return rs
}

func total(t *testing.T, rs []eval.Result, preset string) float64 {
	t.Helper()
	s, err := ScoringPreset(preset)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := Aggregate(rs, s)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// The expected values are Dippy's own expressions evaluated on the same
// inputs (in Python, as the files named below compute them), with
// quality 0.6, creativity 0.7, vibe 0.9 and latency 0.8 for every sample.
func TestEachDippyPresetReproducesItsEraFormula(t *testing.T) {
	c := Components{Quality: 0.6, Creativity: 0.7, Vibe: 0.9, Latency: 0.8}
	const sevenB = 7_000_000_000
	tests := []struct {
		name       string
		preset     string
		incoherent int // of 20 items
		params     int64
		judgeWin   float64
		want       float64
	}{
		// model/scores.py @054386c new_total_score: (0.82·q/(1+e^(−5(c−0.2)))
		// + 0.06·size + 0.06·latency + 0.06·vibe) × coherence, size =
		// 1 − 7e9·0.5/(30·2^30) (dippy_validation_api, 4-bit footprint),
		// coherence 19/20.
		{"July 2024 with a parameter count", PresetDippyJul2024, 1, sevenB, 0, 0.5796505915368779},
		// The same without a count: size left out, the other weights
		// renormalised by 0.94.
		{"July 2024 without a parameter count", PresetDippyJul2024, 1, 0, 0, 0.5625998794234797},
		// common/scores.py @280915c calculate_total_score: (0.84·adjusted_q
		// + 0.08·latency + 0.08·vibe), coherence 19/20 = 0.95 passes the
		// ≥ 0.95 gate; post_eval 1; the size score is not used.
		{"November 2024", PresetDippyNov2024, 1, sevenB, 0, 0.2526635091164951},
		{"November 2024 below the coherence minimum", PresetDippyNov2024, 2, sevenB, 0, 0},
		// common/scores.py @046b6b9: (0.84·adjusted_q + 0.16·latency) ×1.5
		// when the judge score exceeds 0.45; Dippy's 0.36699526367474267
		// divided by 1.5.
		{"February 2025 above the judge threshold", PresetDippyFeb2025, 1, 0, 2.0 / 3, 0.36699526367474267 / 1.5},
		// No bonus: Dippy's 0.2446635091164951, divided by 1.5.
		{"February 2025 below the judge threshold", PresetDippyFeb2025, 1, 0, 1.0 / 3, 0.2446635091164951 / 1.5},
		// A judge score of exactly 1 counts as 0 ("Temp fix for faulty
		// judge score data"): no bonus.
		{"February 2025 with a perfect judge score", PresetDippyFeb2025, 0, 0, 1, 0.2446635091164951 / 1.5},
		{"February 2025 below the coherence minimum", PresetDippyFeb2025, 2, 0, 2.0 / 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ci := c
			ci.JudgeWin = tt.judgeWin
			if tt.params > 0 {
				p, _ := presetOf(tt.preset)
				ci.Size = p.size(tt.params, DefaultScoring().Thresholds)
			}
			if got := total(t, uniform(t, 20, tt.incoherent, ci, tt.params), tt.preset); math.Abs(got-tt.want) > 1e-12 {
				t.Fatalf("total %.15f, want %.15f", got, tt.want)
			}
		})
	}
}

// scoring/judge_score.py collect_judge_scores: generated wins over
// 3 × valid conversations. Three conversations won on 1, 2 and 3 criteria:
// (1+2+3)/9.
func TestTheJudgeOnlyPresetIsDippysWinRate(t *testing.T) {
	var rs []eval.Result
	for i, v := range []CompareVerdict{
		{Realism: "generated", Entertainment: "original", Coherency: "tie"},
		{Realism: "generated", Entertainment: "generated", Coherency: "original"},
		{Realism: "generated", Entertainment: "generated", Coherency: "generated"},
	} {
		c := Components{Quality: 0.1, Creativity: 0.1, JudgeWin: v.WinShare()} // incoherent: no gate here
		d, _ := json.Marshal(Detail{Components: c})
		rs = append(rs, eval.Result{Index: i, Detail: d})
	}
	s, _ := ScoringPreset(PresetDippyJudge)
	got, comps, err := Aggregate(rs, s)
	if err != nil {
		t.Fatal(err)
	}
	if want := 6.0 / 9; math.Abs(got-want) > 1e-12 || math.Abs(comps["judge_win"]-want) > 1e-12 {
		t.Fatalf("total %v, judge_win %v, want %v", got, comps["judge_win"], want)
	}
}

// A model without a parameter count never scores a silent 0 on size under a
// preset: the size weight is left out and the rest renormalised, so its
// score equals what a size-free weighting gives; a stored competition
// (no preset) keeps scoring the missing size 0 as it always did.
func TestAMissingSizeIsLeftOutAndTheWeightsRenormalise(t *testing.T) {
	c := Components{Quality: 0.6, Creativity: 0.7, Vibe: 0.9, Latency: 0.8}
	rs := uniform(t, 5, 0, c, 0)
	// Ours: (0.8·q·c + 0.1·vibe + 0.05·latency) / 0.95.
	want := (0.8*0.6*0.7 + 0.1*0.9 + 0.05*0.8) / 0.95
	if got := total(t, rs, PresetCrucible); math.Abs(got-want) > 1e-12 {
		t.Fatalf("crucible preset without size: %v, want %v", got, want)
	}
	stored, _, err := Aggregate(rs, Scoring{})
	if err != nil {
		t.Fatal(err)
	}
	if want := 0.8*0.6*0.7 + 0.1*0.9 + 0.05*0.8; math.Abs(stored-want) > 1e-12 {
		t.Fatalf("stored scoring without size: %v, want %v (size 0)", stored, want)
	}
	// With a count, the size weight counts: 7e9 of 70e9 scores 0.9.
	c.Size = sizeScore(7_000_000_000, DefaultScoring().Thresholds)
	want = 0.8*0.6*0.7 + 0.1*0.9 + 0.05*0.8 + 0.05*0.9
	if got := total(t, uniform(t, 5, 0, c, 7_000_000_000), PresetCrucible); math.Abs(got-want) > 1e-12 {
		t.Fatalf("crucible preset with size: %v, want %v", got, want)
	}
}

// The component definitions of the Dippy presets, on their sources' numbers.
func TestDippyComponentDefinitions(t *testing.T) {
	th := DefaultScoring().Thresholds
	tests := []struct {
		name      string
		got, want float64
	}{
		// scoring/get_eval_score.py: 1 − avg/10000 with warmup_model's ×0.95.
		{"4 s of latency", dippyLatency(4000, th), 1 - 0.95*4000/10000.0},
		{"latency past the maximum is 0, not negative", dippyLatency(20000, th), 0},
		// scoring/vibe_score.py: e^(−|150−100|·2/100).
		{"a reply 50 characters longer than a 100-character message", dippyVibe(vibeInput{replyChars: 150, userChars: 100}, th), 0.36787944117144233},
		{"an empty user message has no vibe", dippyVibe(vibeInput{replyChars: 10}, th), 0},
		// validation_api.py (July 2024): 1 − footprint/(30 GiB).
		{"a 7B model in 4 bits", dippyJulSize(7_000_000_000, th), 0.8913456996281942},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if math.Abs(tt.got-tt.want) > 1e-12 {
				t.Fatalf("got %.15f, want %.15f", tt.got, tt.want)
			}
		})
	}
}

func TestPresetsValidateAndUnknownOnesAreRefused(t *testing.T) {
	for _, name := range Presets() {
		s, err := ScoringPreset(name)
		if err != nil || s.Validate() != nil || s.Preset != name || s.SizeMissing != SizeRenormalise {
			t.Errorf("preset %s: %+v, %v, validate %v", name, s, err, s.Validate())
		}
	}
	if _, err := ScoringPreset("dippy-2023"); err == nil || !strings.Contains(err.Error(), "dippy-2024-11") {
		t.Fatalf("unknown preset: %v", err)
	}
	if err := (Scoring{Preset: "nope"}).WithDefaults().Validate(); err == nil {
		t.Fatal("a stored unknown preset validates")
	}
	// A stored configuration naming only its preset takes the preset's weights.
	s := Scoring{Preset: PresetDippyNov2024}.WithDefaults()
	if s.Weights != (Weights{Quality: 0.84, Latency: 0.08, Vibe: 0.08}) || s.Thresholds.MinCoherent != 0.95 || s.SizeMissing != SizeRenormalise {
		t.Fatalf("preset defaults: %+v", s)
	}
}

func TestParseCompareAcceptsOnlyDippysLabels(t *testing.T) {
	v, err := ParseCompare("```json\n{\"realism_win\": \"generated\", \"entertainment_win\": \"tie\", \"coherency_win\": \"original\"}\n```")
	if err != nil || v.WinShare() != 1.0/3 {
		t.Fatalf("ParseCompare = %+v, %v", v, err)
	}
	for _, bad := range []string{"the generated one", `{"realism_win": "generated", "entertainment_win": "tie"}`,
		`{"realism_win": "mine", "entertainment_win": "tie", "coherency_win": "tie"}`} {
		if _, err := ParseCompare(bad); !errors.Is(err, ErrJudgeOutput) {
			t.Errorf("ParseCompare(%q) = %v, want ErrJudgeOutput", bad, err)
		}
	}
}
