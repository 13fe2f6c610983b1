package node

import (
	"context"
	"fmt"

	"crucible/internal/competition"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/preference"
)

// preferenceWeights scores a preference competition from its labels: the
// closed tasks and their ratings, fetched from the hub (a route for
// validators with stake) and scored here with preference.Score under the
// competition's configuration. A miner's weight is its reward (its share of
// the trusted raters' scores); untrusted raters get 0. The hub's own scores
// are never read.
func (n *Node) preferenceWeights(ctx context.Context, c competition.Competition, uidOf map[string]int64) (map[int64]float64, error) {
	cfg, err := kinds.PreferenceSettings(c)
	if err != nil {
		return nil, err
	}
	labels, err := n.cfg.Hub.PreferenceLabels(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("fetch the labels of competition %s: %w", c.ID, err)
	}
	ep, err := preference.Score(cfg.Scoring, labels.Tasks, labels.Ratings)
	if err != nil {
		return nil, fmt.Errorf("score competition %s from its labels: %w", c.ID, err)
	}
	out := map[int64]float64{}
	var sum float64
	for _, m := range ep.Miners {
		if uid, ok := uidOf[m.Miner]; ok {
			out[uid] = m.Reward
			sum += m.Reward
		}
	}
	if sum == 0 {
		return nil, fmt.Errorf("no registered miner earned a reward from the %d closed tasks of competition %s yet", len(labels.Tasks), c.ID)
	}
	return out, nil
}
