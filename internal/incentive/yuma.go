package incentive

import (
	"fmt"
	"math"
	"slices"
)

// Default Yuma parameters, subtensor's defaults.
const (
	// DefaultKappa is the stake majority the consensus weight needs (κ).
	DefaultKappa = 0.5
	// DefaultBondsAlpha is the weight of this epoch's bonds in the bonds EMA
	// (1 − bonds_moving_average, with bonds_moving_average = 0.9).
	DefaultBondsAlpha = 0.1
	// DefaultMinerShare is the fraction of the epoch's emission that goes to
	// miners; the rest goes to validators as dividends.
	DefaultMinerShare = 0.5
)

// consensusTolerance absorbs float rounding when a stake sum is compared
// with κ; subtensor's I32F32 fixed point resolves about 2.3e-10.
const consensusTolerance = 1e-9

// YumaInput is one epoch's input to Yuma consensus. Zero Kappa, BondsAlpha
// and MinerShare mean the defaults (0.5, 0.1, 0.5).
type YumaInput struct {
	// Weights holds each validator's weights on the miners (validators ×
	// miners, non-negative; rows need not be normalised).
	Weights [][]float64
	// Stakes holds each validator's stake (non-negative, not all zero).
	Stakes []float64
	// Kappa is the consensus majority κ in (0, 1].
	Kappa float64
	// BondsAlpha is the EMA weight α of the new bonds, in (0, 1].
	BondsAlpha float64
	// PrevBonds holds last epoch's bonds (validators × miners), or nil.
	PrevBonds [][]float64
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
	// Dividends is the normalised Σ_j B_ij·I_j per validator.
	Dividends []float64
	// Bonds is the new bonds matrix (validators × miners), column-normalised.
	Bonds [][]float64
	// MinerEmission is each miner's part of the emission.
	MinerEmission []float64
	// ValidatorEmission is each validator's part of the emission.
	ValidatorEmission []float64
}

