package web

import (
	"context"
	"encoding/json"
	"errors"
	"sort"

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

// prefStandings is a preference competition's contributors and tasks as
// scored over the tasks whose deadline has passed (open tasks stay sealed:
// their consensus would hand labelers the answer).
type prefStandings struct {
	Closed, Open int
	// ICC is the mean ICC(2,1) over the closed tasks that have one.
	ICC          *float64
	Contributors []prefContributor
}

// prefContributor is one labeler's standing.
type prefContributor struct {
	Miner   string
	Tasks   int
	Kappa   float64
	Trusted bool
	// Spearman is the mean rank correlation with the leave-one-out
	// consensus over the contributor's tasks (nil: no task had another rater).
	Spearman     *float64
	Score, Share float64
}

// preferenceStandings scores c's closed tasks; nil for a kind without
// labelers or a server without the labeling service.
func (s *Server) preferenceStandings(ctx context.Context, c competition.Competition) (*prefStandings, error) {
	if s.cfg.Labeling == nil || !s.cfg.Kinds.Labeled(c.Kind) {
		return nil, nil
	}
	rep, _, err := s.cfg.Labeling.Score(ctx, c.ID, false)
	if err != nil {
		return nil, err
	}
	out := &prefStandings{Closed: rep.Closed, Open: rep.Open}
	rho := map[string][]float64{}
	var iccs []float64
	for _, t := range rep.Epoch.Tasks {
		if t.ICC2 != nil {
			iccs = append(iccs, *t.ICC2)
		}
		for _, m := range t.Miners {
			if m.Spearman != nil {
				rho[m.Miner] = append(rho[m.Miner], *m.Spearman)
			}
		}
	}
	out.ICC = mean(iccs)
	for _, m := range rep.Epoch.Miners {
		out.Contributors = append(out.Contributors, prefContributor{Miner: m.Miner, Tasks: m.Tasks, Kappa: m.Kappa,
			Trusted: m.Trusted, Spearman: mean(rho[m.Miner]), Score: m.Score, Share: m.Reward})
	}
	sort.SliceStable(out.Contributors, func(i, j int) bool { return out.Contributors[i].Score > out.Contributors[j].Score })
	return out, nil
}

// mean is the mean of vs, nil when there is none.
func mean(vs []float64) *float64 {
	if len(vs) == 0 {
		return nil
	}
	sum := 0.0
	for _, v := range vs {
		sum += v
	}
	m := sum / float64(len(vs))
	return &m
}
