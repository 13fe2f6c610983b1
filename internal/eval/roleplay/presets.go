package roleplay

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Scoring presets: named ways of turning an item's components into a score.
// PresetCrucible is ours (the default); the others reproduce the formulas
// of the Dippy roleplay subnet's scoring eras, read from its code
// (impel-intelligence/dippy-bittensor-subnet; file and commit named at
// each constant). What Dippy measured in a slot and what Crucible measures
// there can differ: Dippy's 2024 "qualitative score" was the probability of
// a dataset continuation and its creativity the entropy of the model's
// logits, while Crucible's quality is the judge's rubric grade and its
// creativity the n-gram measure of this package (an OpenAI chat endpoint
// returns no logits). The presets reproduce how each era weighted,
// transformed, gated and multiplied those slots.
const (
	// PresetCrucible is Crucible's own scoring (DefaultScoring): see the
	// package documentation.
	PresetCrucible = "crucible"
	// PresetDippyJul2024 is Dippy's July 2024 scoring
	// (model/scores.py @054386c, new_total_score):
	//
	//	(0.82·q/(1+e^(−5(c−0.2))) + 0.06·size + 0.06·latency + 0.06·vibe) × coherence
	//
	// where coherence is the share of coherent items (a multiplier, no gate).
	PresetDippyJul2024 = "dippy-2024-07"
	// PresetDippyNov2024 is Dippy's November 2024 scoring, the era the seed
	// FAQ describes (common/scores.py @280915c, calculate_total_score):
	//
	//	(0.84·q/(1+e^(8(q−0.25))·e^(−8(c−0.5))) + 0.08·latency + 0.08·vibe) × [coherence ≥ 0.95] × post_eval
	//
	// The size score was computed but its use is commented out: no size.
	PresetDippyNov2024 = "dippy-2024-11"
	// PresetDippyFeb2025 is Dippy's February 2025 scoring
	// (common/scores.py @046b6b9, calculate_total_score):
	//
	//	(0.84·q/(1+e^(8(q−0.25))·e^(−8(c−0.5))) + 0.16·latency) × [coherence ≥ 0.95] × (1.5 if judge > 0.45)
	//
	// judge is the judge's win rate against the reference (a judge score of
	// exactly 1 counts as 0, Dippy's "temp fix for faulty judge score
	// data"). Dippy's total lies in [0,1.5]; Crucible divides it by 1.5 so
	// scores stay in [0,1], which changes no comparison between models.
	PresetDippyFeb2025 = "dippy-2025-02"
	// PresetDippyJudge is Dippy's scoring since March 2025: the judge's win
	// rate against the reference alone (docs/llm_scoring.md @3296f41,
	// "the number of wins against the total number of evaluations comprises
	// the judge score"; scoring/judge_score.py @046b6b9,
	// collect_judge_scores: wins over three criteria per conversation).
	PresetDippyJudge = "dippy-judge"
)

// Presets returns the preset names, ours first.
func Presets() []string {
	return []string{PresetCrucible, PresetDippyJul2024, PresetDippyNov2024, PresetDippyFeb2025, PresetDippyJudge}
}

// SizeMissing values: what a size component without a parameter count does.
const (
	// SizeRenormalise leaves the size component out and divides by the
	// remaining weights. Every preset uses it.
	SizeRenormalise = "renormalise"
	// SizeZero (the empty value) scores a missing size 0: how roleplay
	// competitions stored before the presets were scored, kept so their
	// scores do not change.
	SizeZero = ""
)

// Constants of Dippy's formulas, each with the file it was read from.
const (
	// model/scores.py @054386c: CREATIVITY_STEEPNESS, CREATIVITY_THRESHOLD.
	dippyJulCreativitySteepness = 5
	dippyJulCreativityThreshold = 0.2
	// common/scores.py @280915c and @046b6b9: CREATIVITY_STEEPNESS,
	// CREATIVITY_THRESHOLD, QUALITATIVE_SCORE_THRESHOLD.
	dippyCreativitySteepness  = 8
	dippyCreativityThreshold  = 0.5
	dippyQualitativeThreshold = 0.25
	// common/scores.py @280915c and @046b6b9: COHERENCE_MINIMUM.
	dippyCoherenceMinimum = 0.95
	// common/scores.py @046b6b9: JUDGE_SCORE_THRESHOLD and the ×1.5 of
	// calculate_total_score.
	dippyJudgeThreshold = 0.45
	dippyJudgeBonus     = 1.5
	// scoring/vibe_score.py @0e8ae80 (and dippy_validation_api's July
	// 2024 copy): LENGTH_DIFF_PENALTY_STEEPNESS, lengths in characters.
	dippyVibeSteepness = 2
	// scoring/common.py @046b6b9 and dippy_validation_api/validation_api.py
	// (July 2024): MAX_AVG_LATENCY in milliseconds; scoring/eval_score.py
	// @069eb18 warmup_model returns the average latency × 0.95.
	dippyMaxLatencyMS     = 10000
	dippyLatencyDiscount  = 0.95
	dippyJulMaxModelBytes = 30 * 1024 * 1024 * 1024 // validation_api.py (July 2024): MAX_MODEL_SIZE
	// dippy_validation_api/eval_score_api.py (July 2024) loads the model in
	// 4-bit (bitsandbytes) and scores 1 − get_memory_footprint()/MAX_MODEL_SIZE;
	// half a byte per parameter is that footprint without the layers kept
	// in 16 bits.
	dippyJulBytesPerParam = 0.5
)

