package incentive

import (
	"fmt"
	"math"
	"strings"
)

// Win-rate presets: how the peers we learn from turn scores into weights,
// each reproduced from its own code, beside today's Crucible rule.
//
//   - crucible: every item is compared; the earlier side of a pair scores
//     ×(1+ε), ε = 0.01; softmax T = 0.01.
//   - dippy (impel-intelligence/dippy-bittensor-subnet, utilities/compete.py
//     iswin and neurons/validator.py compute_wins): one comparison per pair
//     on total scores; the later model's score ×0.97 (ε = 0.03); failed or
//     zero-scored models take part in the comparisons but weigh exactly 0
//     (their win rate is −inf before the softmax); softmax T = 0.075.
//   - pretraining (macrocosm-os/pretraining pretrain/validation.py
//     compute_wins and compute_competitive_uids, taoverse LinearDecay): one
//     comparison per pair; the earlier model's ε decays linearly with its
//     age, 0.005 → 0.0001 over 50400 blocks; models that cannot beat every
//     earlier one even at the fully decayed ε are filtered out before the
//     comparisons and weigh 0; softmax T = 0.01; weights are an EMA with
//     α = 0.5 across epochs.
//
// Scores are higher-is-better: a later model's score is discounted,
// score·(1−ε), where pretraining discounts the earlier model's loss; with
// LowerIsBetter the values are losses and the earlier loss is discounted
// exactly as pretraining does.

// Preset names.
const (
	PresetCrucible    = "crucible"
	PresetDippy       = "dippy"
	PresetPretraining = "pretraining"
)

// Advantage says how the earlier model of a pair is favoured.
type Advantage string

// Advantages.
const (
	// BoostEarlier multiplies the earlier model's score by (1+ε).
	BoostEarlier Advantage = "boost-earlier"
	// DiscountLater multiplies the later model's score by (1−ε) (for
	// LowerIsBetter: the earlier model's loss by (1−ε)).
	DiscountLater Advantage = "discount-later"
)

// Decay is an ε that falls linearly with the earlier model's age, from
// Start at age 0 to End after Blocks blocks (taoverse LinearDecay).
type Decay struct {
	Start  float64 `json:"start"`
	End    float64 `json:"end"`
	Blocks int     `json:"blocks"`
}

// WinRateConfig says how win rates and weights are computed from scores.
type WinRateConfig struct {
	// Preset names the preset the configuration came from.
	Preset string `json:"preset"`
	// PerItem compares every item (Model.Items); otherwise one comparison
	// per pair on total scores (Model.Score).
	PerItem   bool      `json:"per_item"`
	Advantage Advantage `json:"advantage"`
	// Epsilon is the earlier model's fixed advantage, used when Decay is nil.
	Epsilon float64 `json:"epsilon"`
	Decay   *Decay  `json:"decay,omitempty"`
	// ZeroFailed keeps failed and zero-scored models in the comparisons
	// (as score 0) but gives them weight exactly 0; otherwise failed models
	// are left out and weigh 0.
	ZeroFailed bool `json:"zero_failed"`
	// Competitive filters out models that cannot beat every model
	// committed at the same or an earlier time at the fully decayed ε.
	Competitive bool    `json:"competitive"`
	Temperature float64 `json:"temperature"`
	// EMA is the weight of this epoch's weights against the previous
	// epoch's (0: none).
	EMA           float64 `json:"ema,omitempty"`
	LowerIsBetter bool    `json:"lower_is_better,omitempty"`
}

// PresetNames lists the presets.
func PresetNames() []string { return []string{PresetCrucible, PresetDippy, PresetPretraining} }

