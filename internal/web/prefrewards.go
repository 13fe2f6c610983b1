package web

import (
	"context"
	"encoding/json"
	"errors"

	"crucible/internal/competition"
	"crucible/internal/labeling"
	"crucible/internal/store"
)

// PreferenceRewardStore is what a preference competition's page reads
// besides Store: its reward and, once the epoch closed, the payouts.
// *store.DB implements it.
type PreferenceRewardStore interface {
	PreferenceReward(ctx context.Context, competitionID string) (store.PreferenceReward, error)
}

// prefReward is a preference competition's reward as its page shows it.
type prefReward struct {
	Asset  string
	Amount int64
	// Close is the epoch's close record; nil while the epoch is open.
	Close *labeling.EpochClose
}

// preferenceReward returns the reward of a preference competition, nil for
// other kinds, competitions without one or a store that keeps none.
func (s *Server) preferenceReward(ctx context.Context, c competition.Competition) (*prefReward, error) {
	ps, ok := s.cfg.Store.(PreferenceRewardStore)
	if !ok || !s.cfg.Kinds.Labeled(c.Kind) {
		return nil, nil
	}
	r, err := ps.PreferenceReward(ctx, c.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := &prefReward{Asset: r.Asset, Amount: r.Amount}
	if r.ClosedAt != nil {
		var rec labeling.EpochClose
		if err := json.Unmarshal(r.Record, &rec); err != nil {
			return nil, err
		}
		out.Close = &rec
	}
	return out, nil
}
