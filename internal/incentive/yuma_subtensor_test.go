package incentive

import (
	"math"
	"testing"
)

// The vectors in this file are subtensor's own multi-epoch tests
// (github.com/opentensor/subtensor, pallets/subtensor/src/tests/epoch.rs),
// replayed epoch by epoch through Yuma with the chain's storage
// (Quantize) and with the parameters each test sets.

// u16Of returns a stored fraction as the u16 the chain holds.
func u16Of(x float64) int { return int(math.Round(x * u16Max)) }

// dividendU16 is how the chain stores a dividend: floored to u16.
func dividendU16(x float64) int { return int(math.Floor(x*u16Max + 1e-9)) }

func within(t *testing.T, what string, got, want, tol int) {
	t.Helper()
	if d := got - want; d > tol || d < -tol {
		t.Errorf("%s = %d, want %d (±%d)", what, got, want, tol)
	}
}

// TestYumaReproducesSubtensorTestBonds replays test_bonds (epoch.rs at
// commit 28a17c352238fd267808e0c04d1b99d2aac64a45): four validators with
// stakes 1:2:3:4 weight four servers 0.25:0.5:0.75:1 (u16 max-upscaled),
// bonds penalty 1, bonds moving average 0.9; then one by one validators set
// a self-weight (masked), the fourth validator alone is below κ (no
// consensus), and the third moves all its weight to the last server. The
// test asserts the stored u16 bonds exactly; the dividends are the D lines
// of the test's own trace.
func TestYumaReproducesSubtensorTestBonds(t *testing.T) {
	base := []float64{0, 0, 0, 0, 16383, 32767, 49149, 65535}
	self := func(i int) []float64 { r := make([]float64, 8); r[i] = 65535; return r }
	onlyLast := []float64{0, 0, 0, 0, 0, 0, 0, 65535}
	epochs := []struct {
		name     string
		rows     [][]float64
		col      int
		bonds    []int
		div      []float64
		stakeEmi bool // no consensus: validators are paid by stake
	}{
		{"every validator weights the servers", [][]float64{base, base, base, base}, 4,
			[]int{16383, 32767, 49151, 65535}, []float64{0.1, 0.2, 0.3, 0.4}, false},
		{"validator 1 sets a self-weight", [][]float64{self(0), base, base, base}, 4,
			[]int{14582, 32767, 49151, 65535}, []float64{0.0899967032, 0.2022211233, 0.303334432, 0.404447741}, false},
		{"validator 2 sets a self-weight", [][]float64{self(0), self(1), base, base}, 4,
			[]int{12603, 28321, 49151, 65535}, []float64{0.0809936118, 0.1819995677, 0.3158592721, 0.421147548}, false},
		{"validator 3 sets a self-weight: 40% stake is no consensus", [][]float64{self(0), self(1), self(2), base}, 7,
			[]int{12602, 28320, 49150, 65535}, []float64{0, 0, 0, 0}, true},
		{"validator 3 weights server 4 only", [][]float64{self(0), self(1), onlyLast, base}, 7,
			[]int{10951, 24609, 49150, 65535}, []float64{0.0728874663, 0.1637972582, 0.3271309866, 0.4361842885}, false},
		{"the same weights a second time", [][]float64{self(0), self(1), onlyLast, base}, 7,
			[]int{9559, 21482, 49150, 65535}, []float64{0.0655988548, 0.1474132247, 0.3372762585, 0.4497116616}, false},
		{"a third time", [][]float64{self(0), self(1), onlyLast, base}, 7,
			[]int{8376, 18824, 49150, 65535}, []float64{0.0590361361, 0.1326722752, 0.3464062694, 0.4618853189}, false},
		{"a fourth time (trace only)", [][]float64{self(0), self(1), onlyLast, base}, 7,
			nil, []float64{0.053130352, 0.1194037423, 0.3546237142, 0.472842191}, false},
	}
	var prev [][]float64
	for k, e := range epochs {
		out, err := Yuma(YumaInput{Weights: e.rows, Stakes: []float64{1, 2, 3, 4}, PrevBonds: prev,
			SelfMiner: []int{0, 1, 2, 3}, Quantize: true, Emission: 1e9})
		if err != nil {
			t.Fatalf("epoch %d: %v", k+1, err)
		}
		for i, want := range e.bonds {
			within(t, e.name+": bond of validator "+string(rune('1'+i)), u16Of(out.Bonds[i][e.col]), want, 0)
		}
		for i, want := range e.div {
			if math.Abs(out.Dividends[i]-want) > 1e-6 {
				t.Errorf("%s: dividend %d = %.10f, want %.10f", e.name, i+1, out.Dividends[i], want)
			}
		}
		if e.stakeEmi {
			vec(t, e.name+": validator emission", out.ValidatorEmission, []float64{1e8, 2e8, 3e8, 4e8})
		}
		prev = out.Bonds
	}
}

