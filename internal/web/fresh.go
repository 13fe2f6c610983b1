package web

import (
	"context"
	"time"

	"crucible/internal/competition"
	"crucible/internal/seal"
)

// FreshStore is what a fresh-items roleplay competition's page reads
// besides Store: epoch commitments and reveals and the contamination
// check, already sealed (seal.Public implements it). When Config.Store
// does not implement it, the page shows neither.
type FreshStore interface {
	RoleplayEpochs(ctx context.Context, competitionID string, now time.Time) ([]seal.EpochView, error)
	Contamination(ctx context.Context, c competition.Competition, now time.Time) ([]seal.Contamination, error)
}

// freshSection is the fresh-items part of a roleplay competition's page.
type freshSection struct {
	Epochs        []seal.EpochView
	Contamination []seal.Contamination
	Threshold     float64
}

// maxShownEpochs bounds the epochs listed on a competition's page.
const maxShownEpochs = 12

// fresh returns the fresh-items section of c's page, or nil when c has none.
func (s *Server) fresh(ctx context.Context, c competition.Competition) (*freshSection, error) {
	fs, ok := s.cfg.Store.(FreshStore)
	if !ok || !s.cfg.Kinds.Epochs(c.Kind) {
		return nil, nil
	}
	now := s.cfg.Clock.Now()
	epochs, err := fs.RoleplayEpochs(ctx, c.ID, now)
	if err != nil || len(epochs) == 0 {
		return nil, err
	}
	rows, err := fs.Contamination(ctx, c, now)
	if err != nil {
		return nil, err
	}
	sec := &freshSection{Epochs: epochs[:min(len(epochs), maxShownEpochs)], Contamination: rows}
	if len(rows) > 0 {
		sec.Threshold = rows[0].Threshold
	}
	return sec, nil
}
