package incentive

import (
	"fmt"
	"math"
	"slices"
)

// Variant names a version of Yuma consensus as subtensor runs it.
type Variant string

// The variants: subtensor's original Yuma (Yuma3On false, its default) and
// Yuma 3 (Yuma3On true).
const (
	Yuma1 Variant = "yuma1"
	Yuma3 Variant = "yuma3"
)

// ParseVariant reads a variant name; "" means DefaultVariant.
func ParseVariant(s string) (Variant, error) {
	switch Variant(s) {
	case "":
		return DefaultVariant, nil
	case Yuma1, Yuma3:
		return Variant(s), nil
	}
	return "", fmt.Errorf("unknown Yuma variant %q: want %s or %s", s, Yuma1, Yuma3)
}

// Default Yuma parameters: subtensor's defaults (pallets/subtensor/src/lib.rs
// and epoch/run_epoch.rs), each stored there as a u16 or millionth fraction.
const (
	// DefaultVariant is subtensor's default (Yuma3On false).
	DefaultVariant = Yuma1
	// DefaultKappa is the stake majority the consensus weight needs (κ):
	// subtensor's kappa 32767 as a fraction of u16::MAX, 0.4999924 (not 0.5).
	DefaultKappa = 32767.0 / 65535
	// DefaultBondsAlpha is the weight of this epoch's bonds in the bonds EMA
	// (1 − bonds_moving_average, with bonds_moving_average = 900000/10^6).
	DefaultBondsAlpha = 0.1
	// DefaultBondsPenalty is β, how far the weights used for bonds move from
	// W towards the clipped W̄ (subtensor's bonds_penalty u16::MAX = 1).
	DefaultBondsPenalty = 1.0
	// DefaultAlphaLow and DefaultAlphaHigh bound liquid alpha (subtensor's
	// alpha_low 45875 and alpha_high 58982 as fractions of u16::MAX).
	DefaultAlphaLow  = 45875.0 / 65535
	DefaultAlphaHigh = 58982.0 / 65535
	// DefaultAlphaSteepness is the liquid-alpha sigmoid's steepness in
	// subtensor's units (the sigmoid uses steepness/100).
	DefaultAlphaSteepness = 1000.0
	// DefaultMinerShare is the fraction of the epoch's emission that goes to
	// miners; the rest goes to validators as dividends (subtensor splits
	// incentive and dividends in equal halves).
	DefaultMinerShare = 0.5
	// MaxAlphaSteepness bounds AlphaSteepness (subtensor stores an i16).
	MaxAlphaSteepness = math.MaxInt16
)

// consensusTolerance absorbs float rounding when a stake sum is compared
// with κ; subtensor's I32F32 fixed point resolves about 2.3e-10.
const consensusTolerance = 1e-9

// YumaInput is one epoch's input to Yuma consensus. Zero Kappa, BondsAlpha,
// MinerShare, AlphaLow, AlphaHigh and AlphaSteepness, an empty Variant and
// a nil BondsPenalty mean the defaults above.
type YumaInput struct {
	// Weights holds each validator's weights on the miners (validators ×
	// miners, non-negative and finite; rows need not be normalised).
	Weights [][]float64
	// Stakes holds each validator's stake (non-negative, not all zero).
	Stakes []float64
	// Variant selects Yuma 1 or Yuma 3.
	Variant Variant
	// Kappa is the consensus majority κ in (0, 1].
	Kappa float64
	// BondsAlpha is the EMA weight α of the new bonds, in (0, 1].
	BondsAlpha float64
	// BondsPenalty is β in [0, 1]: bonds grow on W + β·(W̄ − W).
	BondsPenalty *float64
	// LiquidAlpha (Yuma 3 only, as in subtensor) replaces the fixed α by
	// one per (validator, miner) between AlphaLow and AlphaHigh, from a
	// sigmoid of how far the weight sits from consensus.
	LiquidAlpha         bool
	AlphaLow, AlphaHigh float64
	// AlphaSteepness is the sigmoid's steepness, in (0, MaxAlphaSteepness].
	AlphaSteepness float64
	// PrevBonds holds last epoch's bonds (validators × miners) as Bonds
	// returns them, or nil.
	PrevBonds [][]float64
	// Quantize stores weights and bonds as the chain does: each weight row
	// max-upscaled to u16 (rounded), bonds floored to u16 fractions.
	Quantize bool
	// Masks. LastUpdate (one per validator, or nil) with Block and a
	// positive ActivityCutoff marks a validator inactive when
	// LastUpdate+ActivityCutoff < Block: its stake leaves the vote.
	LastUpdate     []int64
	Block          int64
	ActivityCutoff int64
	// MaxValidators > 0 gives validator permits to the top-k stakes only
	// (ties to the later row); a validator without a permit neither votes
	// nor holds bonds.
	MaxValidators int
	// SelfMiner holds, per validator, the miner column that is the
	// validator itself (−1 for none); its weight there is masked.
	SelfMiner []int
	// MinerShare is the miners' fraction of Emission, in (0, 1].
	MinerShare float64
	// Emission is the amount emitted this epoch (any unit).
	Emission float64
}