// Preset returns a named preset; "" is crucible.
func Preset(name string) (WinRateConfig, error) {
	switch name {
	case "", PresetCrucible:
		return WinRateConfig{Preset: PresetCrucible, PerItem: true, Advantage: BoostEarlier, Epsilon: 0.01, Temperature: DefaultTemperature}, nil
	case PresetDippy:
		return WinRateConfig{Preset: PresetDippy, Advantage: DiscountLater, Epsilon: 0.03, ZeroFailed: true, Temperature: 0.075}, nil
	case PresetPretraining:
		return WinRateConfig{Preset: PresetPretraining, Advantage: DiscountLater, Decay: &Decay{Start: 0.005, End: 0.0001, Blocks: 50400},
			Competitive: true, Temperature: DefaultTemperature, EMA: 0.5}, nil
	}
	return WinRateConfig{}, fmt.Errorf("unknown win-rate preset %q (want %s)", name, strings.Join(PresetNames(), ", "))
}

// Validate reports parameters that cannot be used.
func (c WinRateConfig) Validate() error {
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
	switch {
	case c.Advantage != BoostEarlier && c.Advantage != DiscountLater:
		return fmt.Errorf("win rates: advantage %q is neither %s nor %s", c.Advantage, BoostEarlier, DiscountLater)
	case bad(c.Epsilon) || c.Epsilon < 0 || c.Epsilon >= 1:
		return fmt.Errorf("win rates: epsilon %v is outside [0, 1)", c.Epsilon)
	case bad(c.Temperature) || c.Temperature <= 0:
		return fmt.Errorf("win rates: temperature %v must be a finite number > 0", c.Temperature)
	case bad(c.EMA) || c.EMA < 0 || c.EMA > 1:
		return fmt.Errorf("win rates: ema %v is outside [0, 1]", c.EMA)
	}
	if d := c.Decay; d != nil {
		if bad(d.Start) || bad(d.End) || d.Start < 0 || d.End < 0 || d.Start >= 1 || d.End >= 1 || d.Blocks < 0 {
			return fmt.Errorf("win rates: decay %+v needs start and end in [0, 1) and blocks ≥ 0", *d)
		}
	}
	return nil
}

// Model is one model in a win-rate computation.
type Model struct {
	ID string
	// Committed places the model in time, in the Timeline's ticks (a block
	// number, or unix nanoseconds); smaller is earlier.
	Committed int64
	// Score is the total score (a loss with LowerIsBetter).
	Score float64
	// Items are per-item scores, compared when PerItem.
	Items []float64
	// Failed: the evaluation failed (Score and Items are ignored).
	Failed bool
}

// Timeline places commits for a decaying ε: Now and every Committed are in
// ticks, BlockTicks ticks make one block (1 for block numbers, 12e9 for
// unix nanoseconds with 12-second blocks).
type Timeline struct {
	Now, BlockTicks int64
}

// WinRateResult is each model's win rate and weight.
type WinRateResult struct {
	WinRates map[string]float64 `json:"win_rate"`
	Weights  map[string]float64 `json:"weights"`
}

// Compute returns the win rates and weights of models (IDs unique). Models
// that take no part in the weights (failed, zero-scored under ZeroFailed,
// filtered as not competitive) weigh exactly 0. A lone compared model's win
// rate is 1. The EMA across epochs is Smooth's, not Compute's.
func (c WinRateConfig) Compute(models []Model, at Timeline) WinRateResult {
	out := WinRateResult{WinRates: map[string]float64{}, Weights: map[string]float64{}}
	var compared []Model
	weighed := map[string]bool{}
	for _, m := range models {
		out.WinRates[m.ID], out.Weights[m.ID] = 0, 0
		zero := m.Failed || !(m.Score != 0) // NaN counts as zero
		switch {
		case c.ZeroFailed && zero:
			m.Score, m.Items = 0, nil
			compared = append(compared, m)
		case m.Failed || math.IsNaN(m.Score):
		default:
			compared = append(compared, m)
			weighed[m.ID] = true
		}
	}
	if c.Competitive {
		compared = c.competitive(compared)
	}
	for id, r := range c.rates(compared, at) {
		out.WinRates[id] = r
	}
	eligible := map[string]float64{}
	for _, m := range compared {
		if weighed[m.ID] {
			eligible[m.ID] = out.WinRates[m.ID]
		}
	}
	for id, w := range Softmax(eligible, c.Temperature) {
		out.Weights[id] = w
	}
	return out
}

