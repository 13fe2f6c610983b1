// Package kinds is the registry of task kinds: it turns a competition
// request into stored items and configuration, and a stored submission into
// an evaluator. Server, workers and the local `crucible eval` all build
// evaluators here, so the same inputs give the same score everywhere. Adding
// a kind means a new internal/eval package and a case here. It must never
// import the store, the job queue or the API.
package kinds

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/patch"
	"crucible/internal/eval/roleplay"
	"crucible/internal/inference"
)

// CompetitionSpec is what a competition creator sends.
type CompetitionSpec struct {
	Kind        competition.Kind
	Title       string
	DatasetName string
	// Dataset is the dataset file's content (JSONL for mcq).
	Dataset []byte
	// Template is an optional prompt template (mcq).
	Template string
	// Mode is "generative" (default) or "loglik" (mcq).
	Mode string
	// MaxTokens bounds generated answers (0: the kind's default; at most
	// mcq.MaxTokensLimit).
	MaxTokens int
	// Roleplay configures a roleplay competition (Dataset is then an
	// optional persona JSONL).
	Roleplay *roleplay.CompetitionConfig
	// Egress reaches the competition's own models while preparing it
	// (roleplay planning, preference generation).
	Egress Egress
	// PatchRepo vets the repository a patch task names and returns what
	// the stored task refers to instead (see patch.Repos); nil refuses
	// every patch competition.
	PatchRepo func(ctx context.Context, t patch.Task) (string, error)
	// PatchPolicy relaxes rules of the code-fix policy screen (nil:
	// strict); an unknown rule name is refused.
	PatchPolicy *patch.Policy
}

// Prepared is a validated competition, ready to store.
type Prepared struct {
	Config        json.RawMessage
	DatasetDigest string
	Items         []json.RawMessage
}

// Prepare validates a competition spec and encodes its items. A bad dataset
// line is reported with its line number and nothing is prepared.
func Prepare(ctx context.Context, spec CompetitionSpec) (Prepared, error) {
	if err := competition.ValidateTitle(spec.Title); err != nil {
		return Prepared{}, err
	}
	switch spec.Kind {
	case competition.KindMCQ:
		ds, err := mcq.Parse(bytes.NewReader(spec.Dataset), spec.DatasetName)
		if err != nil {
			return Prepared{}, fmt.Errorf("dataset %s: %w", spec.DatasetName, err)
		}
		cfg := competition.MCQConfig{Mode: spec.Mode, Template: spec.Template, MaxTokens: spec.MaxTokens}
		if cfg.Mode == "" {
			cfg.Mode = string(mcq.Generative)
		}
		if cfg.MaxTokens == 0 {
			cfg.MaxTokens = mcq.DefaultMaxTokens
		}
		if _, err := mcqOptions(cfg); err != nil {
			return Prepared{}, err
		}
		config, err := json.Marshal(cfg)
		if err != nil {
			return Prepared{}, err
		}
		items := make([]json.RawMessage, len(ds.Items))
		for i, it := range ds.Items {
			if items[i], err = json.Marshal(it); err != nil {
				return Prepared{}, err
			}
		}
		return Prepared{Config: config, DatasetDigest: ds.Digest, Items: items}, nil
	case competition.KindPatch:
		return preparePatch(ctx, spec)
	case competition.KindRoleplay:
		return prepareRoleplay(ctx, spec)
	case competition.KindPreference:
		return PreparePreference(ctx, spec, PreferenceSpec{})
	}
	return Prepared{}, fmt.Errorf("unknown competition kind %q", spec.Kind)
}