// coherenceRule is how a preset uses the share of coherent items.
type coherenceRule int

const (
	// coherenceGate zeroes every item when the share is below
	// Thresholds.MinCoherent; an incoherent item scores 0 on its own too.
	coherenceGate coherenceRule = iota
	// coherenceShareGate zeroes every item when the share is below
	// Thresholds.MinCoherent, and only then (Dippy's binary coherence).
	coherenceShareGate
	// coherenceMultiply multiplies every item by the share.
	coherenceMultiply
)

// preset holds the formulas a Scoring preset uses.
type preset struct {
	scoring Scoring
	// adjust combines quality and creativity into the quality slot.
	adjust    func(q, c float64) float64
	vibe      func(v vibeInput, t Thresholds) float64
	latency   func(ms int64, t Thresholds) float64
	size      func(params int64, t Thresholds) float64
	coherence coherenceRule
	// judge: the preset needs the judge's comparison with the reference.
	judge bool
	// judgeBonus applies February 2025's ×1.5 above the judge threshold.
	judgeBonus bool
	// judgeOnly: the item score is the judge's win share alone.
	judgeOnly bool
}

// vibeInput are the lengths behind a vibe score.
type vibeInput struct {
	replyWords, userWords int
	replyChars, userChars int
}

func presetOf(name string) (preset, bool) {
	d := DefaultScoring()
	d.SizeMissing = SizeRenormalise
	ourScoring := d
	ourScoring.Preset = PresetCrucible
	ours := preset{
		scoring: ourScoring,
		adjust:  func(q, c float64) float64 { return q * c },
		vibe:    func(v vibeInput, t Thresholds) float64 { return vibe(v.replyWords, v.userWords, t.VibeTolerance) },
		latency: latencyScore,
		size:    sizeScore,
	}
	dippy := func(w Weights, minCoherent float64) Scoring {
		s := d
		s.Preset, s.Weights = name, w
		s.Thresholds.MinCoherent = minCoherent
		return s
	}
	switch name {
	case PresetCrucible, "":
		return ours, true
	case PresetDippyJul2024:
		return preset{
			scoring:   dippy(Weights{Quality: 0.82, Size: 0.06, Latency: 0.06, Vibe: 0.06}, 0),
			adjust:    dippyJulAdjust,
			vibe:      dippyVibe,
			latency:   dippyLatency,
			size:      dippyJulSize,
			coherence: coherenceMultiply,
		}, true
	case PresetDippyNov2024:
		return preset{
			scoring: dippy(Weights{Quality: 0.84, Latency: 0.08, Vibe: 0.08}, dippyCoherenceMinimum),
			adjust:  dippyAdjust, vibe: dippyVibe, latency: dippyLatency, size: noSize,
			coherence: coherenceShareGate,
		}, true
	case PresetDippyFeb2025:
		return preset{
			scoring: dippy(Weights{Quality: 0.84, Latency: 0.16}, dippyCoherenceMinimum),
			adjust:  dippyAdjust, vibe: dippyVibe, latency: dippyLatency, size: noSize,
			coherence: coherenceShareGate, judge: true, judgeBonus: true,
		}, true
	case PresetDippyJudge:
		// The weights are unused (the judge's win share is the score);
		// quality stands for it so the configuration validates.
		return preset{
			scoring: dippy(Weights{Quality: 1}, 0),
			adjust:  dippyAdjust, vibe: dippyVibe, latency: dippyLatency, size: noSize,
			coherence: coherenceShareGate, judge: true, judgeOnly: true,
		}, true
	}
	return preset{}, false
}

// ScoringPreset returns the scoring configuration of a named preset ("" is
// PresetCrucible), to store in a competition's configuration.
func ScoringPreset(name string) (Scoring, error) {
	p, ok := presetOf(name)
	if !ok {
		return Scoring{}, unknownPreset(name)
	}
	return p.scoring, nil
}

