package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"crucible/internal/eval"
	"crucible/internal/jsonl"
)

// Bounds on a predictions file.
const (
	// MaxPredictionsBytes bounds a predictions file read locally; the hub
	// bounds a submitted one by its request body.
	MaxPredictionsBytes = 64 << 20
	// MaxPredictionLineBytes bounds one {doc_id, response} line.
	MaxPredictionLineBytes = 1 << 20
)

// Predictions are a generate_until task's raw responses read from a file,
// by doc_id: the item's index in the evaluation split (its row, from 0, as
// `crucible task render --index` counts). An item without one scores 0.
type Predictions struct {
	Responses map[int]string
}

// Missing counts the first n items without a response.
func (p *Predictions) Missing(n int) int {
	missing := 0
	for i := range n {
		if _, ok := p.Responses[i]; !ok {
			missing++
		}
	}
	return missing
}

// prediction is one line of a predictions file.
type prediction struct {
	DocID    *int    `json:"doc_id"`
	Response *string `json:"response"`
}

// CanPredict reports why the task cannot be scored from a predictions file:
// only generate_until tasks with one response per doc can. A
// multiple_choice or loglikelihood task is scored from per-choice
// log-likelihoods that a file of responses does not hold.
func (c *Config) CanPredict() error {
	if c.OutputType != GenerateUntil {
		return fmt.Errorf("task %s is %s: a predictions file scores generate_until tasks only (a %s item is scored from the model's log-likelihoods, not a response): evaluate it live with --base-url and --model",
			c.Task, c.OutputType, c.OutputType)
	}
	if c.Repeats != 1 {
		return fmt.Errorf("task %s has repeats %d: a predictions file holds one response per doc", c.Task, c.Repeats)
	}
	return nil
}

// ReadPredictionsFile reads a predictions file for a task of n items (see
// ReadPredictions), refusing a file over MaxPredictionsBytes before reading it.
func (c *Config) ReadPredictionsFile(path string, n int) (*Predictions, error) {
	f, _, err := openBounded(path, MaxPredictionsBytes)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return c.ReadPredictions(path, io.LimitReader(f, MaxPredictionsBytes), n)
}

// ReadPredictions reads JSONL lines {"doc_id": N, "response": "..."} for
// the task's n items (doc_id 0..n-1). Both fields are required and no other
// is allowed; a doc_id outside the items, a doc_id given twice or a line
// over MaxPredictionLineBytes is an error naming name and the line.
func (c *Config) ReadPredictions(name string, r io.Reader, n int) (*Predictions, error) {
	if err := c.CanPredict(); err != nil {
		return nil, err
	}
	p := &Predictions{Responses: map[int]string{}}
	lines := map[int]int{}
	err := jsonl.Each(r, jsonl.Options{MaxLineBytes: MaxPredictionLineBytes, MaxValues: n + 1, DisallowUnknownFields: true},
		func(line int, v prediction) error {
			switch {
			case v.DocID == nil:
				return errors.New(`doc_id is required: the item's index in the evaluation split, from 0`)
			case v.Response == nil:
				return errors.New(`response is required: the model's raw text for the doc`)
			case *v.DocID < 0 || *v.DocID >= n:
				return fmt.Errorf("doc_id %d is not an item: the task has %d (doc_id 0 to %d)", *v.DocID, n, n-1)
			}
			if first, dup := lines[*v.DocID]; dup {
				return fmt.Errorf("doc_id %d again (first on line %d)", *v.DocID, first)
			}
			lines[*v.DocID] = line
			p.Responses[*v.DocID] = *v.Response
			return nil
		})
	if err != nil {
		var le *jsonl.Error
		if errors.As(err, &le) {
			return nil, fmt.Errorf("%s:%d: %w", name, le.Line, le.Err)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// PredictionsEvaluator scores a task's items from a predictions file
// (eval.Evaluator) with no model: each response is cut and filtered as a
// live generation is (Config.ScoreGen), and an item without one scores 0
// on every metric.
type PredictionsEvaluator struct {
	cfg   *Config
	items []Item
	preds *Predictions
}

// NewPredictionsEvaluator scores items (from cfg.Items) from preds.
func NewPredictionsEvaluator(cfg *Config, items []Item, preds *Predictions) *PredictionsEvaluator {
	return &PredictionsEvaluator{cfg: cfg, items: items, preds: preds}
}

// Len is the number of items.
func (e *PredictionsEvaluator) Len() int { return len(e.items) }

// Evaluate scores item index from its response.
func (e *PredictionsEvaluator) Evaluate(_ context.Context, index int) (eval.Result, error) {
	if index < 0 || index >= len(e.items) {
		return eval.Result{}, fmt.Errorf("task: index %d out of range [0,%d)", index, len(e.items))
	}
	it := e.items[index]
	now := time.Now()
	res := eval.Result{Index: index, Prompt: it.Prompt, Started: now, Ended: now}
	d := Detail{Target: it.Target, Metrics: map[string]float64{}}
	if resp, ok := e.preds.Responses[index]; ok {
		e.cfg.scoreResponses(it, []string{resp}, &res, &d)
	} else {
		for _, n := range e.cfg.MetricNames() {
			d.Metrics[n] = 0
		}
	}
	return finish(e.cfg, res, d)
}

// scoreResponses scores a generate_until item's responses into res and d.
func (c *Config) scoreResponses(it Item, resps []string, res *eval.Result, d *Detail) {
	d.Metrics = c.ScoreGen(it, resps)
	d.Answer = c.Answer(it, resps)
	res.Response = resps[0]
}

// finish completes a scored item's result from its detail: Score is the
// first metric.
func finish(c *Config, res eval.Result, d Detail) (eval.Result, error) {
	res.LatencyMS = res.Ended.Sub(res.Started).Milliseconds()
	res.Score = d.Metrics[c.MetricNames()[0]]
	res.Correct = res.Score == 1
	res.Prediction = d.Answer
	var err error
	if res.Detail, err = json.Marshal(d); err != nil {
		return eval.Result{}, err
	}
	return res, nil
}
