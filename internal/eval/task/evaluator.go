package task

import (
	"context"
	"fmt"
	"time"

	"crucible/internal/eval"
	"crucible/internal/inference"
)

// Evaluator runs a task's items against a model server over
// /v1/completions and scores them as lm-eval would (eval.Evaluator).
type Evaluator struct {
	cfg    *Config
	items  []Item
	client *inference.Client
	model  string
}

// NewEvaluator evaluates items (from cfg.Items) with model on client.
func NewEvaluator(cfg *Config, items []Item, client *inference.Client, model string) *Evaluator {
	return &Evaluator{cfg: cfg, items: items, client: client, model: model}
}

// Len is the number of items.
func (e *Evaluator) Len() int { return len(e.items) }

// Detail is eval.Result.Detail: every metric of the item, the filtered
// answer of the first filter (generate_until) or the chosen choice
// (multiple_choice), and the log-likelihoods behind it.
type Detail struct {
	Metrics map[string]float64 `json:"metrics"`
	Answer  string             `json:"answer"`
	Target  string             `json:"target"`
	LL      []float64          `json:"loglik,omitempty"`
}

// Evaluate sends item index's requests and scores the answers; Score is the
// first metric (Config.MetricNames). A model error is an error, never a
// wrong answer.
func (e *Evaluator) Evaluate(ctx context.Context, index int) (eval.Result, error) {
	if index < 0 || index >= len(e.items) {
		return eval.Result{}, fmt.Errorf("task: index %d out of range [0,%d)", index, len(e.items))
	}
	it := e.items[index]
	res := eval.Result{Index: index, Prompt: it.Prompt, Started: time.Now()}
	d := Detail{Target: it.Target}
	var err error
	if e.cfg.OutputType == GenerateUntil {
		err = e.generate(ctx, it, &res, &d)
	} else {
		err = e.loglik(ctx, it, &res, &d)
	}
	if err != nil {
		return eval.Result{}, fmt.Errorf("task %s: %s: %w", e.cfg.Task, it.Pos, err)
	}
	res.Ended = time.Now()
	return finish(e.cfg, res, d)
}

func (e *Evaluator) loglik(ctx context.Context, it Item, res *eval.Result, d *Detail) error {
	lls := make([]LL, len(it.Requests))
	for k, r := range it.Requests {
		resp, err := e.client.Completion(ctx, r.LLRequest(e.model))
		if err != nil {
			return fmt.Errorf("request %d: %w", k, err)
		}
		if lls[k], err = ContinuationLL(r.Prompt, *resp); err != nil {
			return fmt.Errorf("request %d: %w", k, err)
		}
		d.LL = append(d.LL, lls[k].Sum)
		res.PromptTokens += resp.Usage.PromptTokens
		res.CompletionTokens += resp.Usage.CompletionTokens
	}
	var err error
	if d.Metrics, err = e.cfg.ScoreLL(it, lls); err != nil {
		return err
	}
	if it.Choices != nil {
		d.Answer = it.Choices[argmax(lls, nil)]
	} else {
		d.Answer = fmt.Sprint(lls[0].Greedy)
	}
	// The raw response is the log-likelihoods, not the chosen answer: two
	// strong models choose alike, but their log-likelihoods differ unless
	// one relays the other, and copy detection compares raw responses
	// (competition.CopyRule, for plain competitions and pools alike).
	res.Response = fmt.Sprint(d.LL)
	return nil
}

func (e *Evaluator) generate(ctx context.Context, it Item, res *eval.Result, d *Detail) error {
	resps := make([]string, len(it.Requests))
	for k, r := range it.Requests {
		resp, err := e.client.Completion(ctx, r.GenRequest(e.model))
		if err != nil {
			return fmt.Errorf("request %d: %w", k, err)
		}
		if len(resp.Choices) == 0 {
			return fmt.Errorf("request %d: completion has no choices", k)
		}
		resps[k] = resp.Choices[0].Text
		res.PromptTokens += resp.Usage.PromptTokens
		res.CompletionTokens += resp.Usage.CompletionTokens
	}
	e.cfg.scoreResponses(it, resps, res, d)
	return nil
}
