package task

import (
	"context"
	"encoding/json"
	"fmt"

	"crucible/internal/eval"
	"crucible/internal/eval/runner"
)

// Seed draws few-shot examples and bootstrap resamples of a local run:
// lm-eval's default seed, fixed so a run is reproducible.
const Seed = 1234

// Report is the outcome of a run: Score is the first metric's value.
type Report struct {
	Score  float64 `json:"score"`
	CILow  float64 `json:"ci_low"`
	CIHigh float64 `json:"ci_high"`
	Items  int     `json:"items"`
	// Missing counts the items a predictions file has no response for
	// (scored 0); a live run has none.
	Missing int                     `json:"missing,omitempty"`
	Metrics map[string]MetricReport `json:"metrics"`
	Results []eval.Result           `json:"-"`
}

// MetricReport is one metric's mean with its bootstrap interval.
type MetricReport struct {
	Value  float64 `json:"value"`
	CILow  float64 `json:"ci_low"`
	CIHigh float64 `json:"ci_high"`
}

// Run evaluates every item of ev (an Evaluator, or a
// PredictionsEvaluator) with concurrency requests in flight
// (runner.Run) and aggregates each metric (Config.Aggregate). progress, if
// set, is called after each item.
func (c *Config) Run(ctx context.Context, ev eval.Evaluator, concurrency int, progress func(done, total int)) (*Report, error) {
	results := make([]eval.Result, ev.Len())
	err := runner.Run(ctx, ev, runner.Config{Concurrency: concurrency, Progress: progress, Sink: func(r eval.Result) error {
		results[r.Index] = r // Sink calls are serialised
		return nil
	}})
	if err != nil {
		return nil, err
	}
	scores := make([]map[string]float64, len(results))
	for k, r := range results {
		var d Detail
		if err := json.Unmarshal(r.Detail, &d); err != nil {
			return nil, fmt.Errorf("item %d: %w", k, err)
		}
		scores[k] = d.Metrics
	}
	sums, err := c.Aggregate(scores, Seed)
	if err != nil {
		return nil, err
	}
	rep := &Report{Items: len(results), Metrics: map[string]MetricReport{}, Results: results}
	for k, s := range sums {
		rep.Metrics[s.Name] = MetricReport{Value: s.Value, CILow: s.CILow, CIHigh: s.CIHigh}
		if k == 0 {
			rep.Score, rep.CILow, rep.CIHigh = s.Value, s.CILow, s.CIHigh
		}
	}
	return rep, nil
}
