package roleplay

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"

	"crucible/internal/eval"
)

// Weights are the relative weights of the scored components; they are
// normalised by their sum. Creativity has no weight: it multiplies quality.
type Weights struct {
	Quality float64 `json:"quality"`
	Vibe    float64 `json:"vibe"`
	Latency float64 `json:"latency"`
	Size    float64 `json:"size"`
}

// Thresholds are the parameters of the component formulas.
type Thresholds struct {
	// MinCoherent is the fraction of items the judge must find coherent;
	// below it every item, and so the total, scores 0.
	MinCoherent float64 `json:"min_coherent"`
	// CopyNGram is the n-gram length (words) that counts as a verbatim copy
	// of the reference reply or of the character card.
	CopyNGram int `json:"copy_ngram"`
	// RepeatNGram is the n-gram length (words) of the repetition checks
	// within a reply and across replies.
	RepeatNGram int `json:"repeat_ngram"`
	// CrossRepeatPenalty scales the share of a reply's n-grams found in the
	// submission's other replies into a creativity penalty.
	CrossRepeatPenalty float64 `json:"cross_repeat_penalty"`
	// NearDuplicate is the Jaccard similarity of n-gram sets at or above
	// which two replies to different prompts are near duplicates
	// (creativity 0 for both).
	NearDuplicate float64 `json:"near_duplicate"`
	// VibeTolerance is the length ratio (either way) between reply and user
	// message still scored 1.
	VibeTolerance float64 `json:"vibe_tolerance"`
	// LatencyFullMS is the reply latency up to which latency scores 1.
	LatencyFullMS int64 `json:"latency_full_ms"`
	// LatencyZeroMS is the reply latency from which latency scores 0.
	LatencyZeroMS int64 `json:"latency_zero_ms"`
	// MaxParams is the parameter count at which size scores 0.
	MaxParams int64 `json:"max_params"`
}

// Scoring is the JSON-serialisable scoring configuration of a roleplay
// competition; it is printed by `crucible competition show`.
type Scoring struct {
	// Preset names the formulas (see Presets); "" is PresetCrucible.
	Preset     string     `json:"preset,omitempty"`
	Weights    Weights    `json:"weights"`
	Thresholds Thresholds `json:"thresholds"`
	// Multiplier is the post-evaluation multiplier applied by Aggregate
	// (the hook for extra benchmarks); 0 means 1.
	Multiplier float64 `json:"multiplier"`
	// SizeMissing is what the size component does for a model without a
	// parameter count: SizeRenormalise (every preset) leaves it out and
	// renormalises the other weights; SizeZero, the empty value of
	// competitions stored before the presets, scores it 0.
	SizeMissing string `json:"size_missing,omitempty"`
}

// DefaultScoring returns the documented defaults:
//
//	weights:    quality 0.80, vibe 0.10, latency 0.05, size 0.05
//	thresholds: min_coherent 0.8, copy_ngram 6, repeat_ngram 3,
//	            cross_repeat_penalty 0.5, near_duplicate 0.8,
//	            vibe_tolerance 2, latency_full_ms 2000, latency_zero_ms 20000,
//	            max_params 70e9
//	multiplier: 1
func DefaultScoring() Scoring {
	return Scoring{
		Weights: Weights{Quality: 0.80, Vibe: 0.10, Latency: 0.05, Size: 0.05},
		Thresholds: Thresholds{
			MinCoherent: 0.8, CopyNGram: 6, RepeatNGram: 3, CrossRepeatPenalty: 0.5, NearDuplicate: 0.8,
			VibeTolerance: 2, LatencyFullMS: 2000, LatencyZeroMS: 20000, MaxParams: 70_000_000_000,
		},
		Multiplier: 1,
	}
}

