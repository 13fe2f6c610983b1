package incentive

import (
	"math"
	"slices"
)

// validatorPermits returns subtensor's is_topk_nonzero: every validator with
// stake holds a permit when k is 0, otherwise only the k largest stakes
// (an ascending stable sort drops the first n−k, so of equal stakes the
// earlier rows lose).
func validatorPermits(stake []float64, k int) []bool {
	permits := make([]bool, len(stake))
	for i, s := range stake {
		permits[i] = s > 0
	}
	if k == 0 || len(stake) < k {
		return permits
	}
	idx := make([]int, len(stake))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case stake[a] < stake[b]:
			return -1
		case stake[a] > stake[b]:
			return 1
		}
		return 0
	})
	for _, i := range idx[:len(stake)-k] {
		permits[i] = false
	}
	return permits
}

// activeStake masks the stake of validators without a permit and of those
// inactive for longer than the activity cutoff, and normalises the rest.
func activeStake(stake []float64, permits []bool, in YumaInput) []float64 {
	active := slices.Clone(stake)
	for i := range active {
		inactive := in.ActivityCutoff > 0 && in.LastUpdate != nil && in.LastUpdate[i]+in.ActivityCutoff < in.Block
		if inactive || !permits[i] {
			active[i] = 0
		}
	}
	return normalizeVec(active)
}

// quantizeRow stores a weight row as the chain does: max-upscaled to u16,
// rounded (subtensor's vec_u16_max_upscale_to_u16).
func quantizeRow(row []float64) {
	m := slices.Max(row)
	if m == 0 {
		return
	}
	for j, v := range row {
		row[j] = math.Round(v / m * u16Max)
	}
}

// quantizeBonds stores bonds in [0, 1] as u16 fractions the way the chain
// does: the value truncated to subtensor's I32F32 (32 fractional bits),
// times u16::MAX, floored (fixed_proportion_to_u16), then read back over
// u16::MAX. Truncating to 32 bits first matters: a bond that is exactly
// n/65535 in real arithmetic is stored as n−1, as on chain.
func quantizeBonds(row []float64) {
	for j, v := range row {
		fixed := int64(math.Floor(v * (1 << 32)))
		row[j] = float64(fixed*u16Max>>32) / u16Max
	}
}

// normalizeRow scales a non-negative row to sum to 1 (a zero row stays
// zero). It divides by the row's maximum first so that huge finite weights
// cannot overflow the sum.
func normalizeRow(row []float64) {
	m := slices.Max(row)
	if m == 0 {
		return
	}
	for j := range row {
		row[j] /= m
	}
	normalizeVec(row)
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

// colMaxUpscale scales each column of m in place so that its largest entry
// is 1 (zero columns stay zero).
func colMaxUpscale(m [][]float64) {
	if len(m) == 0 {
		return
	}
	for j := range m[0] {
		var mx float64
		for i := range m {
			mx = max(mx, m[i][j])
		}
		if mx == 0 {
			continue
		}
		for i := range m {
			m[i][j] /= mx
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
