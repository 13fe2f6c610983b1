package web

import (
	"context"

	"crucible/internal/competition"
	"crucible/internal/incentive"
)

// The pairwise win-rate matrix of a competition weighted in epochs: how
// often each leading model beats each other one item by item, as the
// epoch weights compare them (incentive.PairwiseWinRates).

// maxMatrixModels bounds the models a matrix compares (the leaders), and
// maxMatrixItems the results read per model.
const (
	maxMatrixModels = 8
	maxMatrixItems  = 2000
)

// winMatrix is the matrix as the page shows it: Rates[a][b] is the share
// of items Names[a] wins against Names[b].
type winMatrix struct {
	Names   []string
	IDs     []string
	Rates   [][]float64
	Epsilon float64
}

// winRates builds c's matrix over its leading rows from the visible
// results, scored by c's kind; nil for a kind without epochs or fewer than
// two models.
func (s *Server) winRates(ctx context.Context, c competition.Competition, rows []competition.Row) (*winMatrix, error) {
	if !s.cfg.Kinds.Epochs(c.Kind) || len(rows) < 2 {
		return nil, nil
	}
	preset, err := incentive.Preset(s.cfg.Kinds.WinRate(c))
	if err != nil {
		return nil, nil // an unknown preset has no matrix to show
	}
	m := &winMatrix{Epsilon: preset.Epsilon}
	var cs []incentive.Contender
	for _, r := range rows[:min(len(rows), maxMatrixModels)] {
		results, err := s.cfg.Store.Results(ctx, r.SubmissionID, 0, maxMatrixItems)
		if err != nil {
			return nil, err
		}
		_, scores, err := s.cfg.Kinds.Score(c, results)
		if err != nil { // the page stands without its matrix
			s.cfg.Logger.Warn("web: win-rate matrix left out", "competition", c.ID, "submission", r.SubmissionID, "err", err)
			return nil, nil
		}
		m.Names, m.IDs = append(m.Names, r.Name), append(m.IDs, r.SubmissionID)
		cs = append(cs, incentive.Contender{ID: r.SubmissionID, CommittedAt: r.CommittedAt, Scores: scores})
	}
	m.Rates = incentive.PairwiseWinRates(cs, preset.Epsilon)
	return m, nil
}