// WithDefaults returns s with every zero field replaced by its default; an
// all-zero Weights takes the default weights as a whole. MinCoherent,
// CrossRepeatPenalty and individual weights may legitimately be 0 only when
// set alongside other non-zero fields of their struct.
func (s Scoring) WithDefaults() Scoring {
	d := DefaultScoring()
	if p, ok := presetOf(s.Preset); ok && s.Preset != "" {
		d = p.scoring
		if s.SizeMissing == SizeZero {
			s.SizeMissing = SizeRenormalise // only unnamed, stored scoring keeps SizeZero
		}
	}
	if s.Weights == (Weights{}) {
		s.Weights = d.Weights
	}
	if s.Thresholds == (Thresholds{}) {
		s.Thresholds = d.Thresholds
	}
	t, dt := &s.Thresholds, d.Thresholds
	if t.CopyNGram == 0 {
		t.CopyNGram = dt.CopyNGram
	}
	if t.RepeatNGram == 0 {
		t.RepeatNGram = dt.RepeatNGram
	}
	if t.NearDuplicate == 0 {
		t.NearDuplicate = dt.NearDuplicate
	}
	if t.VibeTolerance == 0 {
		t.VibeTolerance = dt.VibeTolerance
	}
	if t.LatencyFullMS == 0 {
		t.LatencyFullMS = dt.LatencyFullMS
	}
	if t.LatencyZeroMS == 0 {
		t.LatencyZeroMS = dt.LatencyZeroMS
	}
	if t.MaxParams == 0 {
		t.MaxParams = dt.MaxParams
	}
	if s.Multiplier == 0 {
		s.Multiplier = 1
	}
	return s
}

// Validate reports a scoring configuration that cannot be used.
func (s Scoring) Validate() error {
	if err := validPreset(s.Preset); err != nil {
		return err
	}
	if s.SizeMissing != SizeZero && s.SizeMissing != SizeRenormalise {
		return fmt.Errorf("roleplay: size_missing %q, want %q or empty", s.SizeMissing, SizeRenormalise)
	}
	w := s.Weights
	for _, f := range []struct {
		name string
		v    float64
	}{{"quality", w.Quality}, {"vibe", w.Vibe}, {"latency", w.Latency}, {"size", w.Size}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("roleplay: weight %s is %v, want a finite number ≥ 0", f.name, f.v)
		}
	}
	if w.Quality+w.Vibe+w.Latency+w.Size <= 0 {
		return fmt.Errorf("roleplay: weights sum to 0")
	}
	t := s.Thresholds
	switch {
	case t.MinCoherent < 0 || t.MinCoherent > 1:
		return fmt.Errorf("roleplay: min_coherent %v is outside [0,1]", t.MinCoherent)
	case t.CopyNGram < 1 || t.RepeatNGram < 1:
		return fmt.Errorf("roleplay: copy_ngram (%d) and repeat_ngram (%d) must be at least 1", t.CopyNGram, t.RepeatNGram)
	case t.CrossRepeatPenalty < 0 || t.CrossRepeatPenalty > 1:
		return fmt.Errorf("roleplay: cross_repeat_penalty %v is outside [0,1]", t.CrossRepeatPenalty)
	case t.NearDuplicate <= 0 || t.NearDuplicate > 1:
		return fmt.Errorf("roleplay: near_duplicate %v is outside (0,1]", t.NearDuplicate)
	case t.VibeTolerance < 1:
		return fmt.Errorf("roleplay: vibe_tolerance %v is below 1", t.VibeTolerance)
	case t.LatencyFullMS < 0 || t.LatencyZeroMS <= t.LatencyFullMS:
		return fmt.Errorf("roleplay: want 0 ≤ latency_full_ms (%d) < latency_zero_ms (%d)", t.LatencyFullMS, t.LatencyZeroMS)
	case t.MaxParams <= 0:
		return fmt.Errorf("roleplay: max_params %d must be positive", t.MaxParams)
	case s.Multiplier < 0 || math.IsNaN(s.Multiplier) || math.IsInf(s.Multiplier, 0):
		return fmt.Errorf("roleplay: multiplier %v must be a finite number ≥ 0", s.Multiplier)
	}
	return nil
}