// Yuma runs one epoch of Yuma consensus as described in the package
// documentation. It returns an error for an empty or ragged weight matrix,
// mismatched stakes or previous bonds, negative or non-finite inputs, zero
// total stake, or parameters out of range.
func Yuma(in YumaInput) (YumaOutput, error) {
	nv := len(in.Weights)
	if nv == 0 {
		return YumaOutput{}, fmt.Errorf("yuma: no validators")
	}
	nm := len(in.Weights[0])
	if nm == 0 {
		return YumaOutput{}, fmt.Errorf("yuma: no miners")
	}
	if len(in.Stakes) != nv {
		return YumaOutput{}, fmt.Errorf("yuma: %d stakes for %d validators", len(in.Stakes), nv)
	}
	if err := checkMatrix("weights", in.Weights, nm); err != nil {
		return YumaOutput{}, err
	}
	if in.PrevBonds != nil {
		if len(in.PrevBonds) != nv {
			return YumaOutput{}, fmt.Errorf("yuma: previous bonds have %d rows, want %d", len(in.PrevBonds), nv)
		}
		if err := checkMatrix("previous bonds", in.PrevBonds, nm); err != nil {
			return YumaOutput{}, err
		}
	}
	kappa, err := param("kappa", in.Kappa, DefaultKappa)
	if err != nil {
		return YumaOutput{}, err
	}
	alpha, err := param("bonds alpha", in.BondsAlpha, DefaultBondsAlpha)
	if err != nil {
		return YumaOutput{}, err
	}
	minerShare, err := param("miner share", in.MinerShare, DefaultMinerShare)
	if err != nil {
		return YumaOutput{}, err
	}
	if math.IsNaN(in.Emission) || math.IsInf(in.Emission, 0) || in.Emission < 0 {
		return YumaOutput{}, fmt.Errorf("yuma: emission %v must be finite and ≥ 0", in.Emission)
	}
	stake := slices.Clone(in.Stakes)
	var stakeSum float64
	for i, s := range stake {
		if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 {
			return YumaOutput{}, fmt.Errorf("yuma: validator %d has invalid stake %v", i, s)
		}
		stakeSum += s
	}
	if stakeSum == 0 {
		return YumaOutput{}, fmt.Errorf("yuma: total stake is zero")
	}
	for i := range stake {
		stake[i] /= stakeSum
	}

	w := make([][]float64, nv)
	for i, row := range in.Weights {
		w[i] = normalizeVec(slices.Clone(row))
	}

	out := YumaOutput{
		Consensus:         make([]float64, nm),
		Incentive:         make([]float64, nm),
		Ranks:             make([]float64, nm),
		Trust:             make([]float64, nm),
		ValidatorTrust:    make([]float64, nv),
		Dividends:         make([]float64, nv),
		Bonds:             newMatrix(nv, nm),
		MinerEmission:     make([]float64, nm),
		ValidatorEmission: make([]float64, nv),
	}
	col := make([]float64, nv)
	for j := range nm {
		for i := range nv {
			col[i] = w[i][j]
		}
		out.Consensus[j] = weightedMedian(stake, col, kappa)
	}

	clipped := newMatrix(nv, nm)
	preranks := make([]float64, nm)
	for i := range nv {
		for j := range nm {
			c := min(w[i][j], out.Consensus[j])
			clipped[i][j] = c
			out.ValidatorTrust[i] += c
			out.Ranks[j] += stake[i] * c
			preranks[j] += stake[i] * w[i][j]
		}
	}
	for j := range nm {
		if preranks[j] > 0 {
			out.Trust[j] = out.Ranks[j] / preranks[j]
		}
	}
	copy(out.Incentive, out.Ranks)
	normalizeVec(out.Incentive)

	delta := newMatrix(nv, nm)
	for i := range nv {
		for j := range nm {
			delta[i][j] = stake[i] * clipped[i][j]
		}
	}
	colNormalize(delta)
	var prev [][]float64
	if in.PrevBonds != nil {
		prev = newMatrix(nv, nm)
		for i := range nv {
			copy(prev[i], in.PrevBonds[i])
		}
		colNormalize(prev)
	}
	for i := range nv {
		for j := range nm {
			b := alpha * delta[i][j]
			if prev != nil {
				b += (1 - alpha) * prev[i][j]
			}
			out.Bonds[i][j] = b
		}
	}
	colNormalize(out.Bonds)
	for i := range nv {
		for j := range nm {
			out.Dividends[i] += out.Bonds[i][j] * out.Incentive[j]
		}
	}
	normalizeVec(out.Dividends)

	if sum(out.Incentive) == 0 {
		for i := range nv {
			out.ValidatorEmission[i] = in.Emission * stake[i]
		}
		return out, nil
	}
	for j := range nm {
		out.MinerEmission[j] = minerShare * in.Emission * out.Incentive[j]
	}
	for i := range nv {
		out.ValidatorEmission[i] = (1 - minerShare) * in.Emission * out.Dividends[i]
	}
	return out, nil
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

// param validates a parameter in (0, 1], substituting def for zero.
func param(name string, v, def float64) (float64, error) {
	if v == 0 {
		return def, nil
	}
	if math.IsNaN(v) || v < 0 || v > 1 {
		return 0, fmt.Errorf("yuma: %s %v must be in (0, 1]", name, v)
	}
	return v, nil
}

// checkMatrix verifies that every row has cols finite, non-negative values.
func checkMatrix(name string, m [][]float64, cols int) error {
	for i, row := range m {
		if len(row) != cols {
			return fmt.Errorf("yuma: %s row %d has %d entries, want %d", name, i, len(row), cols)
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return fmt.Errorf("yuma: %s[%d][%d] = %v must be finite and ≥ 0", name, i, j, v)
			}
		}
	}
	return nil
}

// newMatrix returns a zero rows × cols matrix.
func newMatrix(rows, cols int) [][]float64 {
	m := make([][]float64, rows)
	for i := range m {
		m[i] = make([]float64, cols)
	}
	return m
}

// normalizeVec scales v in place to sum to 1 (left as is when the sum is 0)
// and returns it.
func normalizeVec(v []float64) []float64 {
	s := sum(v)
	if s == 0 {
		return v
	}
	for i := range v {
		v[i] /= s
	}
	return v
}

// colNormalize scales each column of m in place to sum to 1 (zero columns
// stay zero).
func colNormalize(m [][]float64) {
	if len(m) == 0 {
		return
	}
	for j := range m[0] {
		var s float64
		for i := range m {
			s += m[i][j]
		}
		if s == 0 {
			continue
		}
		for i := range m {
			m[i][j] /= s
		}
	}
}

// sum returns the sum of v.
func sum(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s
}