// TestYumaReproducesSubtensorTestActiveStake replays test_active_stake
// (epoch.rs): two validators and two servers, stake 1 each, activity cutoff
// 5000. A validator whose last update is older than the cutoff loses its
// vote but keeps earning on its old bonds. Subtensor asserts u16 dividends,
// rao emissions and u16 bonds: dividends and bonds match exactly; the
// emissions, which subtensor computes in I32F32, within 2 rao of 10^9.
func TestYumaReproducesSubtensorTestActiveStake(t *testing.T) {
	w := []float64{0, 0, 32767, 32767}
	rows := [][]float64{w, w, make([]float64, 4), make([]float64, 4)}
	epochs := []struct {
		name       string
		block      int64
		lastUpdate []int64
		div        [2]int
		emission   [4]float64
		bond       [2]int
	}{
		{"both validators active", 1, []int64{1, 1, 0, 0}, [2]int{32767, 32767},
			[4]float64{250000000, 250000000, 250000000, 250000000}, [2]int{65535, 65535}},
		{"validator 2 inactive past the cutoff", 5002, []int64{5002, 1, 0, 0}, [2]int{36044, 29490},
			[4]float64{274999999, 224999999, 250000000, 250000000}, [2]int{65535, 53619}},
		{"validator 2 active again", 5003, []int64{5002, 5002, 0, 0}, [2]int{35716, 29818},
			[4]float64{272501132, 227498866, 250000000, 250000000}, [2]int{65535, 54712}},
	}
	var prev [][]float64
	for _, e := range epochs {
		out, err := Yuma(YumaInput{Weights: rows, Stakes: []float64{1, 1, 1, 1}, PrevBonds: prev, SelfMiner: []int{0, 1, 2, 3},
			Quantize: true, LastUpdate: e.lastUpdate, Block: e.block, ActivityCutoff: 5000, MaxValidators: 4, Emission: 1e9})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			within(t, e.name+": u16 dividend", dividendU16(out.Dividends[i]), e.div[i], 0)
			within(t, e.name+": u16 bond on server 1", u16Of(out.Bonds[i][2]), e.bond[i], 0)
			within(t, e.name+": u16 bond on server 2", u16Of(out.Bonds[i][3]), e.bond[i], 0)
		}
		got := []float64{out.ValidatorEmission[0], out.ValidatorEmission[1], out.MinerEmission[2], out.MinerEmission[3]}
		for i, want := range e.emission {
			if math.Abs(got[i]-want) > 2 {
				t.Errorf("%s: emission of UID %d = %.1f, want %.0f (±2 rao)", e.name, i, got[i], want)
			}
		}
		prev = out.Bonds
	}
}

// yuma3Case is one of subtensor's test_yuma_3_* scenarios (epoch.rs, the
// tests after setup_yuma_3_scenario): three validators, servers as columns,
// κ = u16::MAX/2, bonds penalty 0, liquid alpha on with (low, high) =
// (0.1, 0.3) and steepness 1000, bonds moving average 0.975, three
// validator permits. weights gives each epoch's u16 rows (nil: unchanged).
type yuma3Case struct {
	name      string
	stakes    []float64
	liquidOff bool
	weights   func(epoch int) [][]float64
	bonds     [][][]float64 // per epoch, per validator, per server
	dividends [][]float64   // per epoch, per validator
}

const m = 65535

// yuma3Rows builds an epoch's rows from server choices: 1 or 2 is all
// weight on that server.
func yuma3Rows(servers ...int) [][]float64 {
	rows := make([][]float64, len(servers))
	for i, s := range servers {
		rows[i] = []float64{0, 0}
		rows[i][s-1] = m
	}
	return rows
}

func kappaMoves(e1, e2 [3]int) func(int) [][]float64 {
	return func(epoch int) [][]float64 {
		switch epoch {
		case 0:
			return yuma3Rows(1, 1, 1)
		case 1:
			return yuma3Rows(e1[0], e1[1], e1[2])
		case 2:
			return yuma3Rows(e2[0], e2[1], e2[2])
		case 3:
			return yuma3Rows(2, 2, 2)
		}
		return nil
	}
}