// mcqOptions validates an mcq configuration into evaluator options.
func mcqOptions(cfg competition.MCQConfig) (mcq.Config, error) {
	opts := mcq.Config{Mode: mcq.Mode(cfg.Mode), MaxTokens: cfg.MaxTokens}
	if opts.Mode != mcq.Generative && opts.Mode != mcq.LogLikelihood {
		return opts, fmt.Errorf("unknown mcq mode %q (want %q or %q)", cfg.Mode, mcq.Generative, mcq.LogLikelihood)
	}
	if cfg.MaxTokens < 0 || cfg.MaxTokens > mcq.MaxTokensLimit {
		return opts, fmt.Errorf("max_tokens %d is outside 1..%d (0: the default, %d)", cfg.MaxTokens, mcq.MaxTokensLimit, mcq.DefaultMaxTokens)
	}
	if cfg.Template != "" {
		t, err := mcq.ParseTemplate(cfg.Template)
		if err != nil {
			return opts, fmt.Errorf("template: %w", err)
		}
		opts.Template = t
	}
	return opts, nil
}

// MCQEvaluator builds the multiple-choice evaluator for a model. It is the
// one constructor the server and the local `crucible eval` share.
func MCQEvaluator(cfg competition.MCQConfig, ds *mcq.Dataset, client *inference.Client, model string) (eval.Evaluator, error) {
	opts, err := mcqOptions(cfg)
	if err != nil {
		return nil, err
	}
	opts.Client, opts.Model, opts.Dataset = client, model, ds
	return mcq.NewEvaluator(opts)
}

// Planner builds evaluators for stored submissions (it implements jobs.Planner).
type Planner struct {
	// Egress reaches submitted models and competitions' own models; its
	// zero value refuses every non-public address.
	Egress Egress
	// Repos resolves patch tasks' repositories; nil refuses to judge.
	Repos RepoSource
}

// Plan builds the evaluator of a stored submission.
func (p Planner) Plan(ctx context.Context, c competition.Competition, s competition.Submission, secret string, items []json.RawMessage) (eval.Evaluator, error) {
	switch c.Kind {
	case competition.KindPatch:
		return planPatch(ctx, c, s, items, p.Repos)
	case competition.KindRoleplay:
		return planRoleplay(c, s, secret, items, p.Egress)
	}
	client, err := inference.New(inference.Config{BaseURL: s.Model.BaseURL, APIKey: secret, HTTPClient: p.Egress.client()})
	if err != nil {
		return nil, err
	}
	switch c.Kind {
	case competition.KindMCQ:
		var cfg competition.MCQConfig
		if err := json.Unmarshal(c.Config, &cfg); err != nil {
			return nil, fmt.Errorf("competition %s config: %w", c.ID, err)
		}
		ds := &mcq.Dataset{Name: c.DatasetName, Digest: c.DatasetDigest, Items: make([]mcq.Item, len(items))}
		for i, raw := range items {
			if err := json.Unmarshal(raw, &ds.Items[i]); err != nil {
				return nil, fmt.Errorf("competition %s item %d: %w", c.ID, i, err)
			}
		}
		return MCQEvaluator(cfg, ds, client, s.Model.Model)
	}
	return nil, fmt.Errorf("competition %s has unknown kind %q", c.ID, c.Kind)
}

// SubmitCheck is the deterministic check a model submission must pass before
// it is evaluated: its server answers /v1/models and lists the model. A
// failure is final (the submission fails with the reason); patch
// submissions have nothing to check.
func (p Planner) SubmitCheck(ctx context.Context, s competition.Submission, secret string) error {
	if s.Patch != nil {
		return nil
	}
	client, err := inference.New(inference.Config{BaseURL: s.Model.BaseURL, APIKey: secret, HTTPClient: p.Egress.client()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	list, err := client.Models(ctx)
	if err != nil {
		return fmt.Errorf("submit check: the model server at %s does not answer GET /v1/models: %w", s.Model.BaseURL, err)
	}
	var served []string
	for _, m := range list.Data {
		if m.ID == s.Model.Model {
			return nil
		}
		served = append(served, m.ID)
	}
	return fmt.Errorf("submit check: the model server at %s does not serve %q (it lists %s)", s.Model.BaseURL, s.Model.Model, strings.Join(served, ", "))
}