// YumaOutput is the result of one Yuma epoch. Miner-indexed vectors have one
// entry per column of the weights, validator-indexed ones one per row.
type YumaOutput struct {
	// Consensus is the stake-weighted median weight C_j per miner.
	Consensus []float64
	// Incentive is R_j / ΣR per miner (sums to 1 unless all zero).
	Incentive []float64
	// Ranks is R_j = Σ_i S_i·W̄_ij per miner, before normalisation
	// (subtensor stores the normalised vector, which equals Incentive).
	Ranks []float64
	// Trust is R_j / P_j per miner: the fraction of a miner's stake-weighted
	// weight that survived clipping (subtensor's "trust").
	Trust []float64
	// ValidatorTrust is Σ_j W̄_ij per validator.
	ValidatorTrust []float64
	// ActiveStake is the normalised stake that voted (inactive and
	// unpermitted validators masked).
	ActiveStake []float64
	// Permits says which validators hold a validator permit.
	Permits []bool
	// Dividends is each validator's normalised dividend.
	Dividends []float64
	// Bonds is the new bonds matrix (validators × miners) in the form the
	// next epoch's PrevBonds takes: Yuma 1 column-normalised (quantised:
	// column max-upscaled u16 fractions, as the chain stores them), Yuma 3
	// the EMA proportions in [0, 1].
	Bonds [][]float64
	// MinerEmission is each miner's part of the emission.
	MinerEmission []float64
	// ValidatorEmission is each validator's part of the emission.
	ValidatorEmission []float64
}

// yumaParams are the checked parameters of one epoch.
type yumaParams struct {
	variant                             Variant
	kappa, alpha, penalty, minerShare   float64
	liquid                              bool
	alphaLow, alphaHigh, alphaSteepness float64
}

