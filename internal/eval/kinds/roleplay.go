package kinds

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/roleplay"
	"crucible/internal/inference"
	"crucible/internal/kind"
)

func endpoint(spec roleplay.EndpointSpec, role Role, egress Egress) (roleplay.Endpoint, error) {
	c, err := egress.Model(role, spec.BaseURL)
	if err != nil {
		return roleplay.Endpoint{}, err
	}
	return roleplay.Endpoint{Client: c, Model: spec.Model}, nil
}

// PlanRoleplay completes a roleplay configuration with its defaults and the
// persona set's digest, validates it, and generates its items from the seed
// with the generator model, reached through egress. personas may be nil
// (the shipped set).
func PlanRoleplay(ctx context.Context, cfg roleplay.CompetitionConfig, personas []roleplay.Character, personaSet string, egress Egress) (roleplay.CompetitionConfig, []roleplay.Item, error) {
	if personas == nil {
		var err error
		if personas, err = roleplay.DefaultPersonas(); err != nil {
			return cfg, nil, err
		}
		personaSet = roleplay.DefaultPersonasName
	}
	cfg.PersonaSet = personaSet
	cfg = cfg.WithDefaults()
	cfg.PersonaDigest = roleplay.PersonaDigest(personas)
	if err := cfg.Validate(); err != nil {
		return cfg, nil, err
	}
	var gen roleplay.Endpoint
	if cfg.Turns > 1 {
		var err error
		if gen, err = endpoint(cfg.Generator, RoleGenerator, egress); err != nil {
			return cfg, nil, err
		}
	}
	items, err := roleplay.Plan(ctx, roleplay.PlanConfig{Seed: cfg.Seed, Items: cfg.Items, Turns: cfg.Turns, Personas: personas,
		Generator: gen, MaxTokens: cfg.MaxTokens})
	if err != nil {
		return cfg, nil, fmt.Errorf("generate items: %w", err)
	}
	return cfg, items, nil
}

// prepareRoleplay plans a roleplay competition's items; the dataset is an
// optional persona JSONL.
func prepareRoleplay(ctx context.Context, spec kind.Spec, rc roleplay.CompetitionConfig, egress Egress) (Prepared, error) {
	var personas []roleplay.Character
	if len(bytes.TrimSpace(spec.Dataset)) > 0 {
		var err error
		if personas, err = roleplay.ParsePersonas(bytes.NewReader(spec.Dataset), spec.DatasetName); err != nil {
			return Prepared{}, err
		}
	}
	cfg, items, err := PlanRoleplay(ctx, rc, personas, spec.DatasetName, egress)
	if err != nil {
		return Prepared{}, err
	}
	config, err := json.Marshal(cfg)
	if err != nil {
		return Prepared{}, err
	}
	raw := make([]json.RawMessage, len(items))
	for i, it := range items {
		if raw[i], err = json.Marshal(it); err != nil {
			return Prepared{}, err
		}
	}
	return Prepared{Config: config, DatasetDigest: roleplay.Digest(items), Items: raw}, nil
}

// RoleplayEvaluator builds the roleplay evaluator of a model: the one
// constructor the server and the local `crucible eval` share. The reference
// and judge are reached through egress. The size component reads measured,
// the parameter count the hub read from the model's files (0: none), else
// the model's declared count when cfg.TrustDeclaredParams is set.
func RoleplayEvaluator(cfg roleplay.CompetitionConfig, items []roleplay.Item, model roleplay.Endpoint, measured int64, egress Egress) (eval.Evaluator, error) {
	ref, err := endpoint(cfg.Reference, RoleReference, egress)
	if err != nil {
		return nil, err
	}
	judge, err := endpoint(cfg.Judge, RoleJudge, egress)
	if err != nil {
		return nil, err
	}
	return roleplay.NewEvaluator(roleplay.Config{Items: items, Model: model, Reference: ref, Judge: judge,
		Scoring: cfg.Scoring, MaxTokens: cfg.MaxTokens, Params: measured, DeclaredParams: cfg.TrustDeclaredParams})
}

