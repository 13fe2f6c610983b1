package incentive

import "math"

// DefaultTemperature is the softmax temperature the model-competition
// subnets use to turn win rates into weights (T = 0.01): a 0.01 lead in win
// rate multiplies the weight by e.
const DefaultTemperature = 0.01

// Softmax returns exp(v/temperature) normalised to sum to 1, computed as
// exp((v − max)/temperature) so it never overflows. NaN values get weight 0.
// A temperature ≤ 0 (or NaN) behaves as the limit T → 0⁺: the maxima split
// the weight equally. An empty input gives an empty map.
func Softmax(values map[string]float64, temperature float64) map[string]float64 {
	out := make(map[string]float64, len(values))
	top := math.Inf(-1)
	for _, v := range values {
		if !math.IsNaN(v) {
			top = max(top, v)
		}
	}
	for k := range values {
		out[k] = 0
	}
	if math.IsInf(top, -1) {
		return out
	}
	var sum float64
	for k, v := range values {
		var e float64
		switch {
		case math.IsNaN(v):
		case !(temperature > 0) || math.IsInf(top, 1):
			if v == top {
				e = 1
			}
		default:
			e = math.Exp((v - top) / temperature)
		}
		out[k] = e
		sum += e
	}
	for k := range out {
		out[k] /= sum
	}
	return out
}

// EMA returns the exponential moving average alpha·new + (1−alpha)·old for
// every key in either map, a missing key counting as 0. alpha is the weight
// of the new values: 0.5 for the subnets' weight smoothing, 0.1 for a
// validator's per-round score keeping. alpha is clamped to [0, 1].
func EMA(old, new map[string]float64, alpha float64) map[string]float64 {
	alpha = max(0, min(1, alpha))
	if math.IsNaN(alpha) {
		alpha = 0
	}
	out := make(map[string]float64, max(len(old), len(new)))
	for k, v := range old {
		out[k] = (1 - alpha) * v
	}
	for k, v := range new {
		out[k] += alpha * v
	}
	return out
}

// Normalize returns values scaled to sum to 1 (L1 normalisation). Negative,
// NaN and infinite values count as 0; if nothing positive remains every
// value is 0.
func Normalize(values map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(values))
	var sum float64
	for k, v := range values {
		if v > 0 && !math.IsInf(v, 1) {
			out[k] = v
			sum += v
		} else {
			out[k] = 0
		}
	}
	if sum == 0 {
		return out
	}
	for k := range out {
		out[k] /= sum
	}
	return out
}