// Yuma runs one epoch of Yuma consensus as described in the package
// documentation. It returns an error for an empty or ragged weight matrix,
// mismatched stakes, previous bonds or masks, negative or non-finite inputs,
// zero total stake, or parameters out of range.
func Yuma(in YumaInput) (YumaOutput, error) {
	nv, nm, p, err := checkYuma(in)
	if err != nil {
		return YumaOutput{}, err
	}
	stake := slices.Clone(in.Stakes)
	normalizeVec(stake)
	permits := validatorPermits(stake, in.MaxValidators)
	active := activeStake(stake, permits, in)

	w := make([][]float64, nv)
	for i, row := range in.Weights {
		w[i] = slices.Clone(row)
		if in.Quantize {
			quantizeRow(w[i])
		}
		if !permits[i] {
			clear(w[i])
		}
		if in.SelfMiner != nil && in.SelfMiner[i] >= 0 {
			w[i][in.SelfMiner[i]] = 0
		}
		normalizeRow(w[i])
	}

	out := YumaOutput{
		Consensus:         make([]float64, nm),
		Incentive:         make([]float64, nm),
		Ranks:             make([]float64, nm),
		Trust:             make([]float64, nm),
		ValidatorTrust:    make([]float64, nv),
		ActiveStake:       active,
		Permits:           permits,
		MinerEmission:     make([]float64, nm),
		ValidatorEmission: make([]float64, nv),
	}
	col := make([]float64, nv)
	for j := range nm {
		for i := range nv {
			col[i] = w[i][j]
		}
		out.Consensus[j] = weightedMedian(active, col, p.kappa)
	}

	clipped := newMatrix(nv, nm)
	preranks := make([]float64, nm)
	for i := range nv {
		for j := range nm {
			c := min(w[i][j], out.Consensus[j])
			clipped[i][j] = c
			out.ValidatorTrust[i] += c
			out.Ranks[j] += active[i] * c
			preranks[j] += active[i] * w[i][j]
		}
	}
	for j := range nm {
		if preranks[j] > 0 {
			out.Trust[j] = out.Ranks[j] / preranks[j]
		}
	}
	copy(out.Incentive, out.Ranks)
	normalizeVec(out.Incentive)

	// W_b = W + β·(W̄ − W): β = 1 grows bonds on the clipped weights only.
	wb := newMatrix(nv, nm)
	for i := range nv {
		for j := range nm {
			wb[i][j] = w[i][j] + p.penalty*(clipped[i][j]-w[i][j])
		}
	}
	if p.variant == Yuma3 {
		out.Bonds, out.Dividends = bondsYuma3(wb, in.PrevBonds, out.Consensus, out.Incentive, active, p, in.Quantize)
	} else {
		out.Bonds, out.Dividends = bondsYuma1(wb, in.PrevBonds, out.Incentive, active, p.alpha, in.Quantize)
	}
	for i := range nv {
		if !permits[i] {
			clear(out.Bonds[i]) // subtensor clears the bonds of a validator without a permit
		}
	}

	if sum(out.Incentive) == 0 {
		// As subtensor: no incentive pays validators by active stake, or
		// by stake when no stake is active.
		by := active
		if sum(active) == 0 {
			by = stake
		}
		for i := range nv {
			out.ValidatorEmission[i] = in.Emission * by[i]
		}
		return out, nil
	}
	for j := range nm {
		out.MinerEmission[j] = p.minerShare * in.Emission * out.Incentive[j]
	}
	for i := range nv {
		out.ValidatorEmission[i] = (1 - p.minerShare) * in.Emission * out.Dividends[i]
	}
	return out, nil
}