func planRoleplay(c competition.Competition, s competition.Submission, secret string, raw []json.RawMessage, egress Egress) (eval.Evaluator, error) {
	items, err := RoleplayItems(c, raw)
	if err != nil {
		return nil, err
	}
	return SubmissionRoleplayEvaluator(c, s, secret, items, egress)
}

// RoleplayItems decodes a roleplay competition's stored items.
func RoleplayItems(c competition.Competition, raw []json.RawMessage) ([]roleplay.Item, error) {
	items := make([]roleplay.Item, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &items[i]); err != nil {
			return nil, fmt.Errorf("competition %s item %d: %w", c.ID, i, err)
		}
	}
	return items, nil
}

// RoleplayConfig decodes a roleplay competition's stored configuration.
func RoleplayConfig(c competition.Competition) (roleplay.CompetitionConfig, error) {
	var cfg roleplay.CompetitionConfig
	if err := json.Unmarshal(c.Config, &cfg); err != nil {
		return cfg, fmt.Errorf("competition %s config: %w", c.ID, err)
	}
	return cfg, nil
}

// SubmissionRoleplayEvaluator builds the evaluator of a stored submission
// on the given items: the competition's practice items, or an epoch's
// fresh ones. An artifact submission's size is its measured parameter
// count (ArtifactSpec.Parameters).
func SubmissionRoleplayEvaluator(c competition.Competition, s competition.Submission, secret string, items []roleplay.Item, egress Egress) (eval.Evaluator, error) {
	cfg, err := RoleplayConfig(c)
	if err != nil {
		return nil, err
	}
	client, err := inference.New(inference.Config{BaseURL: s.Model.BaseURL, APIKey: secret, HTTPClient: egress.ModelClient(s)})
	if err != nil {
		return nil, err
	}
	var measured int64
	if s.Artifact != nil {
		// The worker read the count from the verified files; the server
		// launched from them declares what the competitor's files say.
		measured, cfg.TrustDeclaredParams = s.Artifact.Parameters, false
	}
	return RoleplayEvaluator(cfg, items, roleplay.Endpoint{Client: client, Model: s.Model.Model}, measured, egress)
}

// FreshRoleplayItems plans an epoch's fresh items from its seed: the
// competition's configuration with seed in place of the public one. The
// persona set is the shipped one, or for a competition created with its
// own set the characters of its practice items (in order of first use),
// so anyone holding the revealed seed can plan the same items again. No
// fresh item opens as a practice item does where its card has another
// opener (roleplay.PlanConfig.Avoid): with a generator at temperature 0
// the same opening is the same conversation, public in the practice set.
func FreshRoleplayItems(ctx context.Context, cfg roleplay.CompetitionConfig, practice []roleplay.Item, seed int64, egress Egress) ([]roleplay.Item, error) {
	var personas []roleplay.Character
	if cfg.PersonaSet != roleplay.DefaultPersonasName {
		seen := map[string]bool{}
		for _, it := range practice {
			if !seen[it.Character.Name] {
				seen[it.Character.Name] = true
				personas = append(personas, it.Character)
			}
		}
		if len(personas) == 0 {
			return nil, fmt.Errorf("roleplay: no practice items to take the persona set %q from", cfg.PersonaSet)
		}
	}
	var gen roleplay.Endpoint
	if cfg.Turns > 1 {
		var err error
		if gen, err = endpoint(cfg.Generator, RoleGenerator, egress); err != nil {
			return nil, err
		}
	}
	items, err := roleplay.Plan(ctx, roleplay.PlanConfig{Seed: seed, Items: cfg.Items, Turns: cfg.Turns, Personas: personas,
		Generator: gen, MaxTokens: cfg.MaxTokens, Avoid: practice})
	if err != nil {
		return nil, fmt.Errorf("generate fresh items: %w", err)
	}
	return items, nil
}
