package consensus_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"crucible/internal/clock"
	"crucible/internal/consensus"
	"crucible/internal/identity"
	"crucible/internal/incentive"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// t0 is the start of epoch 1000 of 60 s epochs.
var t0 = time.Unix(60_000, 0).UTC()

type hub struct {
	db    *store.DB
	clk   *clock.Fake
	svc   *consensus.Service
	admin string
}

func newHub(t *testing.T, url string, cfg consensus.Config) *hub {
	t.Helper()
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	admin := keyID(t)
	clk := clock.NewFake(t0)
	cfg.DB, cfg.Clock, cfg.EpochLength, cfg.Admins = db, clk, time.Minute, append(cfg.Admins, admin)
	return &hub{db: db, clk: clk, svc: consensus.New(cfg), admin: admin}
}

func keyID(t *testing.T) string {
	t.Helper()
	k, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}

func (h *hub) miners(t *testing.T, n int) []string {
	t.Helper()
	var keys []string
	for range n {
		k := keyID(t)
		if _, err := h.svc.Register(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

func (h *hub) validators(t *testing.T, stakes ...int64) []string {
	t.Helper()
	var keys []string
	for _, s := range stakes {
		k := keyID(t)
		if _, err := h.svc.SetStake(context.Background(), h.admin, k, s); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

// forEachDatabase runs fn on a fresh SQLite database and, when configured, a
// fresh PostgreSQL one.
func forEachDatabase(t *testing.T, fn func(t *testing.T, url string)) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) { fn(t, d.URL) })
	}
}

func TestAnEpochClosesOnceFromTheLatestVectorsAndPaysExactlyItsEmission(t *testing.T) {
	forEachDatabase(t, testClose)
}

func TestWeightsAreRefusedFromKeysWithoutStakeForOtherEpochsAndUnknownUIDs(t *testing.T) {
	forEachDatabase(t, testRefusals)
}

func TestAFullRegistrationReplacesTheNonImmuneMinerWithTheLowestIncentive(t *testing.T) {
	forEachDatabase(t, testPruning)
}

func TestAColludingValidatorsOwnMinerGainsLittleOverTheHonestConsensus(t *testing.T) {
	forEachDatabase(t, testCollusion)
}

func testClose(t *testing.T, url string) {
	ctx := context.Background()
	h := newHub(t, url, consensus.Config{Emission: 1001})
	h.miners(t, 3)
	vs := h.validators(t, 300, 100)
	n := h.svc.Current().Epoch
	post := func(v string, w map[int64]float64) {
		t.Helper()
		if _, err := h.svc.PostWeights(ctx, v, h.svc.Current().Epoch, "c-1", w); err != nil {
			t.Fatal(err)
		}
		h.clk.Advance(time.Second)
	}
	post(vs[0], map[int64]float64{0: 1})                   // superseded below
	post(vs[0], map[int64]float64{0: 0.6, 1: 0.4})         // counts
	post(vs[1], map[int64]float64{0: 0.2, 1: 0.2, 2: 0.6}) // counts
	if _, err := h.svc.Close(ctx, n); !errors.Is(err, consensus.ErrConflict) {
		t.Fatalf("closing an open epoch: %v, want ErrConflict", err)
	}
	h.clk.Set(t0.Add(time.Minute))
	rec, err := h.svc.Close(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	// The same computation by hand, validators in key order.
	rows := map[string][]float64{vs[0]: {0.6, 0.4, 0}, vs[1]: {0.2, 0.2, 0.6}}
	stakes := map[string]float64{vs[0]: 300, vs[1]: 100}
	var in incentive.YumaInput
	for _, v := range rec.Validators {
		in.Weights, in.Stakes = append(in.Weights, rows[v.Key]), append(in.Stakes, stakes[v.Key])
	}
	want, err := incentive.Yuma(in)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for j, m := range rec.Miners {
		if math.Abs(m.Consensus-want.Consensus[j]) > 1e-12 || math.Abs(m.Incentive-want.Incentive[j]) > 1e-12 {
			t.Errorf("UID %d: consensus %v incentive %v, want %v %v", m.UID, m.Consensus, m.Incentive, want.Consensus[j], want.Incentive[j])
		}
		total += m.Emission
		if bal, _ := h.db.Balance(ctx, "miner:"+m.Key, "CRU"); bal != m.Emission {
			t.Errorf("UID %d holds %d, the record says %d", m.UID, bal, m.Emission)
		}
	}
	for _, v := range rec.Validators {
		total += v.Emission
	}
	if total != 1001 {
		t.Fatalf("the epoch emitted %d units in total, want exactly 1001", total)
	}
	again, err := h.svc.Close(ctx, n)
	if err != nil || again.ClosedAt != rec.ClosedAt {
		t.Fatalf("second close: %v, %v", again.ClosedAt, err)
	}
	if bal, _ := h.db.Balance(ctx, "external", "CRU"); bal != -1001 {
		t.Fatalf("external is %d after closing twice, want -1001 (emitted once)", bal)
	}

	// The next epoch starts from these bonds.
	n2 := h.svc.Current().Epoch
	post(vs[0], map[int64]float64{1: 1})
	post(vs[1], map[int64]float64{1: 1})
	h.clk.Set(t0.Add(2 * time.Minute))
	if err := h.svc.CloseDue(ctx); err != nil {
		t.Fatal(err)
	}
	rec2, err := h.svc.Get(ctx, -1)
	if err != nil || rec2.Epoch != n2 {
		t.Fatalf("latest = %d, %v; want %d closed by CloseDue", rec2.Epoch, err, n2)
	}
	prev := [][]float64{}
	in2 := incentive.YumaInput{}
	for _, v := range rec2.Validators {
		in2.Weights, in2.Stakes = append(in2.Weights, []float64{0, 1, 0}), append(in2.Stakes, stakes[v.Key])
		for _, pv := range rec.Validators {
			if pv.Key == v.Key {
				prev = append(prev, []float64{pv.Bonds[0], pv.Bonds[1], pv.Bonds[2]})
			}
		}
	}
	in2.PrevBonds = prev
	want2, _ := incentive.Yuma(in2)
	for i, v := range rec2.Validators {
		if math.Abs(v.Dividends-want2.Dividends[i]) > 1e-12 || math.Abs(v.Bonds[0]-want2.Bonds[i][0]) > 1e-12 {
			t.Errorf("%s: dividends %v bonds[0] %v, want %v %v (previous bonds carried)", v.Key, v.Dividends, v.Bonds[0], want2.Dividends[i], want2.Bonds[i][0])
		}
	}
}

func testRefusals(t *testing.T, url string) {
	ctx := context.Background()
	h := newHub(t, url, consensus.Config{})
	h.miners(t, 2)
	vs := h.validators(t, 10, 0)
	n := h.svc.Current().Epoch
	tests := []struct {
		name      string
		validator string
		epoch     int64
		weights   map[int64]float64
		want      error
	}{
		{"a key that was never staked is forbidden", keyID(t), n, map[int64]float64{0: 1}, consensus.ErrForbidden},
		{"a validator whose stake is zero is forbidden", vs[1], n, map[int64]float64{0: 1}, consensus.ErrForbidden},
		{"a past epoch is refused", vs[0], n - 1, map[int64]float64{0: 1}, consensus.ErrInvalid},
		{"a future epoch is refused", vs[0], n + 1, map[int64]float64{0: 1}, consensus.ErrInvalid},
		{"an unregistered UID is refused", vs[0], n, map[int64]float64{0: 1, 7: 1}, consensus.ErrInvalid},
		{"a negative weight is refused", vs[0], n, map[int64]float64{0: 1, 1: -1}, consensus.ErrInvalid},
		{"an all-zero vector is refused", vs[0], n, map[int64]float64{0: 0}, consensus.ErrInvalid},
		{"a staked validator's vector for the open epoch is accepted", vs[0], n, map[int64]float64{0: 1, 1: 3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.svc.PostWeights(ctx, tt.validator, tt.epoch, "", tt.weights)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("only an admin sets stakes or closes epochs", func(t *testing.T) {
		if _, err := h.svc.SetStake(ctx, vs[0], vs[0], 1_000_000); !errors.Is(err, consensus.ErrForbidden) {
			t.Fatalf("a validator raised its own stake: %v", err)
		}
		if _, err := h.svc.CloseAs(ctx, vs[0], n); !errors.Is(err, consensus.ErrForbidden) {
			t.Fatalf("a validator closed an epoch: %v", err)
		}
	})
}

func testPruning(t *testing.T, url string) {
	ctx := context.Background()
	h := newHub(t, url, consensus.Config{MaxUIDs: 3, Immunity: 90 * time.Second})
	miners := h.miners(t, 3)
	newcomer := keyID(t)
	if _, err := h.svc.Register(ctx, newcomer); !errors.Is(err, consensus.ErrConflict) || !strings.Contains(err.Error(), "immune") {
		t.Fatalf("registering while every miner is immune: %v, want ErrConflict naming immunity", err)
	}
	vs := h.validators(t, 1)
	n := h.svc.Current().Epoch
	if _, err := h.svc.PostWeights(ctx, vs[0], n, "", map[int64]float64{0: 0.5, 1: 0.1, 2: 0.4}); err != nil {
		t.Fatal(err)
	}
	h.clk.Set(t0.Add(2 * time.Minute))
	if _, err := h.svc.Close(ctx, n); err != nil {
		t.Fatal(err)
	}
	reg, err := h.svc.Register(ctx, newcomer)
	if err != nil {
		t.Fatal(err)
	}
	if !reg.Created || reg.UID != 1 || reg.Replaced == nil || reg.Replaced.Key != miners[1] {
		t.Fatalf("registration = %+v, want UID 1 taken from %s (lowest incentive)", reg, miners[1])
	}
	again, err := h.svc.Register(ctx, newcomer)
	if err != nil || again.Created || again.UID != 1 {
		t.Fatalf("registering twice = %+v, %v; want the same UID, not created", again, err)
	}
}

func testCollusion(t *testing.T, url string) {
	ctx := context.Background()
	h := newHub(t, url, consensus.Config{})
	h.miners(t, 3)
	vs := h.validators(t, 100, 100, 100, 100, 100)
	n := h.svc.Current().Epoch
	honest := map[int64]float64{0: 0.66, 1: 0.25, 2: 0.09}
	for _, v := range vs[:4] {
		if _, err := h.svc.PostWeights(ctx, v, n, "", honest); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.svc.PostWeights(ctx, vs[4], n, "", map[int64]float64{2: 1}); err != nil {
		t.Fatal(err)
	}
	h.clk.Set(t0.Add(time.Minute))
	rec, err := h.svc.Close(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	got := rec.Miners[2].Incentive
	if math.Abs(got-honest[2]) > 0.05 {
		t.Fatalf("colluded miner's incentive %.4f, honest validators alone give %.4f: more than 5 points apart", got, honest[2])
	}
	if naive := 0.8*honest[2] + 0.2; got > naive/2 {
		t.Fatalf("incentive %.4f is not far below the unclipped stake-weighted average %.4f", got, naive)
	}
}