func oneEpochSwitch(epoch int) [][]float64 {
	if epoch == 2 {
		return yuma3Rows(1, 1, 2)
	}
	return yuma3Rows(1, 1, 1)
}

// stableMiner is test_yuma_3_stable_miner's weights: half on servers 1 and
// 3, then B, then A, then everyone moves the first half to server 2.
func stableMiner(epoch int) [][]float64 {
	h := float64(m / 2)
	first, moved := []float64{h, 0, h}, []float64{0, h, h}
	switch epoch {
	case 0:
		return [][]float64{first, first, first}
	case 1:
		return [][]float64{first, moved, first}
	case 2:
		return [][]float64{moved, moved, first}
	case 3:
		return [][]float64{moved, moved, moved}
	}
	return nil
}

var yuma3Cases = []yuma3Case{
	{"test_yuma_3_stable_miner", []float64{8, 1, 1}, false, stableMiner,
		[][][]float64{
			{{0.0507, 0, 0.0507}, {0.0507, 0, 0.0507}, {0.0507, 0, 0.0507}},
			{{0.0962, 0, 0.0962}, {0.0455, 0.1000, 0.0962}, {0.0962, 0, 0.0962}},
			{{0.0863, 0.0507, 0.1371}, {0.0408, 0.1405, 0.1371}, {0.1770, 0, 0.1371}},
			{{0.0774, 0.0962, 0.1739}, {0.0367, 0.1770, 0.1739}, {0.1579, 0.0507, 0.1739}},
			{{0.0694, 0.1371, 0.2069}, {0.0329, 0.2097, 0.2069}, {0.1411, 0.0962, 0.2069}},
			{{0.0623, 0.1739, 0.2366}, {0.0296, 0.2391, 0.2366}, {0.1263, 0.1371, 0.2366}},
		},
		[][]float64{{0.8, 0.1, 0.1}, {0.8226, 0.0745, 0.1028}, {0.7750, 0.1685, 0.0565}, {0.7864, 0.1372, 0.0764}, {0.7912, 0.1241, 0.0847}, {0.7937, 0.1173, 0.0890}}},
	{"test_yuma_3_kappa_moves_first", []float64{8, 1, 1}, false, kappaMoves([3]int{2, 1, 1}, [3]int{2, 2, 1}),
		[][][]float64{
			{{0.1013, 0}, {0.1013, 0}, {0.1013, 0}},
			{{0.0908, 0.1013}, {0.3697, 0}, {0.3697, 0}},
			{{0.0815, 0.1924}, {0.3170, 0.1013}, {0.5580, 0}},
			{{0.0731, 0.2742}, {0.2765, 0.1924}, {0.4306, 0.1013}},
			{{0.0656, 0.3478}, {0.2435, 0.2742}, {0.3589, 0.1924}},
			{{0.0588, 0.4139}, {0.2157, 0.3478}, {0.3089, 0.2742}},
		},
		[][]float64{{0.8, 0.1, 0.1}, {1, 0, 0}, {0.9382, 0.0618, 0}, {0.8819, 0.0773, 0.0407}, {0.8564, 0.0844, 0.0592}, {0.8418, 0.0884, 0.0697}}},
	{"test_yuma_3_kappa_moves_second", []float64{8, 1, 1}, false, kappaMoves([3]int{1, 2, 1}, [3]int{2, 2, 1}),
		[][][]float64{
			{{0.1013, 0}, {0.1013, 0}, {0.1013, 0}},
			{{0.1924, 0}, {0.0908, 0.2987}, {0.1924, 0}},
			{{0.1715, 0.1013}, {0.0815, 0.3697}, {0.4336, 0}},
			{{0.1531, 0.1924}, {0.0731, 0.4336}, {0.3608, 0.1013}},
			{{0.1369, 0.2742}, {0.0656, 0.4910}, {0.3103, 0.1924}},
			{{0.1225, 0.3478}, {0.0588, 0.5426}, {0.2712, 0.2742}},
		},
		[][]float64{{0.8, 0.1, 0.1}, {0.8446, 0.0498, 0.1056}, {0.6868, 0.3132, 0}, {0.7421, 0.2090, 0.0489}, {0.7625, 0.1706, 0.0669}, {0.7730, 0.1508, 0.0762}}},
	{"test_yuma_3_kappa_moves_last", []float64{8, 1, 1}, false, kappaMoves([3]int{1, 2, 1}, [3]int{1, 2, 2}),
		[][][]float64{
			{{0.1013, 0}, {0.1013, 0}, {0.1013, 0}},
			{{0.1924, 0}, {0.0908, 0.2987}, {0.1924, 0}},
			{{0.2742, 0}, {0.0815, 0.5081}, {0.1715, 0.2987}},
			{{0.2416, 0.1013}, {0.0731, 0.5580}, {0.1531, 0.3697}},
			{{0.2141, 0.1924}, {0.0656, 0.6028}, {0.1369, 0.4336}},
			{{0.1903, 0.2742}, {0.0588, 0.6430}, {0.1225, 0.4910}},
		},
		[][]float64{{0.8, 0.1, 0.1}, {0.8446, 0.0498, 0.1056}, {0.8966, 0.0333, 0.0701}, {0.4663, 0.3210, 0.2127}, {0.5976, 0.2340, 0.1683}, {0.6592, 0.1932, 0.1475}}},
	{"test_yuma_3_one_epoch_switch", []float64{33, 33, 34}, false, oneEpochSwitch,
		[][][]float64{
			{{0.1013, 0}, {0.1013, 0}, {0.1013, 0}},
			{{0.1924, 0}, {0.1924, 0}, {0.1924, 0}},
			{{0.2742, 0}, {0.2742, 0}, {0.1715, 0.2987}},
			{{0.3478, 0}, {0.3478, 0}, {0.2554, 0.2618}},
			{{0.4139, 0}, {0.4139, 0}, {0.3309, 0.2312}},
			{{0.4733, 0}, {0.4733, 0}, {0.3987, 0.2051}},
		},
		[][]float64{{0.33, 0.33, 0.34}, {0.33, 0.33, 0.34}, {0.3782, 0.3782, 0.2436}, {0.3628, 0.3628, 0.2745}, {0.3541, 0.3541, 0.2917}, {0.3487, 0.3487, 0.3026}}},
	{"test_yuma_3_liquid_alpha_disabled", []float64{33, 33, 34}, true, oneEpochSwitch,
		[][][]float64{
			{{0.0250, 0}, {0.0250, 0}, {0.0250, 0}},
			{{0.0494, 0}, {0.0494, 0}, {0.0494, 0}},
			{{0.0731, 0}, {0.0731, 0}, {0.0481, 0.0250}},
			{{0.0963, 0}, {0.0963, 0}, {0.0719, 0.0244}},
			{{0.1189, 0}, {0.1189, 0}, {0.0951, 0.0238}},
			{{0.1409, 0}, {0.1409, 0}, {0.1178, 0.0232}},
		},
		[][]float64{{0.33, 0.33, 0.34}, {0.33, 0.33, 0.34}, {0.3734, 0.3734, 0.2532}, {0.3611, 0.3611, 0.2779}, {0.3541, 0.3541, 0.2919}, {0.3495, 0.3495, 0.3009}}},
}