// Components are one item's component scores, each in [0,1].
type Components struct {
	// Quality is the judge's rubric grade mapped to [0,1].
	Quality float64 `json:"quality"`
	// Creativity is 1 − repetition within the reply, times 1 − the share
	// of the reply copied verbatim from the reference or the card. Aggregate
	// further applies the cross-reply penalties.
	Creativity float64 `json:"creativity"`
	// Vibe is min(1, VibeTolerance × shorter/longer) of the reply's and the
	// user message's word counts (0 for an empty reply).
	Vibe float64 `json:"vibe"`
	// Latency is 1 up to LatencyFullMS, 0 from LatencyZeroMS, linear between.
	Latency float64 `json:"latency"`
	// Size is the preset's size score of a known parameter count
	// (Detail.Params); 0 without one, when the component is left out (see
	// Scoring.SizeMissing).
	Size float64 `json:"size"`
	// Coherence is 1 when the judge found the conversation coherent, else 0.
	Coherence float64 `json:"coherence"`
	// JudgeWin is the share of the three criteria (realism, entertainment,
	// coherency) on which the judge preferred the reply to the reference;
	// only presets that compare (Scoring.judges) ask for it.
	JudgeWin float64 `json:"judge_win,omitempty"`
}

// ItemScores returns each result's final score: its components (decoded
// from Result.Detail) with creativity reduced by the cross-reply penalties,
// all zero when fewer than MinCoherent of the items are coherent, times the
// multiplier, clamped to [0,1]. The scores depend only on the set of results
// (indexed by Result.Index), not on their order, so they are what win rates
// compare. s is completed with WithDefaults.
func ItemScores(results []eval.Result, s Scoring) ([]float64, error) {
	scores, _, err := aggregate(results, s)
	return scores, err
}

// Aggregate returns the total score of an evaluation (the mean of
// ItemScores, 0 for no results) and the mean of each component after the
// cross-reply penalties, keyed "quality", "creativity", "vibe", "latency",
// "size" and "coherence". The server and the local `crucible eval` both
// report these numbers. A result whose Detail is not a roleplay Detail is
// an error.
func Aggregate(results []eval.Result, s Scoring) (total float64, components map[string]float64, err error) {
	scores, comps, err := aggregate(results, s)
	if err != nil {
		return 0, nil, err
	}
	for _, x := range scores {
		total += x
	}
	if len(scores) > 0 {
		total /= float64(len(scores))
	}
	return total, comps, nil
}

func aggregate(results []eval.Result, s Scoring) ([]float64, map[string]float64, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	p, _ := presetOf(s.Preset)
	t := s.Thresholds
	n := len(results)
	// Sort by index so nothing depends on the order results arrive in.
	byIndex := make([]eval.Result, n)
	copy(byIndex, results)
	sortResults(byIndex)
	comps := make([]Components, n)
	sized := make([]bool, n)
	grams := make([]map[string]bool, n)
	coherent := 0
	for i, r := range byIndex {
		var d Detail
		if err := json.Unmarshal(r.Detail, &d); err != nil {
			return nil, nil, fmt.Errorf("roleplay: aggregate: result %d: detail: %w", r.Index, err)
		}
		comps[i], sized[i] = d.Components, d.Params > 0
		grams[i] = ngramSet(words(r.Response), t.RepeatNGram)
		if d.Components.Coherence > 0 {
			coherent++
		}
	}
	for i := range byIndex {
		shared, nearDup := 0, false
		for g := range grams[i] {
			for j := range byIndex {
				if j != i && byIndex[j].Prompt != byIndex[i].Prompt && grams[j][g] {
					shared++
					break
				}
			}
		}
		for j := range byIndex {
			if j != i && byIndex[j].Prompt != byIndex[i].Prompt && jaccard(grams[i], grams[j]) >= t.NearDuplicate {
				nearDup = true
				break
			}
		}
		switch {
		case nearDup:
			comps[i].Creativity = 0
		case len(grams[i]) > 0:
			comps[i].Creativity *= 1 - t.CrossRepeatPenalty*float64(shared)/float64(len(grams[i]))
		}
		comps[i].Creativity = clamp01(comps[i].Creativity)
	}
	judge := 0.0
	for _, c := range comps {
		judge += c.JudgeWin
	}
	if n > 0 {
		judge /= float64(n)
	}
	factor := s.evaluationFactor(p, coherent, n, judge)
	scores := make([]float64, n)
	means := map[string]float64{"quality": 0, "creativity": 0, "vibe": 0, "latency": 0, "size": 0, "coherence": 0}
	if p.judge {
		means["judge_win"] = 0
	}
	out := make([]float64, n)
	for i, c := range comps {
		scores[i] = clamp01(s.itemScore(p, c, sized[i]) * factor)
		if p.judge {
			means["judge_win"] += c.JudgeWin
		}
		means["quality"] += c.Quality
		means["creativity"] += c.Creativity
		means["vibe"] += c.Vibe
		means["latency"] += c.Latency
		means["size"] += c.Size
		means["coherence"] += c.Coherence
	}
	if n > 0 {
		for k := range means {
			means[k] /= float64(n)
		}
	}
	// Return scores in the caller's order.
	pos := make(map[int]int, n)
	for i, r := range byIndex {
		pos[r.Index] = i
	}
	for i, r := range results {
		out[i] = scores[pos[r.Index]]
	}
	return out, means, nil
}

