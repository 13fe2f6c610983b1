package task

import (
	"encoding/json"
	"fmt"

	"crucible/internal/eval"
)

// Seed draws few-shot examples and bootstrap resamples of a run:
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

// Summarize aggregates each metric (Config.Aggregate) over the results of
// a run of every item (indexed by item; runner.Run fills them), with the
// results kept in the report. Running lives with the callers, so the
// package that scores tasks runs no evaluations itself and the kinds can
// share its scoring.
func (c *Config) Summarize(results []eval.Result) (*Report, error) {
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