// TestYumaReproducesSubtensorYuma3Tests replays each scenario epoch by epoch
// and checks bonds and dividends within subtensor's own tolerance, 1e-3.
func TestYumaReproducesSubtensorYuma3Tests(t *testing.T) {
	zero := 0.0
	for _, c := range yuma3Cases {
		t.Run(c.name, func(t *testing.T) {
			var prev, rows [][]float64
			for epoch := range c.dividends {
				if r := c.weights(epoch); r != nil {
					rows = r
				}
				out, err := Yuma(YumaInput{Variant: Yuma3, Weights: rows, Stakes: c.stakes, PrevBonds: prev,
					BondsPenalty: &zero, BondsAlpha: 1 - 0.975, LiquidAlpha: !c.liquidOff, AlphaLow: 0.1, AlphaHigh: 0.3,
					AlphaSteepness: 1000, MaxValidators: 3, Quantize: true, Emission: 1e9})
				if err != nil {
					t.Fatal(err)
				}
				for i := range 3 {
					if d := out.Dividends[i] - c.dividends[epoch][i]; math.Abs(d) > 1e-3 {
						t.Errorf("epoch %d: dividend of validator %d = %.4f, want %.4f", epoch, i, out.Dividends[i], c.dividends[epoch][i])
					}
					for j := range c.bonds[epoch][i] {
						if d := out.Bonds[i][j] - c.bonds[epoch][i][j]; math.Abs(d) > 1e-3 {
							t.Errorf("epoch %d: bond of validator %d on server %d = %.4f, want %.4f", epoch, i, j+1, out.Bonds[i][j], c.bonds[epoch][i][j])
						}
					}
				}
				prev = out.Bonds
			}
		})
	}
}
