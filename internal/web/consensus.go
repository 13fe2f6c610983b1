package web

// This file holds the validator consensus part of /epochs: the latest
// closed consensus (Yuma) epoch, or the one chosen with ?consensus=N, with
// each UID's consensus, incentive, trust and emission and each validator's
// stake, trust, dividends and emission.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"

	"crucible/internal/consensus"
	"crucible/internal/store"
)

// ValidatorStore is what the consensus section of /epochs reads. *store.DB
// implements it; when Config.Store does not, the section says that there
// are no validator epochs.
type ValidatorStore interface {
	// LatestConsensusEpoch returns the last closed epoch before `before`, or -1.
	LatestConsensusEpoch(ctx context.Context, before int64) (int64, error)
	// ConsensusEpoch decodes the record of a closed epoch into out.
	ConsensusEpoch(ctx context.Context, epoch int64, out any) error
}

// consensusView is one closed consensus epoch.
type consensusView struct {
	consensus.Record
	// Miners are by UID; Chart draws their incentives.
	Chart weightChart
	// MinerEmission and ValidatorEmission split Record.Emission.
	MinerEmission, ValidatorEmission int64
	// Recent are the closed consensus epochs offered in the select, newest first.
	Recent []epochOption
}

// consensus reads the consensus epoch asked for with ?consensus=N, else the
// latest; it returns nil when none has closed (or the store keeps none).
func (s *Server) consensus(ctx context.Context, r *http.Request) (*consensusView, error) {
	vs, ok := s.cfg.Store.(ValidatorStore)
	if !ok {
		return nil, nil
	}
	latest, err := vs.LatestConsensusEpoch(ctx, math.MaxInt64)
	if err != nil || latest < 0 {
		return nil, err
	}
	n := latest
	if v := r.URL.Query().Get("consensus"); v != "" {
		n, err = strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, &pageError{http.StatusBadRequest, fmt.Sprintf("consensus must be a whole epoch number, got %q.", v)}
		}
	}
	view := &consensusView{}
	if err := vs.ConsensusEpoch(ctx, n, &view.Record); err != nil {
		return nil, err
	}
	rows := make([]epochRow, len(view.Miners))
	best := -1
	for i, m := range view.Miners {
		rows[i] = epochRow{Name: fmt.Sprintf("UID %d", m.UID), Weight: m.Incentive}
		if m.Incentive > 0 && (best < 0 || m.Incentive > view.Miners[best].Incentive) {
			best = i
		}
		view.MinerEmission += m.Emission
	}
	if best >= 0 {
		rows[best].Top = true
	}
	view.Chart = weightBars(rows)
	for _, v := range view.Validators {
		view.ValidatorEmission += v.Emission
	}
	sort.SliceStable(view.Validators, func(i, j int) bool { return view.Validators[i].Stake > view.Validators[j].Stake })
	// The select offers the closed epochs among the RecentEpochs up to the latest.
	for e := latest; e >= 0 && e > latest-RecentEpochs; e-- {
		var rec consensus.Record
		err := vs.ConsensusEpoch(ctx, e, &rec)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		view.Recent = append(view.Recent, epochOption{N: e, Start: rec.Start, End: rec.End, Selected: e == n})
	}
	if n <= latest-RecentEpochs { // an older epoch asked for by number
		view.Recent = append(view.Recent, epochOption{N: n, Start: view.Start, End: view.End, Selected: true})
	}
	return view, nil
}
