package consensus_test

import (
	"context"
	"math"
	"testing"
	"time"

	"crucible/internal/consensus"
	"crucible/internal/incentive"
)

func TestHubEpochsRunTheConfiguredYuma3AsSubtensorDoes(t *testing.T) {
	forEachDatabase(t, testYuma3Epochs)
}

func TestHubEpochsMaskAValidatorsWeightOnItsOwnMinerUID(t *testing.T) {
	forEachDatabase(t, testSelfWeight)
}

// testYuma3Epochs runs the first three epochs of subtensor's
// test_yuma_3_kappa_moves_first (pallets/subtensor/src/tests/epoch.rs)
// through the hub's epoch closes: validators A, B, C with stakes 8, 1, 1
// weight two miners; each closed epoch's bonds are the next one's previous
// bonds; dividends follow subtensor's within its tolerance, 1e-3.
func testYuma3Epochs(t *testing.T, url string) {
	ctx := context.Background()
	zero := 0.0
	h := newHub(t, url, consensus.Config{Emission: 1_000_000, Yuma: incentive.YumaInput{Variant: incentive.Yuma3,
		BondsPenalty: &zero, BondsAlpha: 0.025, LiquidAlpha: true, AlphaLow: 0.1, AlphaHigh: 0.3}})
	h.miners(t, 2)
	vs := h.validators(t, 8, 1, 1)
	role := map[string]int{vs[0]: 0, vs[1]: 1, vs[2]: 2}
	on := func(uid int64) map[int64]float64 { return map[int64]float64{uid: 1, 1 - uid: 0} }
	epochs := []struct {
		servers   [3]int64
		dividends [3]float64
	}{
		{[3]int64{0, 0, 0}, [3]float64{0.8, 0.1, 0.1}},
		{[3]int64{1, 0, 0}, [3]float64{1, 0, 0}},
		{[3]int64{1, 1, 0}, [3]float64{0.9382, 0.0618, 0}},
	}
	for k, e := range epochs {
		n := h.svc.Current().Epoch
		for i, v := range vs {
			if _, err := h.svc.PostWeights(ctx, v, n, "c-1", on(e.servers[i])); err != nil {
				t.Fatal(err)
			}
		}
		h.clk.Advance(time.Minute)
		rec, err := h.svc.Close(ctx, n)
		if err != nil {
			t.Fatalf("epoch %d: %v", k, err)
		}
		if rec.Variant != incentive.Yuma3 || rec.BondsPenalty != 0 || rec.AlphaLow != 0.1 || rec.Kappa != incentive.DefaultKappa {
			t.Fatalf("record parameters: variant %q β %v alpha low %v κ %v", rec.Variant, rec.BondsPenalty, rec.AlphaLow, rec.Kappa)
		}
		for _, v := range rec.Validators {
			if want := e.dividends[role[v.Key]]; math.Abs(v.Dividends-want) > 1e-3 {
				t.Errorf("epoch %d: validator %c dividend %.4f, want %.4f", k, 'A'+role[v.Key], v.Dividends, want)
			}
		}
	}
}

// testSelfWeight: a validator with 75% of the stake that also holds a miner
// UID puts half its weight on itself. Subtensor masks self-weights; so does
// the hub, and the validator's own UID earns nothing.
func testSelfWeight(t *testing.T, url string) {
	ctx := context.Background()
	h := newHub(t, url, consensus.Config{Emission: 1000})
	other := h.miners(t, 1)[0]
	vs := h.validators(t, 3, 1)
	reg, err := h.svc.Register(ctx, vs[0])
	if err != nil {
		t.Fatal(err)
	}
	n := h.svc.Current().Epoch
	for _, v := range vs {
		if _, err := h.svc.PostWeights(ctx, v, n, "c-1", map[int64]float64{0: 1, reg.UID: 1}); err != nil {
			t.Fatal(err)
		}
	}
	h.clk.Advance(time.Minute)
	rec, err := h.svc.Close(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rec.Miners {
		switch m.Key {
		case vs[0]:
			if m.Incentive != 0 || m.Emission != 0 {
				t.Errorf("the validator's own UID got incentive %v, emission %d; want 0", m.Incentive, m.Emission)
			}
		case other:
			if math.Abs(m.Incentive-1) > 1e-12 {
				t.Errorf("the other miner's incentive = %v, want 1", m.Incentive)
			}
		}
	}
}