func unknownPreset(name string) error {
	return fmt.Errorf("roleplay: unknown scoring preset %q (want one of %s)", name, strings.Join(Presets(), ", "))
}

// dippyJulAdjust is model/scores.py @054386c adjusted_q_score.
func dippyJulAdjust(q, c float64) float64 {
	return q / (1 + math.Exp(-dippyJulCreativitySteepness*(c-dippyJulCreativityThreshold)))
}

// dippyAdjust is common/scores.py @280915c adjusted_q_score.
func dippyAdjust(q, c float64) float64 {
	impact := math.Exp(dippyCreativitySteepness * (q - dippyQualitativeThreshold))
	return q / (1 + impact*math.Exp(-dippyCreativitySteepness*(c-dippyCreativityThreshold)))
}

// dippyVibe is scoring/vibe_score.py calculate_vibe_match_score for one
// reply: e^(−2·|reply − user|/user) over lengths in characters, 0 for an
// empty user message.
func dippyVibe(v vibeInput, _ Thresholds) float64 {
	if v.userChars == 0 {
		return 0
	}
	diff := math.Abs(float64(v.replyChars - v.userChars))
	return math.Exp(-diff * dippyVibeSteepness / float64(v.userChars))
}

// dippyLatency is 1 − 0.95·ms/10000 (scoring/get_eval_score.py: latency
// score 1 − avg_latency/MAX_AVG_LATENCY with warmup_model's 0.95 discount),
// clamped at 0 where Dippy would go negative. Dippy timed a forward pass on
// its own GPU; Crucible times the chat request.
func dippyLatency(ms int64, _ Thresholds) float64 {
	return clamp01(1 - dippyLatencyDiscount*float64(ms)/dippyMaxLatencyMS)
}

// dippyJulSize is July 2024's 1 − footprint/MAX_MODEL_SIZE with a 4-bit
// footprint of half a byte per parameter.
func dippyJulSize(params int64, _ Thresholds) float64 {
	return clamp01(1 - float64(params)*dippyJulBytesPerParam/dippyJulMaxModelBytes)
}

func noSize(int64, Thresholds) float64 { return 0 }

// itemScore is one item's weighted score under preset p before the
// evaluation-wide rules (coherence share, judge bonus, multiplier);
// sizeKnown says whether a parameter count stood behind c.Size.
func (s Scoring) itemScore(p preset, c Components, sizeKnown bool) float64 {
	if p.judgeOnly {
		return clamp01(c.JudgeWin)
	}
	if p.coherence == coherenceGate && c.Coherence == 0 {
		return 0
	}
	w := s.Weights
	if !sizeKnown && s.SizeMissing == SizeRenormalise {
		w.Size = 0
	}
	sum := w.Quality + w.Vibe + w.Latency + w.Size
	if sum <= 0 {
		return 0
	}
	return clamp01((w.Quality*p.adjust(c.Quality, c.Creativity) + w.Vibe*c.Vibe + w.Latency*c.Latency + w.Size*c.Size) / sum)
}

// evaluationFactor is what every item of an evaluation is multiplied by:
// the coherence rule over the share of coherent items (coherent of n), the judge bonus
// over the mean judge win share, and the multiplier.
func (s Scoring) evaluationFactor(p preset, coherent, n int, judge float64) float64 {
	if n == 0 {
		return 0
	}
	f := s.Multiplier
	switch p.coherence {
	case coherenceMultiply:
		f *= float64(coherent) / float64(n)
	case coherenceShareGate: // Dippy: (N − incoherent)/N ≥ COHERENCE_MINIMUM
		if float64(coherent)/float64(n) < s.Thresholds.MinCoherent {
			return 0
		}
	default: // Crucible's gate, as stored competitions were scored
		if float64(coherent) < s.Thresholds.MinCoherent*float64(n) {
			return 0
		}
	}
	if p.judgeBonus {
		if judge == 1 { // Dippy: "Temp fix for faulty judge score data"
			judge = 0
		}
		if judge > dippyJudgeThreshold {
			f *= dippyJudgeBonus
		}
		f /= dippyJudgeBonus
	}
	return f
}

// judges reports whether the preset named by s asks the judge to compare
// each reply with the reference (PresetDippyFeb2025, PresetDippyJudge).
func (s Scoring) judges() bool {
	p, ok := presetOf(s.Preset)
	return ok && p.judge
}

func validPreset(name string) error {
	if name == "" || slices.Contains(Presets(), name) {
		return nil
	}
	return unknownPreset(name)
}
