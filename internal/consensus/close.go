package consensus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"crucible/internal/incentive"
	"crucible/internal/ledger"
	"crucible/internal/store"
)

// Record is one closed consensus epoch.
type Record struct {
	Epoch    int64     `json:"epoch"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ClosedAt time.Time `json:"closed_at"`
	// Variant, Kappa, BondsAlpha, BondsPenalty, the liquid-alpha bounds
	// (zero when off) and MinerShare are the Yuma parameters the epoch ran
	// with (an old record without a variant ran Yuma 1).
	Variant      incentive.Variant `json:"variant,omitempty"`
	Kappa        float64           `json:"kappa"`
	BondsAlpha   float64           `json:"bonds_alpha"`
	BondsPenalty float64           `json:"bonds_penalty"`
	AlphaLow     float64           `json:"alpha_low,omitempty"`
	AlphaHigh    float64           `json:"alpha_high,omitempty"`
	MinerShare   float64           `json:"miner_share"`
	// Emission is what the epoch emitted, in base units of Asset.
	Emission int64  `json:"emission"`
	Asset    string `json:"asset"`
	// Transfer is the idempotency key of the emission's ledger transfer
	// ("" when nothing was emitted).
	Transfer   string            `json:"transfer,omitempty"`
	Miners     []MinerResult     `json:"miners"`
	Validators []ValidatorResult `json:"validators"`
}

// MinerResult is one UID's outcome in an epoch.
type MinerResult struct {
	UID int64  `json:"uid"`
	Key string `json:"key_id"`
	// Consensus is the stake-weighted median of the normalised weights (κ).
	Consensus float64 `json:"consensus"`
	// Incentive is the miner's share of the clipped, stake-weighted weight.
	Incentive float64 `json:"incentive"`
	// Trust is the fraction of the miner's weight that survived clipping.
	Trust    float64 `json:"trust"`
	Emission int64   `json:"emission"`
}

// ValidatorResult is one validator's part in an epoch.
type ValidatorResult struct {
	Key   string `json:"key_id"`
	Stake int64  `json:"stake"`
	// Vector is the id of the weight vector used (the latest it posted
	// inside the epoch) and Weights its content.
	Vector   string            `json:"vector_id"`
	PostedAt time.Time         `json:"posted_at"`
	Weights  map[int64]float64 `json:"weights"`
	// Trust is the validator trust Σ_j min(W_ij, C_j).
	Trust     float64 `json:"trust"`
	Dividends float64 `json:"dividends"`
	Emission  int64   `json:"emission"`
	// Bonds are the validator's bonds per UID after this epoch (the next
	// epoch's previous bonds).
	Bonds map[int64]float64 `json:"bonds"`
}

// EmissionKey is the idempotency key of epoch n's emission transfer.
func EmissionKey(n int64) string { return fmt.Sprintf("consensus-epoch-%d-emission", n) }

// Close closes epoch n once: Yuma consensus over the latest vector each
// validator with stake posted inside the epoch, with the bonds of the last
// closed epoch before it, every registered UID a column. It records the
// result, sets each miner's pruning score to its incentive and posts the
// emission (external → miner:<key>, validator:<key>) in one transaction. A
// closed epoch's record is returned as it was; an epoch that has not ended,
// or in which no staked validator posted, cannot close (ErrConflict).
func (s *Service) Close(ctx context.Context, n int64) (Record, error) {
	var rec Record
	if err := s.cfg.DB.ConsensusEpoch(ctx, n, &rec); err == nil {
		return rec, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return rec, err
	}
	start, end := s.Bounds(n)
	now := s.cfg.Clock.Now()
	if now.Before(end) {
		return rec, fmt.Errorf("%w: epoch %d ends at %s; it cannot close before", ErrConflict, n, end.Format(time.RFC3339))
	}
	vectors, err := s.cfg.DB.WeightVectors(ctx, n)
	if err != nil {
		return rec, err
	}
	stakes, err := s.cfg.DB.ValidatorStakes(ctx)
	if err != nil {
		return rec, err
	}
	stakeOf := map[string]int64{}
	for _, st := range stakes {
		stakeOf[st.Key] = st.Stake
	}
	latest := map[string]store.WeightVector{}
	for _, v := range vectors { // oldest first: the last one wins
		if stakeOf[v.Validator] > 0 && v.PostedAt.Before(end) && !v.PostedAt.Before(start) {
			latest[v.Validator] = v
		}
	}
	if len(latest) == 0 {
		return rec, fmt.Errorf("%w: no validator with stake posted weights in epoch %d; there is nothing to close", ErrConflict, n)
	}
	miners, err := s.cfg.DB.MinerUIDs(ctx)
	if err != nil {
		return rec, err
	}
	if len(miners) == 0 {
		return rec, fmt.Errorf("%w: no miner is registered", ErrConflict)
	}
	keys := make([]string, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	prev, err := s.previousBonds(ctx, n, keys, miners)
	if err != nil {
		return rec, err
	}
	in := s.cfg.Yuma
	in.Weights, in.Stakes, in.LastUpdate, in.SelfMiner = nil, nil, nil, nil
	in.Emission, in.PrevBonds = float64(s.cfg.Emission), prev
	for _, k := range keys {
		v := latest[k]
		row := make([]float64, len(miners))
		self := -1
		for j, m := range miners {
			// A weight counts only for the miner that held the UID when it was given.
			if !m.RegisteredAt.After(v.PostedAt) {
				row[j] = v.Weights[m.UID]
			}
			if m.Key == k {
				self = j // a validator that is also a miner: its self-weight is masked, as on chain
			}
		}
		in.Weights = append(in.Weights, row)
		in.Stakes = append(in.Stakes, float64(stakeOf[k]))
		in.SelfMiner = append(in.SelfMiner, self)
	}
	out, err := incentive.Yuma(in)
	if err != nil {
		return rec, err
	}

	quotas := append(append([]float64{}, out.MinerEmission...), out.ValidatorEmission...)
	units := splitUnits(s.cfg.Emission, quotas)
	rec = Record{Epoch: n, Start: start, End: end, ClosedAt: now.UTC(), Emission: s.cfg.Emission, Asset: s.cfg.Asset}
	rec.setParams(in)
	transfer := &ledger.Transfer{Key: EmissionKey(n), Kind: ledger.KindEmission, Asset: s.cfg.Asset,
		Memo: fmt.Sprintf("consensus epoch %d", n), Legs: []ledger.Entry{{Account: ledger.External, Amount: -s.cfg.Emission}}}
	pruning := make([]store.MinerUID, len(miners))
	for j, m := range miners {
		rec.Miners = append(rec.Miners, MinerResult{UID: m.UID, Key: m.Key, Consensus: out.Consensus[j], Incentive: out.Incentive[j],
			Trust: out.Trust[j], Emission: units[j]})
		if units[j] > 0 {
			transfer.Legs = append(transfer.Legs, ledger.Entry{Account: "miner:" + m.Key, Amount: units[j]})
		}
		m.PruningScore = out.Incentive[j]
		pruning[j] = m
	}
	for i, k := range keys {
		v := latest[k]
		bonds := map[int64]float64{}
		for j, m := range miners {
			if b := out.Bonds[i][j]; b > 0 {
				bonds[m.UID] = b
			}
		}
		e := units[len(miners)+i]
		rec.Validators = append(rec.Validators, ValidatorResult{Key: k, Stake: stakeOf[k], Vector: v.ID, PostedAt: v.PostedAt,
			Weights: v.Weights, Trust: out.ValidatorTrust[i], Dividends: out.Dividends[i], Emission: e, Bonds: bonds})
		if e > 0 {
			transfer.Legs = append(transfer.Legs, ledger.Entry{Account: "validator:" + k, Amount: e})
		}
	}
	if s.cfg.Emission > 0 && len(transfer.Legs) > 1 {
		rec.Transfer = transfer.Key
	} else {
		transfer = nil
	}
	if _, err := s.cfg.DB.CloseConsensusEpoch(ctx, n, now, rec, pruning, transfer); err != nil {
		return rec, err
	}
	// Read back: if another process closed the epoch first, its record stands.
	var stored Record
	return stored, s.cfg.DB.ConsensusEpoch(ctx, n, &stored)
}

// previousBonds returns the bonds of the last closed epoch before n,
// aligned to these validators and miners; a UID now held by another key
// starts from zero bonds.
func (s *Service) previousBonds(ctx context.Context, n int64, validators []string, miners []store.MinerUID) ([][]float64, error) {
	last, err := s.cfg.DB.LatestConsensusEpoch(ctx, n)
	if err != nil || last < 0 {
		return nil, err
	}
	var prev Record
	if err := s.cfg.DB.ConsensusEpoch(ctx, last, &prev); err != nil {
		return nil, err
	}
	keyAt := map[int64]string{}
	for _, m := range prev.Miners {
		keyAt[m.UID] = m.Key
	}
	bondsOf := map[string]map[int64]float64{}
	for _, v := range prev.Validators {
		bondsOf[v.Key] = v.Bonds
	}
	out := make([][]float64, len(validators))
	for i, k := range validators {
		out[i] = make([]float64, len(miners))
		for j, m := range miners {
			if keyAt[m.UID] == m.Key {
				out[i][j] = bondsOf[k][m.UID]
			}
		}
	}
	return out, nil
}

// setParams records the Yuma parameters in with the defaults filled in.
func (rec *Record) setParams(in incentive.YumaInput) {
	rec.Variant, _ = incentive.ParseVariant(string(in.Variant)) // Yuma has accepted it
	rec.Kappa = orDefault(in.Kappa, incentive.DefaultKappa)
	rec.BondsAlpha = orDefault(in.BondsAlpha, incentive.DefaultBondsAlpha)
	rec.BondsPenalty = incentive.DefaultBondsPenalty
	if in.BondsPenalty != nil {
		rec.BondsPenalty = *in.BondsPenalty
	}
	if in.LiquidAlpha {
		rec.AlphaLow = orDefault(in.AlphaLow, incentive.DefaultAlphaLow)
		rec.AlphaHigh = orDefault(in.AlphaHigh, incentive.DefaultAlphaHigh)
	}
	rec.MinerShare = orDefault(in.MinerShare, incentive.DefaultMinerShare)
}

func orDefault(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// splitUnits turns float quotas summing to about total into integer units
// summing to exactly total (when any quota is positive): floors first, the
// rest one unit each to the largest remainders, ties to the lower index.
func splitUnits(total int64, quotas []float64) []int64 {
	units := make([]int64, len(quotas))
	var qsum float64
	for _, q := range quotas {
		if q > 0 && !math.IsInf(q, 0) {
			qsum += q
		}
	}
	if total <= 0 || qsum == 0 {
		return units
	}
	type rem struct {
		i int
		r float64
	}
	rems := make([]rem, 0, len(quotas))
	var assigned int64
	for i, q := range quotas {
		if !(q > 0) || math.IsInf(q, 0) {
			continue
		}
		exact := q / qsum * float64(total)
		units[i] = int64(math.Floor(exact))
		assigned += units[i]
		rems = append(rems, rem{i, exact - math.Floor(exact)})
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for k := 0; assigned < total && len(rems) > 0; k = (k + 1) % len(rems) {
		units[rems[k].i]++
		assigned++
	}
	return units
}
