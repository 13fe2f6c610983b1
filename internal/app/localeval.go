package app

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/runner"
	"crucible/internal/inference"
	"crucible/internal/kind"
)

// LocalRunConfig configures one local evaluation (`crucible eval`): the
// same path as a server's — Prepare → Plan → eval.Run → Score — with the
// competitor's machine in place of the hub.
type LocalRunConfig struct {
	// Kind names the kind; Spec is what a creator would send for it.
	Kind competition.Kind
	Spec kind.Spec
	// Entry is the submission's entry: Model for a model kind, Patch for a
	// code-fix one.
	Entry competition.Submission
	// APIKey is sent to the submitted model server only.
	APIKey      string
	Concurrency int
	// Progress, if set, is called after each item.
	Progress func(done, total int)
	// Egress reaches the models; the zero value is local use: the models
	// named are the user's own and get the keys from their environment,
	// over an unrestricted client.
	Egress kinds.Egress
	// Kinds adds kinds beside the built-in ones (as Config.Kinds).
	Kinds func(egress kinds.Egress) []kind.Kind
}

// LocalRun is the outcome of a local evaluation.
type LocalRun struct {
	Competition competition.Competition
	Card        competition.Card
	// Scores are the per-item scores; Results the item records, by index.
	Scores  []float64
	Results []eval.Result
	// Components break the score down, for kinds that do (kind.Explainer).
	Components map[string]float64
}

// Local runs one evaluation on this machine exactly as a worker would.
func Local(ctx context.Context, cfg LocalRunConfig) (*LocalRun, error) {
	if cfg.Egress.HTTPClient == nil {
		cfg.Egress.HTTPClient = &http.Client{Transport: inference.NewTransport()}
	}
	var extra []kind.Kind
	if cfg.Kinds != nil {
		extra = cfg.Kinds(cfg.Egress)
	}
	// A local patch task names a repository on this machine.
	reg, err := Kinds(cfg.Egress, localRepos{}, extra...)
	if err != nil {
		return nil, err
	}
	if cfg.Spec.ResolveRepo == nil {
		cfg.Spec.ResolveRepo = func(_ context.Context, repo, _ string) (string, error) { return repo, nil }
	}
	if cfg.Spec.Title == "" {
		cfg.Spec.Title = "local"
	}
	prep, err := reg.Prepare(ctx, cfg.Kind, cfg.Spec)
	if err != nil {
		return nil, err
	}
	c := competition.Competition{ID: "local", Kind: cfg.Kind, Title: cfg.Spec.Title, Config: prep.Config,
		DatasetName: cfg.Spec.DatasetName, DatasetDigest: prep.DatasetDigest, Items: len(prep.Items)}
	sub := cfg.Entry
	sub.ID, sub.CompetitionID = "local", c.ID
	ev, err := reg.Plan(ctx, c, sub, cfg.APIKey, prep.Items)
	if err != nil {
		return nil, err
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	var mu sync.Mutex
	results := make([]eval.Result, 0, ev.Len())
	err = runner.Run(ctx, ev, runner.Config{Concurrency: cfg.Concurrency, Progress: cfg.Progress, Sink: func(r eval.Result) error {
		mu.Lock()
		defer mu.Unlock()
		results = append(results, r)
		return nil
	}})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(results, func(a, b eval.Result) int { return a.Index - b.Index })
	card, scores, err := reg.Score(c, results)
	if err != nil {
		return nil, err
	}
	comps, err := reg.Components(c, results)
	if err != nil {
		return nil, err
	}
	return &LocalRun{Competition: c, Card: card, Scores: scores, Results: results, Components: comps}, nil
}

// localRepos are repositories on this machine, named by their path.
type localRepos struct{}

func (localRepos) Local(_ context.Context, repo string) (string, error) { return repo, nil }

// LocalEvalConfig configures `crucible eval` of a model on a dataset file
// (multiple choice by default).
type LocalEvalConfig struct {
	Kind        competition.Kind
	DatasetPath string
	// Options are the kind-specific settings, as in kind.Spec.
	Options map[string]json.RawMessage
	BaseURL string
	Model   string
	APIKey  string
	// Config is the scoring configuration (mode, template, max tokens).
	Config      competition.MCQConfig
	Concurrency int
	// Progress, if set, is called after each item.
	Progress   func(done, total int)
	HTTPClient *http.Client
	// Kinds adds kinds beside the built-in ones (as Config.Kinds).
	Kinds func(egress kinds.Egress) []kind.Kind
}

// LocalReport is the outcome of a local evaluation.
type LocalReport struct {
	competition.Card
	Model   string `json:"model"`
	Dataset string `json:"dataset"`
	Digest  string `json:"dataset_digest"`
	// Components break the score down, for kinds that do.
	Components map[string]float64 `json:"components,omitempty"`
	Results    []eval.Result      `json:"-"`
}

// LocalEval evaluates a model on a dataset file and scores it (Local).
func LocalEval(ctx context.Context, cfg LocalEvalConfig) (*LocalReport, error) {
	var data []byte
	name := ""
	if cfg.DatasetPath != "" {
		var err error
		if data, err = os.ReadFile(cfg.DatasetPath); err != nil {
			return nil, err
		}
		name = strings.TrimSuffix(filepath.Base(cfg.DatasetPath), filepath.Ext(cfg.DatasetPath))
	}
	run, err := Local(ctx, LocalRunConfig{Kind: cfg.Kind,
		Spec: kind.Spec{DatasetName: name, Dataset: data, Mode: cfg.Config.Mode, Template: cfg.Config.Template,
			MaxTokens: cfg.Config.MaxTokens, Options: cfg.Options},
		Entry:  competition.Submission{Model: competition.ModelSpec{BaseURL: cfg.BaseURL, Model: cfg.Model}},
		APIKey: cfg.APIKey, Concurrency: cfg.Concurrency, Progress: cfg.Progress,
		Egress: kinds.Egress{HTTPClient: cfg.HTTPClient}, Kinds: cfg.Kinds})
	if err != nil {
		return nil, err
	}
	return &LocalReport{Card: run.Card, Model: cfg.Model, Dataset: name, Digest: run.Competition.DatasetDigest,
		Components: run.Components, Results: run.Results}, nil
}
