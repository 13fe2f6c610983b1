package incentive

import "math"

// u16Max is the scale at which the chain stores weights and bonds.
const u16Max = 65535

// bondsYuma1 grows bonds as subtensor's original Yuma does: ΔB is the
// column-normalised W_b∘S, the new bonds colnorm(α·ΔB + (1−α)·colnorm(B)),
// dividends D_i = Σ_j B_ij·I_j normalised. Quantised, the bonds are
// returned column max-upscaled and floored to u16 fractions, as stored.
func bondsYuma1(wb, prevBonds [][]float64, incentive, active []float64, alpha float64, quantize bool) (bonds [][]float64, dividends []float64) {
	nv, nm := len(wb), len(incentive)
	delta := newMatrix(nv, nm)
	for i := range nv {
		for j := range nm {
			delta[i][j] = active[i] * wb[i][j]
		}
	}
	colNormalize(delta)
	prev := newMatrix(nv, nm)
	for i := range prevBonds {
		copy(prev[i], prevBonds[i])
	}
	colNormalize(prev)
	bonds = newMatrix(nv, nm)
	for i := range nv {
		for j := range nm {
			bonds[i][j] = alpha*delta[i][j] + (1-alpha)*prev[i][j]
		}
	}
	colNormalize(bonds)
	dividends = make([]float64, nv)
	for i := range nv {
		for j := range nm {
			dividends[i] += bonds[i][j] * incentive[j]
		}
	}
	normalizeVec(dividends)
	if quantize {
		colMaxUpscale(bonds)
		for i := range bonds {
			quantizeBonds(bonds[i])
		}
	}
	return bonds, dividends
}

// bondsYuma3 grows bonds as subtensor's Yuma 3 does: per (validator,
// miner) an EMA of W_b with α fixed or, with liquid alpha, from
// liquidAlpha; bonds stay proportions in [0, 1]; dividends
// D_i = S_i·Σ_j colnorm(B)_ij·I_j normalised. Quantised, bonds are floored
// to u16 fractions, as stored.
func bondsYuma3(wb, prevBonds [][]float64, consensus, incentive, active []float64, p yumaParams, quantize bool) (bonds [][]float64, dividends []float64) {
	nv, nm := len(wb), len(incentive)
	// Liquid alpha needs a consensus to measure against (subtensor falls back
	// to the fixed α when every consensus weight is zero).
	liquid := p.liquid && sum(consensus) > 0
	bonds = newMatrix(nv, nm)
	for i := range nv {
		for j := range nm {
			var prev float64
			if prevBonds != nil {
				prev = prevBonds[i][j]
			}
			a := p.alpha
			if liquid {
				a = liquidAlpha(consensus[j], wb[i][j], prev, p)
			}
			bonds[i][j] = min((1-a)*prev+a*wb[i][j], 1)
		}
	}
	norm := newMatrix(nv, nm)
	for i := range bonds {
		copy(norm[i], bonds[i])
	}
	colNormalize(norm)
	dividends = make([]float64, nv)
	for i := range nv {
		for j := range nm {
			dividends[i] += norm[i][j] * incentive[j]
		}
		dividends[i] *= active[i]
	}
	normalizeVec(dividends)
	if quantize {
		for i := range bonds {
			quantizeBonds(bonds[i])
		}
	}
	return bonds, dividends
}

// liquidAlpha is subtensor's alpha_sigmoid: a weight above its bond moves
// the bond faster the further it sits above consensus (buying), a weight
// below its bond the further the bond sits above the weight (selling):
// α = low + (high − low)·σ((steepness/100)·(d − ½)), clamped to [low, high].
func liquidAlpha(consensus, weight, bond float64, p yumaParams) float64 {
	var d float64
	if weight >= bond {
		d = clamp01(weight - consensus)
	} else {
		d = clamp01(bond - weight)
	}
	sig := 1 / (1 + math.Exp(-p.alphaSteepness/100*(d-0.5)))
	return min(max(p.alphaLow+sig*(p.alphaHigh-p.alphaLow), p.alphaLow), p.alphaHigh)
}

func clamp01(x float64) float64 { return min(max(x, 0), 1) }