// checkYuma validates in and fills in the defaults.
func checkYuma(in YumaInput) (nv, nm int, p yumaParams, err error) {
	nv = len(in.Weights)
	if nv == 0 {
		return 0, 0, p, fmt.Errorf("yuma: no validators")
	}
	nm = len(in.Weights[0])
	if nm == 0 {
		return 0, 0, p, fmt.Errorf("yuma: no miners")
	}
	if len(in.Stakes) != nv {
		return 0, 0, p, fmt.Errorf("yuma: %d stakes for %d validators", len(in.Stakes), nv)
	}
	if err := checkMatrix("weights", in.Weights, nm, math.Inf(1)); err != nil {
		return 0, 0, p, err
	}
	if in.PrevBonds != nil {
		if len(in.PrevBonds) != nv {
			return 0, 0, p, fmt.Errorf("yuma: previous bonds have %d rows, want %d", len(in.PrevBonds), nv)
		}
		if err := checkMatrix("previous bonds", in.PrevBonds, nm, 1); err != nil {
			return 0, 0, p, err
		}
	}
	if in.LastUpdate != nil && len(in.LastUpdate) != nv {
		return 0, 0, p, fmt.Errorf("yuma: %d last updates for %d validators", len(in.LastUpdate), nv)
	}
	if in.ActivityCutoff < 0 || in.MaxValidators < 0 {
		return 0, 0, p, fmt.Errorf("yuma: activity cutoff %d and max validators %d must be ≥ 0", in.ActivityCutoff, in.MaxValidators)
	}
	if in.SelfMiner != nil {
		if len(in.SelfMiner) != nv {
			return 0, 0, p, fmt.Errorf("yuma: %d self-miner entries for %d validators", len(in.SelfMiner), nv)
		}
		for i, j := range in.SelfMiner {
			if j < -1 || j >= nm {
				return 0, 0, p, fmt.Errorf("yuma: validator %d's self-miner column %d is out of range", i, j)
			}
		}
	}
	var stakeSum float64
	for i, s := range in.Stakes {
		if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 {
			return 0, 0, p, fmt.Errorf("yuma: validator %d has invalid stake %v", i, s)
		}
		stakeSum += s
	}
	if stakeSum == 0 {
		return 0, 0, p, fmt.Errorf("yuma: total stake is zero")
	}
	if math.IsInf(stakeSum, 0) {
		return 0, 0, p, fmt.Errorf("yuma: total stake overflows; scale the stakes down")
	}
	if math.IsNaN(in.Emission) || math.IsInf(in.Emission, 0) || in.Emission < 0 {
		return 0, 0, p, fmt.Errorf("yuma: emission %v must be finite and ≥ 0", in.Emission)
	}
	if p.variant, err = ParseVariant(string(in.Variant)); err != nil {
		return 0, 0, p, fmt.Errorf("yuma: %w", err)
	}
	if in.LiquidAlpha && p.variant != Yuma3 {
		return 0, 0, p, fmt.Errorf("yuma: liquid alpha applies to %s only (subtensor's Yuma 1 bonds use the fixed α)", Yuma3)
	}
	p.liquid = in.LiquidAlpha
	for _, f := range []struct {
		name    string
		v, def  float64
		dst     *float64
		maximum float64
	}{
		{"kappa", in.Kappa, DefaultKappa, &p.kappa, 1},
		{"bonds alpha", in.BondsAlpha, DefaultBondsAlpha, &p.alpha, 1},
		{"miner share", in.MinerShare, DefaultMinerShare, &p.minerShare, 1},
		{"alpha low", in.AlphaLow, DefaultAlphaLow, &p.alphaLow, 1},
		{"alpha high", in.AlphaHigh, DefaultAlphaHigh, &p.alphaHigh, 1},
		{"alpha steepness", in.AlphaSteepness, DefaultAlphaSteepness, &p.alphaSteepness, MaxAlphaSteepness},
	} {
		if *f.dst, err = param(f.name, f.v, f.def, f.maximum); err != nil {
			return 0, 0, p, err
		}
	}
	p.penalty = DefaultBondsPenalty
	if in.BondsPenalty != nil {
		p.penalty = *in.BondsPenalty
		if math.IsNaN(p.penalty) || p.penalty < 0 || p.penalty > 1 {
			return 0, 0, p, fmt.Errorf("yuma: bonds penalty %v must be in [0, 1]", p.penalty)
		}
	}
	if p.alphaLow > p.alphaHigh {
		return 0, 0, p, fmt.Errorf("yuma: alpha low %v is above alpha high %v", p.alphaLow, p.alphaHigh)
	}
	return nv, nm, p, nil
}

// weightedMedian returns the largest w among scores such that the stake of
// validators with score ≥ w reaches kappa (within consensusTolerance), the
// stake-weighted median of subtensor's weighted_median_col. Validators
// without stake are ignored; stake is assumed normalised.
func weightedMedian(stake, scores []float64, kappa float64) float64 {
	type sv struct{ score, stake float64 }
	pts := make([]sv, 0, len(scores))
	for i, s := range scores {
		if stake[i] > 0 {
			pts = append(pts, sv{s, stake[i]})
		}
	}
	slices.SortFunc(pts, func(a, b sv) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	var acc float64
	for k := 0; k < len(pts); {
		l := k
		for l < len(pts) && pts[l].score == pts[k].score {
			acc += pts[l].stake
			l++
		}
		if acc >= kappa-consensusTolerance {
			return pts[k].score
		}
		k = l
	}
	return 0
}

// param validates a parameter in (0, maximum], substituting def for zero.
func param(name string, v, def, maximum float64) (float64, error) {
	if v == 0 {
		return def, nil
	}
	if math.IsNaN(v) || v < 0 || v > maximum {
		return 0, fmt.Errorf("yuma: %s %v must be in (0, %v]", name, v, maximum)
	}
	return v, nil
}

// checkMatrix verifies that every row has cols finite values in [0, maximum].
func checkMatrix(name string, m [][]float64, cols int, maximum float64) error {
	for i, row := range m {
		if len(row) != cols {
			return fmt.Errorf("yuma: %s row %d has %d entries, want %d", name, i, len(row), cols)
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return fmt.Errorf("yuma: %s[%d][%d] = %v must be finite and ≥ 0", name, i, j, v)
			}
			if v > maximum {
				return fmt.Errorf("yuma: %s[%d][%d] = %v is above %v", name, i, j, v, maximum)
			}
		}
	}
	return nil
}
