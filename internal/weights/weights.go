// Package weights closes the epochs of model competitions: once per epoch it
// compares every scored submission with every other (win rates with time
// priority, by the competition's win-rate preset: crucible, dippy or
// pretraining), zeroes copies, turns win rates into weights (smoothed with
// the previous epoch's for a preset with an EMA) and records the weight
// vector, exactly once. Epochs are a clock unit, not
// a chain: epoch n covers [n·L, (n+1)·L) in unix time, L defaulting to
// 72 minutes (360 "blocks" of 12 s). It uses the store and the kind
// registry; it must never import the API or the CLI.
package weights

import (
	"context"
	"errors"
	"fmt"
	"time"

	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/incentive"
	"crucible/internal/kind"
	"crucible/internal/store"
)

// Defaults.
const (
	// BlockTime is the length of a "block": the unit of a model's age
	// under a decaying ε (the pretraining preset).
	BlockTime = 12 * time.Second
	// DefaultLength is 360 blocks of 12 s.
	DefaultLength = 72 * time.Minute
	// DefaultEpsilon is the earlier submission's advantage: a later model
	// must beat it by more than 1% on an item to win it.
	DefaultEpsilon = 0.01
	// DefaultTemperature of the softmax from win rates to weights: with
	// 0.01, a win-rate lead of 0.05 is worth e^5 ≈ 148 times the weight.
	DefaultTemperature = incentive.DefaultTemperature
)

// Config configures a Service.
type Config struct {
	DB          *store.DB
	Clock       clock.Clock
	Length      time.Duration
	Epsilon     float64
	Temperature float64
	// Kinds scores evaluations, plans fresh items and evaluates models on
	// them (see fresh.go), and says which kinds close epochs.
	Kinds *kind.Registry
	// ItemConcurrency is how many fresh items of one model run at once
	// (default 8).
	ItemConcurrency int
}

// Service closes epochs.
type Service struct{ cfg Config }

// New returns a Service with defaults filled in.
func New(cfg Config) *Service {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Length <= 0 {
		cfg.Length = DefaultLength
	}
	if cfg.Epsilon == 0 {
		cfg.Epsilon = DefaultEpsilon
	}
	if cfg.Temperature == 0 {
		cfg.Temperature = DefaultTemperature
	}
	if cfg.ItemConcurrency <= 0 {
		cfg.ItemConcurrency = 8
	}
	return &Service{cfg: cfg}
}