func sortResults(rs []eval.Result) {
	slices.SortStableFunc(rs, func(a, b eval.Result) int { return cmp.Compare(a.Index, b.Index) })
}

// vibe scores how well the reply's length matches the user message's.
func vibe(replyWords, userWords int, tolerance float64) float64 {
	if replyWords == 0 || userWords == 0 {
		return 0
	}
	lo, hi := float64(min(replyWords, userWords)), float64(max(replyWords, userWords))
	return clamp01(tolerance * lo / hi)
}

// latencyScore maps a reply latency to [0,1].
func latencyScore(ms int64, t Thresholds) float64 {
	switch {
	case ms <= t.LatencyFullMS:
		return 1
	case ms >= t.LatencyZeroMS:
		return 0
	}
	return clamp01(float64(t.LatencyZeroMS-ms) / float64(t.LatencyZeroMS-t.LatencyFullMS))
}

// sizeScore maps a parameter count to [0,1]; an unknown one (0) scores 0,
// which counts only for scoring stored before the presets (SizeZero).
func sizeScore(params int64, t Thresholds) float64 {
	if params <= 0 {
		return 0
	}
	return clamp01(1 - float64(params)/float64(t.MaxParams))
}

// CreativityParts explains one reply's creativity before the cross-reply
// penalties.
type CreativityParts struct {
	// Repetition is 1 − distinct/total n-grams of the reply.
	Repetition float64 `json:"repetition"`
	// Copied is the share of the reply's n-grams found verbatim in the
	// reference reply or the character card.
	Copied float64 `json:"copied"`
}

func creativity(reply string, sources []string, t Thresholds) (float64, CreativityParts) {
	w := words(reply)
	var p CreativityParts
	if total := len(w) - t.RepeatNGram + 1; total > 0 {
		p.Repetition = 1 - float64(len(ngramSet(w, t.RepeatNGram)))/float64(total)
	}
	if mine := ngramSet(w, t.CopyNGram); len(mine) > 0 {
		src := map[string]bool{}
		for _, s := range sources {
			for g := range ngramSet(words(s), t.CopyNGram) {
				src[g] = true
			}
		}
		copied := 0
		for g := range mine {
			if src[g] {
				copied++
			}
		}
		p.Copied = float64(copied) / float64(len(mine))
	}
	return clamp01((1 - p.Repetition) * (1 - p.Copied)), p
}

// words lowercases s and splits it into words of letters, digits and
// apostrophes.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
}

// ngramSet returns the distinct n-grams of w joined by spaces.
func ngramSet(w []string, n int) map[string]bool {
	out := map[string]bool{}
	for i := 0; i+n <= len(w); i++ {
		out[strings.Join(w[i:i+n], " ")] = true
	}
	return out
}

func jaccard(a, b map[string]bool) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	inter := 0
	for g := range a {
		if b[g] {
			inter++
		}
	}
	return float64(inter) / float64(len(a)+len(b)-inter)
}

func clamp01(x float64) float64 {
	switch {
	case math.IsNaN(x) || x < 0:
		return 0
	case x > 1:
		return 1
	}
	return x
}
