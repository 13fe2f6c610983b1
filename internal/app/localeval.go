package app

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/mcq"
	"crucible/internal/inference"
)

// LocalEvalConfig configures `crucible eval`: an evaluation run on the
// competitor's machine with no server, built by the same code as the
// server's, so the same inputs give the same score.
type LocalEvalConfig struct {
	Kind        competition.Kind
	DatasetPath string
	BaseURL     string
	Model       string
	APIKey      string
	// Config is the kind's scoring configuration (mode, template, max tokens).
	Config      competition.MCQConfig
	Concurrency int
	// Progress, if set, is called after each item.
	Progress   func(done, total int)
	HTTPClient *http.Client
}

// LocalReport is the outcome of a local evaluation.
type LocalReport struct {
	competition.Card
	Model   string        `json:"model"`
	Dataset string        `json:"dataset"`
	Digest  string        `json:"dataset_digest"`
	Results []eval.Result `json:"-"`
}

// LocalEval evaluates a model on a dataset file and scores it.
func LocalEval(ctx context.Context, cfg LocalEvalConfig) (*LocalReport, error) {
	if cfg.Kind != competition.KindMCQ {
		return nil, fmt.Errorf("kind %q cannot be evaluated locally yet (known: mcq)", cfg.Kind)
	}
	ds, err := mcq.ParseFile(cfg.DatasetPath)
	if err != nil {
		return nil, err
	}
	if cfg.Config.Mode == "" {
		cfg.Config.Mode = string(mcq.Generative)
	}
	if cfg.Config.MaxTokens == 0 {
		cfg.Config.MaxTokens = mcq.DefaultMaxTokens
	}
	client, err := inference.New(inference.Config{BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, HTTPClient: cfg.HTTPClient})
	if err != nil {
		return nil, err
	}
	ev, err := kinds.MCQEvaluator(cfg.Config, ds, client, cfg.Model)
	if err != nil {
		return nil, err
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	var mu sync.Mutex
	results := make([]eval.Result, 0, ev.Len())
	err = eval.Run(ctx, ev, eval.RunConfig{
		Concurrency: cfg.Concurrency,
		Sink: func(r eval.Result) error {
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
			return nil
		},
		Progress: cfg.Progress,
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Index < results[j].Index })
	scores := make([]float64, len(results))
	correct := 0
	for i, r := range results {
		scores[i] = r.Score
		if r.Correct {
			correct++
		}
	}
	return &LocalReport{Card: competition.NewCard(scores, correct), Model: cfg.Model, Dataset: ds.Name, Digest: ds.Digest, Results: results}, nil
}