// Record is one closed epoch of one competition.
type Record struct {
	Competition string    `json:"competition_id"`
	Epoch       int64     `json:"epoch"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	ClosedAt    time.Time `json:"closed_at"`
	Epsilon     float64   `json:"epsilon"`
	Temperature float64   `json:"temperature"`
	// WinRate is how win rates and weights were computed: the
	// competition's preset with its parameters (absent from records closed
	// before presets, which are crucible's).
	WinRate  *incentive.WinRateConfig `json:"win_rate,omitempty"`
	Names    map[string]string        `json:"names"`
	Scores   map[string]float64       `json:"scores"`
	WinRates map[string]float64       `json:"win_rates"`
	// Copies maps a copy to the earlier submission it copies; copies weigh 0.
	Copies  map[string]string  `json:"copies"`
	Weights map[string]float64 `json:"weights"`
}

// winRate is competition c's win-rate configuration: its preset, with the
// service's epsilon and temperature for the default (crucible) preset.
func (s *Service) winRate(c competition.Competition) (incentive.WinRateConfig, error) {
	wr, err := incentive.Preset(s.cfg.Kinds.WinRate(c))
	if err != nil {
		return wr, fmt.Errorf("competition %s: %w", c.ID, err)
	}
	if wr.Preset == incentive.PresetCrucible {
		wr.Epsilon, wr.Temperature = s.cfg.Epsilon, s.cfg.Temperature
	}
	return wr, wr.Validate()
}

// Of returns the epoch number of t.
func (s *Service) Of(t time.Time) int64 { return clock.Epochs{Length: s.cfg.Length}.Of(t) }

// Bounds returns the start and end of epoch n.
func (s *Service) Bounds(n int64) (time.Time, time.Time) {
	return clock.Epochs{Length: s.cfg.Length}.Bounds(n)
}

// Close computes and records epoch n of a competition from the submissions
// scored by then, or for a fresh-items competition from the evaluations on
// the epoch's own items (see evaluations). It runs once: a closed epoch's record is returned as it
// was. Epochs that have not ended cannot close.
func (s *Service) Close(ctx context.Context, competitionID string, n int64) (Record, error) {
	var rec Record
	if err := s.cfg.DB.EpochRecord(ctx, competitionID, n, &rec); err == nil {
		return rec, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return rec, err
	}
	start, end := s.Bounds(n)
	now := s.cfg.Clock.Now()
	if now.Before(end) {
		return rec, fmt.Errorf("epoch %d ends at %s; it cannot close before", n, end.Format(time.RFC3339))
	}
	c, err := s.cfg.DB.GetCompetition(ctx, competitionID)
	if err != nil {
		return rec, err
	}
	wr, err := s.winRate(c)
	if err != nil {
		return rec, err
	}
	rec = Record{Competition: competitionID, Epoch: n, Start: start, End: end, ClosedAt: now.UTC(), Epsilon: wr.Epsilon,
		Temperature: wr.Temperature, WinRate: &wr, Names: map[string]string{}, Scores: map[string]float64{}, WinRates: map[string]float64{},
		Weights: map[string]float64{}}
	evals, err := s.evaluations(ctx, c, n, end)
	if err != nil {
		return rec, err
	}
	var outs []incentive.Output
	var models []incentive.Model
	for _, ev := range evals {
		_, scores, err := s.cfg.Kinds.Score(c, ev.results)
		if err != nil {
			return rec, err
		}
		responses := make(map[int]string, len(ev.results))
		for _, r := range ev.results {
			responses[r.Index] = r.Response
		}
		sub := ev.sub
		rec.Names[sub.ID], rec.Scores[sub.ID] = sub.Name, ev.score
		outs = append(outs, incentive.Output{ID: sub.ID, Digest: sub.Digest, CommittedAt: sub.CommittedAt, Responses: responses})
		models = append(models, incentive.Model{ID: sub.ID, Committed: sub.CommittedAt.UnixNano(), Score: ev.score, Items: scores})
	}
	rec.Copies = incentive.CopiesBy(outs, incentive.Near)
	var originals []incentive.Model
	for _, m := range models {
		if _, isCopy := rec.Copies[m.ID]; isCopy {
			rec.WinRates[m.ID], rec.Weights[m.ID] = 0, 0
			continue
		}
		originals = append(originals, m)
	}
	res := wr.Compute(originals, incentive.Timeline{Now: end.UnixNano(), BlockTicks: int64(BlockTime)})
	weights := res.Weights
	if wr.EMA > 0 {
		var prev Record
		if err := s.cfg.DB.EpochRecord(ctx, competitionID, n-1, &prev); err == nil {
			weights = wr.Smooth(prev.Weights, weights)
		} else if !errors.Is(err, store.ErrNotFound) {
			return rec, err
		}
	}
	for id, w := range weights {
		rec.WinRates[id], rec.Weights[id] = res.WinRates[id], w
	}
	if _, err := s.cfg.DB.InsertEpochRecord(ctx, competitionID, n, now, rec); err != nil {
		return rec, err
	}
	// Read back: if another process closed the epoch first, its record stands.
	var stored Record
	return stored, s.cfg.DB.EpochRecord(ctx, competitionID, n, &stored)
}

// evaluation is one model's results on the items an epoch compares.
type evaluation struct {
	sub     competition.Submission
	score   float64
	results []eval.Result
}

// evaluations returns what epoch n compares: for a fresh-items competition
// every evaluation on the epoch's own items (a re-evaluation is the
// submission it re-evaluates, so the copy rule sees the same model, not a
// copy); otherwise every submission scored on the competition's items
// before the epoch ended.
func (s *Service) evaluations(ctx context.Context, c competition.Competition, n int64, end time.Time) ([]evaluation, error) {
	subs, err := s.cfg.DB.ListSubmissions(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	var out []evaluation
	if s.FreshItems(c) {
		byID := map[string]competition.Submission{}
		for _, sub := range subs {
			byID[sub.ID] = sub
		}
		fresh, err := s.cfg.DB.FreshEvals(ctx, c.ID, n)
		if err != nil {
			return nil, err
		}
		for _, ev := range fresh {
			out = append(out, evaluation{sub: byID[ev.SubmissionID], score: ev.Score, results: ev.Results})
		}
		return out, nil
	}
	for _, sub := range subs {
		if sub.State != competition.StateScored || sub.Card == nil || !sub.UpdatedAt.Before(end) {
			continue
		}
		results, err := s.cfg.DB.Results(ctx, sub.ID, 0, sub.ItemsTotal+1)
		if err != nil {
			return nil, err
		}
		out = append(out, evaluation{sub: sub, score: sub.Card.Score, results: results})
	}
	return out, nil
}

// CloseDue closes the epoch that ended last for every roleplay competition
// (the periodic task).
func (s *Service) CloseDue(ctx context.Context) error {
	list, err := s.cfg.DB.ListCompetitions(ctx)
	if err != nil {
		return err
	}
	last := s.Of(s.cfg.Clock.Now()) - 1
	var errs []error
	for _, c := range list {
		if !s.cfg.Kinds.Epochs(c.Kind) || s.Of(c.CreatedAt) > last {
			continue
		}
		if _, err := s.Close(ctx, c.ID, last); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Get returns a closed epoch's record; n < 0 means the latest.
func (s *Service) Get(ctx context.Context, competitionID string, n int64) (Record, error) {
	if n < 0 {
		latest, err := s.cfg.DB.LatestEpoch(ctx, competitionID)
		if err != nil {
			return Record{}, err
		}
		if latest < 0 {
			return Record{}, fmt.Errorf("no epoch of %s has closed yet: %w", competitionID, store.ErrNotFound)
		}
		n = latest
	}
	var rec Record
	return rec, s.cfg.DB.EpochRecord(ctx, competitionID, n, &rec)
}
