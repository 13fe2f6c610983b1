package incentive

import (
	"math"
	"strings"
	"testing"
)

func TestWeightedMedianMatchesSubtensor(t *testing.T) {
	// Vectors from subtensor pallets/subtensor/src/tests/math.rs,
	// test_math_weighted_median (majority 0.51).
	tests := []struct {
		name          string
		stake, scores []float64
		kappa, want   float64
	}{
		{"no validators give zero", nil, nil, 0.51, 0},
		{"one validator's score is the median", []float64{1}, []float64{1}, 0.51, 1},
		{"a 51% holder of the top score sets it", []float64{.49, .51}, []float64{.5, 1}, 0.51, 1},
		{"a 49% holder of the top score cannot set it", []float64{.51, .49}, []float64{.5, 1}, 0.51, .5},
		{"a zero-stake validator is ignored", []float64{.49, 0, .51}, []float64{.5, .7, 1}, 0.51, 1},
		{"a 1% validator tips the majority to its score", []float64{.49, .01, .5}, []float64{.5, .7, 1}, 0.51, .7},
		{"the majority reaches down to 0.7", []float64{.49, .51, 0}, []float64{.5, .7, 1}, 0.51, .7},
		{"five equal stakes take the third-highest score", []float64{.2, .2, .2, .2, .2}, []float64{.8, .2, 1, .6, .4}, 0.51, .6},
		{"ten equal stakes with paired scores give 0.6",
			[]float64{.1, .1, .1, .1, .1, .1, .1, .1, .1, .1},
			[]float64{.8, .8, .2, .2, 1, 1, .6, .6, .4, .4}, 0.51, .6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := weightedMedian(tt.stake, tt.scores, tt.kappa); got != tt.want {
				t.Errorf("weightedMedian = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWeightedMedianColumnsMatchSubtensor(t *testing.T) {
	// subtensor tests/math.rs, test_math_weighted_median_col: a 4 × 3 weight
	// matrix (rows = validators) and the column medians at several κ.
	w := [][]float64{{0, .1, 0}, {0, .2, .4}, {0, .3, .1}, {0, .4, .5}}
	w2 := [][]float64{{0, .1, 0}, {0, .2, .4}, {0, .3, .1}, {0, 0, .5}}
	tests := []struct {
		name    string
		stake   []float64
		weights [][]float64
		kappa   float64
		want    []float64
	}{
		{"kappa 0.24 gives 0, 0.3, 0.4", []float64{0, .75, .25, 0}, w, 0.24, []float64{0, .3, .4}},
		{"kappa 0.26 gives 0, 0.2, 0.4", []float64{0, .75, .25, 0}, w, 0.26, []float64{0, .2, .4}},
		{"kappa 0.76 gives 0, 0.2, 0.1", []float64{0, .75, .25, 0}, w, 0.76, []float64{0, .2, .1}},
		{"kappa 0.51 with a second matrix gives 0, 0, 0.4", []float64{0, .3, .2, .5}, w2, 0.51, []float64{0, 0, .4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for j := range tt.want {
				col := make([]float64, len(tt.weights))
				for i := range tt.weights {
					col[i] = tt.weights[i][j]
				}
				if got := weightedMedian(tt.stake, col, tt.kappa); got != tt.want[j] {
					t.Errorf("column %d median = %v, want %v", j, got, tt.want[j])
				}
			}
		})
	}
}

// TestYumaHandComputed checks one epoch against values worked by hand:
//
//	stakes [3, 1] → S = [.75, .25]; weights [[3, 2], [1, 4]] → W = [[.6, .4], [.2, .8]]
//	C = [.6, .4]  (miner 0: .75 at .6 ≥ κ; miner 1: .25 at .8 < κ, then .4)
//	W̄ = [[.6, .4], [.2, .4]], Tv = [1, .6]
//	R = [.75·.6+.25·.2, .75·.4+.25·.4] = [.5, .4], I = [5/9, 4/9]
//	P = [.5, .5], T = [1, .8]
//	ΔB = colnorm([[.45, .3], [.05, .1]]) = [[.9, .75], [.1, .25]]
//	no previous bonds: B = ΔB; D = [.9·5/9 + .75·4/9, .1·5/9 + .25·4/9] = [5/6, 1/6]
//	previous bonds all .5, α = .1: B = [[.54, .525], [.46, .475]],
//	D = [.54·5/9 + .525·4/9, .46·5/9 + .475·4/9] = [8/15, 7/15]
//	emission 900, half to miners: miners [250, 200]; validators [375, 75]
//	or, with those previous bonds, [240, 210].
func TestYumaHandComputed(t *testing.T) {
	base := YumaInput{
		Weights:  [][]float64{{3, 2}, {1, 4}},
		Stakes:   []float64{3, 1},
		Emission: 900,
	}
	withBonds := base
	withBonds.PrevBonds = [][]float64{{.5, .5}, {.5, .5}}
	tests := []struct {
		name  string
		in    YumaInput
		bonds [][]float64
		div   []float64
		valEm []float64
	}{
		{"a first epoch takes this epoch's bonds", base,
			[][]float64{{.9, .75}, {.1, .25}}, []float64{5.0 / 6, 1.0 / 6}, []float64{375, 75}},
		{"previous bonds enter with weight 0.9", withBonds,
			[][]float64{{.54, .525}, {.46, .475}}, []float64{8.0 / 15, 7.0 / 15}, []float64{240, 210}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Yuma(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			vec(t, "consensus", out.Consensus, []float64{.6, .4})
			vec(t, "validator trust", out.ValidatorTrust, []float64{1, .6})
			vec(t, "ranks", out.Ranks, []float64{.5, .4})
			vec(t, "incentive", out.Incentive, []float64{5.0 / 9, 4.0 / 9})
			vec(t, "trust", out.Trust, []float64{1, .8})
			for i := range tt.bonds {
				vec(t, "bonds row", out.Bonds[i], tt.bonds[i])
			}
			vec(t, "dividends", out.Dividends, tt.div)
			vec(t, "miner emission", out.MinerEmission, []float64{250, 200})
			vec(t, "validator emission", out.ValidatorEmission, tt.valEm)
		})
	}
}

func TestYumaEdgeCases(t *testing.T) {
	t.Run("a validator with a zero row keeps zero trust and earns no dividends", func(t *testing.T) {
		out, err := Yuma(YumaInput{Weights: [][]float64{{1, 1}, {0, 0}}, Stakes: []float64{1, 1}, Emission: 10})
		if err != nil {
			t.Fatal(err)
		}
		vec(t, "validator trust", out.ValidatorTrust, []float64{1, 0})
		vec(t, "incentive", out.Incentive, []float64{.5, .5})
		vec(t, "dividends", out.Dividends, []float64{1, 0})
		vec(t, "validator emission", out.ValidatorEmission, []float64{5, 0})
	})
	t.Run("with no weights at all the emission goes to validators by stake", func(t *testing.T) {
		out, err := Yuma(YumaInput{Weights: [][]float64{{0, 0}, {0, 0}}, Stakes: []float64{3, 1}, Emission: 100})
		if err != nil {
			t.Fatal(err)
		}
		vec(t, "miner emission", out.MinerEmission, []float64{0, 0})
		vec(t, "validator emission", out.ValidatorEmission, []float64{75, 25})
	})
	t.Run("miner share moves the split", func(t *testing.T) {
		out, err := Yuma(YumaInput{Weights: [][]float64{{1}}, Stakes: []float64{1}, Emission: 100, MinerShare: 0.41})
		if err != nil {
			t.Fatal(err)
		}
		vec(t, "miner emission", out.MinerEmission, []float64{41})
		vec(t, "validator emission", out.ValidatorEmission, []float64{59})
	})
}

func TestYumaErrors(t *testing.T) {
	ok := YumaInput{Weights: [][]float64{{1, 0}, {0, 1}}, Stakes: []float64{1, 1}}
	tests := []struct {
		name    string
		mutate  func(in *YumaInput)
		errPart string
	}{
		{"no validators is an error", func(in *YumaInput) { in.Weights = nil }, "no validators"},
		{"no miners is an error", func(in *YumaInput) { in.Weights = [][]float64{{}, {}} }, "no miners"},
		{"a ragged matrix is an error", func(in *YumaInput) { in.Weights = [][]float64{{1, 0}, {1}} }, "row 1"},
		{"a negative weight is an error", func(in *YumaInput) { in.Weights = [][]float64{{1, -1}, {0, 1}} }, "≥ 0"},
		{"a stake count mismatch is an error", func(in *YumaInput) { in.Stakes = []float64{1} }, "stakes"},
		{"zero total stake is an error", func(in *YumaInput) { in.Stakes = []float64{0, 0} }, "total stake"},
		{"a NaN stake is an error", func(in *YumaInput) { in.Stakes = []float64{math.NaN(), 1} }, "invalid stake"},
		{"kappa above one is an error", func(in *YumaInput) { in.Kappa = 1.5 }, "kappa"},
		{"a negative alpha is an error", func(in *YumaInput) { in.BondsAlpha = -0.1 }, "bonds alpha"},
		{"mis-shaped previous bonds are an error", func(in *YumaInput) { in.PrevBonds = [][]float64{{1}} }, "previous bonds"},
		{"a negative emission is an error", func(in *YumaInput) { in.Emission = -1 }, "emission"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok
			tt.mutate(&in)
			_, err := Yuma(in)
			if err == nil || !strings.Contains(err.Error(), tt.errPart) {
				t.Fatalf("err = %v, want one containing %q", err, tt.errPart)
			}
		})
	}
}

// TestYumaResistsOneColludingValidator: four honest validators (20% stake
// each) broadly agree; a fifth with 20% stake puts all its weight on its own
// miner. Consensus clips the colluder's weight to the honest majority's
// level, so the miner's incentive stays within 5 percentage points of what
// the honest validators alone give. Without clipping (a plain stake-weighted
// average) the same collusion would move it by far more.
func TestYumaResistsOneColludingValidator(t *testing.T) {
	honest := [][]float64{
		{.30, .25, .20, .12, .08, .05},
		{.28, .27, .18, .14, .08, .05},
		{.32, .22, .21, .10, .10, .05},
		{.29, .26, .19, .13, .07, .06},
	}
	const own = 5
	alone, err := Yuma(YumaInput{Weights: honest, Stakes: []float64{.2, .2, .2, .2}})
	if err != nil {
		t.Fatal(err)
	}
	colluder := []float64{0, 0, 0, 0, 0, 1}
	with, err := Yuma(YumaInput{Weights: append(honest[:4:4], colluder), Stakes: []float64{.2, .2, .2, .2, .2}})
	if err != nil {
		t.Fatal(err)
	}
	shift := math.Abs(with.Incentive[own] - alone.Incentive[own])
	if shift > 0.05 {
		t.Errorf("colluder moved its miner's incentive from %.4f to %.4f (shift %.4f > 0.05)",
			alone.Incentive[own], with.Incentive[own], shift)
	}
	// The unclipped stake-weighted average for comparison.
	var naive, total float64
	rows := append(honest[:4:4], colluder)
	for _, r := range rows {
		var s float64
		for _, v := range r {
			s += v
		}
		naive += 0.2 * r[own] / s
		total += 0.2
	}
	naive /= total
	if naiveShift := naive - alone.Incentive[own]; naiveShift < 3*shift || naiveShift < 0.1 {
		t.Errorf("expected an unclipped average to move much more: naive %.4f vs clipped shift %.4f", naiveShift, shift)
	}
	t.Logf("own miner incentive: honest alone %.4f, with colluder %.4f, unclipped %.4f",
		alone.Incentive[own], with.Incentive[own], naive)
}

func vec(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Errorf("%s[%d] = %.12f, want %.12f", what, i, got[i], want[i])
		}
	}
}

// TestDefaultKappaIsSubtensors: κ is 32767/65535, not 0.5. With stakes
// 4999960 : 5000040 the first validator holds 0.499996 of the stake, which
// reaches subtensor's κ but not 0.5: its weight alone sets the consensus.
func TestDefaultKappaIsSubtensors(t *testing.T) {
	in := YumaInput{Weights: [][]float64{{1, 0}, {0, 1}}, Stakes: []float64{4999960, 5000040}}
	out, err := Yuma(in)
	if err != nil {
		t.Fatal(err)
	}
	vec(t, "consensus with the default κ", out.Consensus, []float64{1, 1})
	in.Kappa = 0.5
	if out, err = Yuma(in); err != nil {
		t.Fatal(err)
	}
	vec(t, "consensus with κ = 0.5", out.Consensus, []float64{0, 1})
}

// TestYumaMasksWhatSubtensorMasks covers the masks one by one on a small
// network, each against the unmasked result.
func TestYumaMasksWhatSubtensorMasks(t *testing.T) {
	// v0 (60% stake) is also miner column 0 and gives itself half its
	// weight; unmasked, its majority would set miner 0's consensus to 0.5.
	selfDealing := YumaInput{Weights: [][]float64{{1, 1}, {0.5, 0.5}}, Stakes: []float64{60, 40}, SelfMiner: []int{0, -1}}
	t.Run("a majority validator's self-weight earns its own miner nothing", func(t *testing.T) {
		out, err := Yuma(selfDealing)
		if err != nil {
			t.Fatal(err)
		}
		vec(t, "incentive", out.Incentive, []float64{0, 1})
		vec(t, "validator trust", out.ValidatorTrust, []float64{1, 0.5})
	})
	t.Run("validator permits go to the top-k stakes", func(t *testing.T) {
		in := YumaInput{Weights: [][]float64{{1, 0}, {0, 1}, {0, 1}}, Stakes: []float64{5, 3, 3}, MaxValidators: 2}
		out, err := Yuma(in)
		if err != nil {
			t.Fatal(err)
		}
		// Of the equal stakes the earlier row loses its permit, as in is_topk_nonzero.
		if out.Permits[0] != true || out.Permits[1] != false || out.Permits[2] != true {
			t.Fatalf("permits = %v, want [true false true]", out.Permits)
		}
		vec(t, "active stake", out.ActiveStake, []float64{5.0 / 8, 0, 3.0 / 8})
		vec(t, "bonds of the validator without a permit", out.Bonds[1], []float64{0, 0})
	})
	t.Run("a validator idle past the activity cutoff loses its vote", func(t *testing.T) {
		in := YumaInput{Weights: [][]float64{{1, 0}, {0, 1}}, Stakes: []float64{1, 3}, LastUpdate: []int64{100, 10},
			Block: 200, ActivityCutoff: 150}
		out, err := Yuma(in)
		if err != nil {
			t.Fatal(err)
		}
		vec(t, "active stake", out.ActiveStake, []float64{1, 0})
		vec(t, "incentive", out.Incentive, []float64{1, 0})
	})
}

// TestYumaHostileValidator: whatever one validator key sends, the epoch
// either refuses it with an error naming the problem or masks it, and the
// key's validator plus its own miner never take more than its stake share
// of the emission when the others agree with each other.
func TestYumaHostileValidator(t *testing.T) {
	honest := [][]float64{{0, 0.5, 0.5}, {0, 0.6, 0.4}, {0, 0.4, 0.6}}
	stakes := []float64{30, 30, 30, 10}
	t.Run("NaN, negative and infinite weights are refused", func(t *testing.T) {
		for _, bad := range []float64{math.NaN(), -1, math.Inf(1)} {
			in := YumaInput{Weights: append(honest[:3:3], []float64{bad, 0, 0}), Stakes: stakes}
			if _, err := Yuma(in); err == nil || !strings.Contains(err.Error(), "weights[3][0]") {
				t.Errorf("weight %v: err = %v, want one naming weights[3][0]", bad, err)
			}
		}
	})
	t.Run("huge weights count like any other row", func(t *testing.T) {
		huge := YumaInput{Weights: append(honest[:3:3], []float64{0, math.MaxFloat64, math.MaxFloat64}), Stakes: stakes}
		plain := YumaInput{Weights: append(honest[:3:3], []float64{0, 1, 1}), Stakes: stakes}
		a, err := Yuma(huge)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Yuma(plain)
		if err != nil {
			t.Fatal(err)
		}
		vec(t, "incentive", a.Incentive, b.Incentive)
		vec(t, "validator trust", a.ValidatorTrust, b.ValidatorTrust)
	})
	t.Run("previous bonds above 1 are refused", func(t *testing.T) {
		in := YumaInput{Weights: append(honest[:3:3], []float64{1, 0, 0}), Stakes: stakes,
			PrevBonds: [][]float64{{0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {1e9, 0, 0}}}
		if _, err := Yuma(in); err == nil || !strings.Contains(err.Error(), "previous bonds[3][0]") {
			t.Fatalf("err = %v, want one naming previous bonds[3][0]", err)
		}
	})
	for _, v := range []Variant{Yuma1, Yuma3} {
		t.Run(string(v)+": a self-dealing key earns no more than its stake share", func(t *testing.T) {
			// The hostile key (10% stake) is miner column 0 and puts all its weight there.
			in := YumaInput{Variant: v, Weights: append(honest[:3:3], []float64{1, 0, 0}), Stakes: stakes,
				SelfMiner: []int{-1, -1, -1, 0}, Emission: 1000}
			var prev [][]float64
			for range 5 {
				in.PrevBonds = prev
				out, err := Yuma(in)
				if err != nil {
					t.Fatal(err)
				}
				if got := out.ValidatorEmission[3] + out.MinerEmission[0]; got > 0.1*1000+1e-9 {
					t.Fatalf("the hostile key took %.3f of 1000, above its 10%% stake share", got)
				}
				prev = out.Bonds
			}
		})
	}
}
