package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/roleplay"
	"crucible/internal/inference"
)

// LocalRoleplayConfig configures `crucible eval --kind roleplay`: the same
// planning (from the seed) and scoring as a server's roleplay competition.
type LocalRoleplayConfig struct {
	Config roleplay.CompetitionConfig
	// Personas is a persona JSONL file ("" for the shipped set).
	Personas    string
	BaseURL     string
	Model       string
	APIKey      string
	Concurrency int
	Progress    func(done, total int)
}

// RoleplayReport is the outcome of a local roleplay evaluation.
type RoleplayReport struct {
	competition.Card
	Components map[string]float64 `json:"components"`
	Model      string             `json:"model"`
	Seed       int64              `json:"seed"`
	ItemsHash  string             `json:"items_digest"`
}

// LocalRoleplay plans the items from the seed, evaluates the model and
// scores it exactly as the server does.
func LocalRoleplay(ctx context.Context, cfg LocalRoleplayConfig) (*RoleplayReport, error) {
	var personas []roleplay.Character
	set := ""
	if cfg.Personas != "" {
		var err error
		if personas, err = roleplay.ParsePersonasFile(cfg.Personas); err != nil {
			return nil, err
		}
		set = cfg.Personas
	}
	// Locally the user is the operator: the models they name are their own
	// and get the keys from their environment, over an unrestricted client.
	egress := kinds.Egress{
		Operator:   operatorEndpoints(cfg.Config.Generator.BaseURL, cfg.Config.Reference.BaseURL, cfg.Config.Judge.BaseURL),
		HTTPClient: &http.Client{Transport: inference.NewTransport()},
	}
	rc, items, err := kinds.PlanRoleplay(ctx, cfg.Config, personas, set, egress)
	if err != nil {
		return nil, err
	}
	client, err := inference.New(inference.Config{BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, HTTPClient: egress.HTTPClient})
	if err != nil {
		return nil, err
	}
	ev, err := kinds.RoleplayEvaluator(rc, items, roleplay.Endpoint{Client: client, Model: cfg.Model}, egress)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var results []eval.Result
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	err = eval.Run(ctx, ev, eval.RunConfig{Concurrency: cfg.Concurrency, Progress: cfg.Progress, Sink: func(r eval.Result) error {
		mu.Lock()
		defer mu.Unlock()
		results = append(results, r)
		return nil
	}})
	if err != nil {
		return nil, err
	}
	config, err := json.Marshal(rc)
	if err != nil {
		return nil, err
	}
	card, err := kinds.Card(competition.Competition{Kind: competition.KindRoleplay, Config: config}, results)
	if err != nil {
		return nil, err
	}
	_, comps, err := roleplay.Aggregate(results, rc.Scoring)
	if err != nil {
		return nil, fmt.Errorf("aggregate: %w", err)
	}
	return &RoleplayReport{Card: card, Components: comps, Model: cfg.Model, Seed: rc.Seed, ItemsHash: roleplay.Digest(items)}, nil
}
