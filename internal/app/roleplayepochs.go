package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"crucible/internal/api/apiv1"
	"crucible/internal/competition"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/roleplay"
	"crucible/internal/inference"
)

// EvaluateFresh opens the current epoch of every fresh-items roleplay
// competition and enqueues the evaluations it still lacks (the periodic
// task; the queue's workers run them).
func (a *App) EvaluateFresh(ctx context.Context) error {
	return a.Epochs.EvaluateFresh(ctx, a.Queue.EnqueueFresh)
}

// VerifyEpochConfig configures `crucible roleplay verify-epoch`.
type VerifyEpochConfig struct {
	Competition competition.Competition
	Epoch       apiv1.RoleplayEpoch
	// Personas is the competition's persona JSONL ("" for the shipped set).
	Personas string
	// GeneratorURL replaces the competition's generator server, needed
	// when it is the hub's own (an empty base_url); its key is read from
	// CRUCIBLE_GENERATOR_API_KEY.
	GeneratorURL string
}

// EpochCheck is what verify-epoch found.
type EpochCheck struct {
	Epoch int64 `json:"epoch"`
	// CommitmentOK: the revealed seed hashes to the published commitment.
	CommitmentOK bool   `json:"commitment_ok"`
	Published    string `json:"items_digest"`
	// Replanned is the digest of the items planned again from the seed.
	Replanned string `json:"replanned_digest"`
	// ServedOK: the items the hub shows have the published digest.
	ServedOK bool `json:"served_ok"`
}

// OK reports whether every check passed.
func (c EpochCheck) OK() bool { return c.CommitmentOK && c.ServedOK && c.Replanned == c.Published }

// VerifyRoleplayEpoch checks an ended epoch of a fresh-items roleplay
// competition: the revealed seed hashes to the commitment published when
// the epoch opened, and planning from it (with the competition's
// generator) gives exactly the items the hub published.
func VerifyRoleplayEpoch(ctx context.Context, cfg VerifyEpochConfig) (EpochCheck, error) {
	e := cfg.Epoch
	check := EpochCheck{Epoch: e.Epoch, Published: e.ItemsDigest}
	if e.Seed == nil {
		return check, fmt.Errorf("epoch %d has not ended (it ends at %s): its seed is still sealed", e.Epoch, e.End.Format("2006-01-02 15:04:05 MST"))
	}
	check.CommitmentOK = roleplay.SeedCommitment(*e.Seed) == e.SeedSHA256
	served := make([]roleplay.Item, len(e.Items))
	for i, raw := range e.Items {
		if err := json.Unmarshal(raw, &served[i]); err != nil {
			return check, fmt.Errorf("epoch %d item %d: %w", e.Epoch, i, err)
		}
	}
	check.ServedOK = roleplay.Digest(served) == e.ItemsDigest
	rc, err := kinds.RoleplayConfig(cfg.Competition)
	if err != nil {
		return check, err
	}
	if cfg.GeneratorURL != "" {
		rc.Generator.BaseURL = cfg.GeneratorURL
	}
	if rc.Turns > 1 && rc.Generator.BaseURL == "" {
		return check, errors.New("the competition uses the hub's own generator: name a server with the same model with --generator-url")
	}
	// The hub plans an epoch's items away from its practice items' openings,
	// and a custom persona set's epochs with the characters of its practice
	// items; both need only the practice items' openings, which need no
	// generator (one turn).
	var personas []roleplay.Character // nil: the shipped set
	if rc.PersonaSet != roleplay.DefaultPersonasName {
		if cfg.Personas == "" {
			return check, fmt.Errorf("the competition uses its own persona set %q: pass the file with --personas", rc.PersonaSet)
		}
		if personas, err = roleplay.ParsePersonasFile(cfg.Personas); err != nil {
			return check, err
		}
		if d := roleplay.PersonaDigest(personas); d != rc.PersonaDigest {
			return check, fmt.Errorf("persona file %s has digest %s; the competition's is %s", cfg.Personas, d, rc.PersonaDigest)
		}
	}
	practice, err := roleplay.Plan(ctx, roleplay.PlanConfig{Seed: rc.Seed, Items: rc.Items, Turns: 1, Personas: personas})
	if err != nil {
		return check, err
	}
	egress := kinds.Egress{Operator: operatorEndpoints(rc.Generator.BaseURL, "", ""), HTTPClient: &http.Client{Transport: inference.NewTransport()}}
	items, err := kinds.FreshRoleplayItems(ctx, rc, practice, *e.Seed, egress)
	if err != nil {
		return check, err
	}
	check.Replanned = roleplay.Digest(items)
	return check, nil
}