// Smooth returns the EMA of this epoch's weights with the previous
// epoch's (c.EMA the weight of the new ones), normalised to sum to 1;
// without EMA or previous weights it returns weights.
func (c WinRateConfig) Smooth(previous, weights map[string]float64) map[string]float64 {
	if c.EMA == 0 || len(previous) == 0 {
		return weights
	}
	out := Normalize(EMA(previous, weights, c.EMA))
	for id := range previous {
		if _, ok := weights[id]; !ok {
			delete(out, id) // a model that left has no weight to smooth
		}
	}
	return Normalize(out)
}

// epsilon is the advantage of a model committed at tick committed.
func (c WinRateConfig) epsilon(committed int64, at Timeline) float64 {
	if c.Decay == nil {
		return c.Epsilon
	}
	age := 0
	if at.BlockTicks > 0 && at.Now > committed {
		age = int(min((at.Now-committed)/at.BlockTicks, math.MaxInt32))
	}
	return DecayingEpsilon(c.Decay.Start, c.Decay.End, age, c.Decay.Blocks)
}

// beats reports whether value a beats value b when the earlier of the two
// (earlierA tells which; neither when sameTime) has advantage eps.
func (c WinRateConfig) beats(a, b float64, earlierA, sameTime bool, eps float64) bool {
	if !sameTime {
		switch {
		case c.LowerIsBetter && earlierA:
			a *= 1 - eps
		case c.LowerIsBetter:
			b *= 1 - eps
		case c.Advantage == BoostEarlier && earlierA:
			a *= 1 + eps
		case c.Advantage == BoostEarlier:
			b *= 1 + eps
		case earlierA:
			b *= 1 - eps
		default:
			a *= 1 - eps
		}
	}
	if c.LowerIsBetter {
		return a < b
	}
	return a > b
}

// rates returns the win rate of each compared model: wins over
// (comparisons per pair)·(N−1).
func (c WinRateConfig) rates(ms []Model, at Timeline) map[string]float64 {
	out := make(map[string]float64, len(ms))
	if len(ms) == 1 {
		out[ms[0].ID] = 1
		return out
	}
	per := 1
	if c.PerItem {
		per = 0
		for _, m := range ms {
			per = max(per, len(m.Items))
		}
	}
	wins := make([]int, len(ms))
	for i := range ms {
		for j := i + 1; j < len(ms); j++ {
			a, b := ms[i], ms[j]
			same, aFirst := a.Committed == b.Committed, a.Committed < b.Committed
			eps := c.epsilon(b.Committed, at)
			if aFirst {
				eps = c.epsilon(a.Committed, at)
			}
			for k := range per {
				va, vb := c.at(a, k), c.at(b, k)
				switch {
				case c.beats(va, vb, aFirst, same, eps):
					wins[i]++
				case c.beats(vb, va, !aFirst && !same, same, eps):
					wins[j]++
				}
			}
		}
	}
	den := float64(per * (len(ms) - 1))
	for i, m := range ms {
		if den > 0 {
			out[m.ID] = float64(wins[i]) / den
		} else {
			out[m.ID] = 0
		}
	}
	return out
}

// at returns model m's k-th compared value (a missing or NaN item is 0).
func (c WinRateConfig) at(m Model, k int) float64 {
	if c.PerItem {
		return scoreAt(m.Items, k)
	}
	return m.Score
}

// competitive keeps the models that beat every model committed at the same
// or an earlier tick after that model's fully decayed advantage
// (pretraining's compute_competitive_uids).
func (c WinRateConfig) competitive(ms []Model) []Model {
	floor := c.Epsilon
	if c.Decay != nil {
		floor = c.Decay.End
	}
	var out []Model
	for i, m := range ms {
		ok := true
		for j, o := range ms {
			if i != j && o.Committed <= m.Committed && !c.beats(m.Score, o.Score, false, false, floor) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}
