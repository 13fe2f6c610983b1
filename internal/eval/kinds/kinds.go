// Package kinds adapts the built-in task kinds (mcq, patch, roleplay,
// preference) to the kind.Kind contract: it turns a competition request
// into stored items and configuration, and a stored submission into an
// evaluator. Server, workers, validators and the local `crucible eval` all
// build evaluators through these adapters, so the same inputs give the same
// score everywhere. Another kind needs no case here: it implements kind.Kind
// in its own package. It must never import the store, the job queue or the
// API.
package kinds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"crucible/internal/competition"
	egresspolicy "crucible/internal/egress"
	"crucible/internal/eval"
	"crucible/internal/eval/mcq"
	"crucible/internal/inference"
	"crucible/internal/kind"
)

// CompetitionSpec is a preference competition's request, beside its
// PreferenceSpec.
type CompetitionSpec struct {
	Kind        competition.Kind
	Title       string
	DatasetName string
	// Dataset is the dataset file's content.
	Dataset []byte
	// Egress reaches the competition's own models while preparing it
	// (preference generation).
	Egress Egress
}

// Prepared is a validated competition, ready to store.
type Prepared = kind.Prepared

// prepareMCQ validates a multiple-choice dataset and its configuration.
func prepareMCQ(spec kind.Spec) (Prepared, error) {
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
	if cfg.Entries, err = SpecEntries(spec, competition.Entries{}); err != nil {
		return Prepared{}, err
	}
	config, err := json.Marshal(cfg)
	if err != nil {
		return Prepared{}, err
	}
	items, err := EncodeItems(ds.Items)
	if err != nil {
		return Prepared{}, err
	}
	return Prepared{Config: config, DatasetDigest: ds.Digest, Items: items}, nil
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

// planMCQ builds the multiple-choice evaluator of a stored submission.
func planMCQ(c competition.Competition, s competition.Submission, secret string, items []json.RawMessage, egress Egress) (eval.Evaluator, error) {
	client, err := inference.New(inference.Config{BaseURL: s.Model.BaseURL, APIKey: secret, HTTPClient: egress.ModelClient(s)})
	if err != nil {
		return nil, err
	}
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

// ModelCheck is the deterministic check a model submission must pass before
// it is evaluated: its server answers /v1/models and lists the model. A
// failure is final (the submission fails with the reason).
func ModelCheck(ctx context.Context, s competition.Submission, secret string, egress Egress) error {
	client, err := inference.New(inference.Config{BaseURL: s.Model.BaseURL, APIKey: secret, HTTPClient: egress.ModelClient(s)})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	list, err := client.Models(ctx)
	var refused *egresspolicy.RefusedError
	if errors.As(err, &refused) {
		// The server may well be up: the hub's own policy stopped the call,
		// and only the operator can change that, so say so first.
		return fmt.Errorf("submit check: the hub's egress policy refused the model server at %s (%s is %s); "+
			"an operator running models on this network starts the hub with --allow-endpoints CIDR (e.g. 127.0.0.0/8)",
			s.Model.BaseURL, refused.Addr, refused.Reason)
	}
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
