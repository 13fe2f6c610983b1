package node

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/roleplay"
	"crucible/internal/inference"
)

// Roleplay is what a validator needs to evaluate roleplay competitions
// itself: its own generator, reference and judge, and its own secret seed.
type Roleplay struct {
	// Egress reaches the validator's own models: Egress.Operator holds its
	// generator, reference and judge endpoints (with their keys, which only
	// they receive). A nil HTTPClient means Config.ModelHTTP.
	Egress kinds.Egress
	// Models names the model to ask for by role; a missing role keeps the
	// competition's model name.
	Models map[kinds.Role]string
	// Secret seeds the validator's own items: epoch n's conversations are
	// planned from HMAC-SHA256(Secret, competition id, n), so neither the
	// miners nor the hub know them in advance, and every epoch's differ.
	Secret []byte
}

// EpochSeed is the roleplay seed of a validator's items for a competition
// in epoch n.
func EpochSeed(secret []byte, competitionID string, n int64) int64 {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("crucible-validator-roleplay-v1\n" + competitionID + "\n" + strconv.FormatInt(n, 10)))
	return int64(binary.BigEndian.Uint64(m.Sum(nil)) >> 1) // non-negative
}

// roleplayConfig is the competition's roleplay configuration with the
// validator's own models and epoch seed in place of the hub's.
func (r *Roleplay) roleplayConfig(c competition.Competition, epoch int64) (roleplay.CompetitionConfig, error) {
	var cfg roleplay.CompetitionConfig
	if err := json.Unmarshal(c.Config, &cfg); err != nil {
		return cfg, fmt.Errorf("competition %s config: %w", c.ID, err)
	}
	own := func(spec roleplay.EndpointSpec, role kinds.Role) roleplay.EndpointSpec {
		// An empty base URL selects the validator's endpoint for the role
		// (see kinds.Egress); the competition's URLs are the hub's models.
		spec.BaseURL = ""
		if m := r.Models[role]; m != "" {
			spec.Model = m
		}
		return spec
	}
	cfg.Generator = own(cfg.Generator, kinds.RoleGenerator)
	cfg.Reference = own(cfg.Reference, kinds.RoleReference)
	cfg.Judge = own(cfg.Judge, kinds.RoleJudge)
	cfg.Seed = EpochSeed(r.Secret, c.ID, epoch)
	return cfg, nil
}

// roleplayItems plans (once per epoch) the validator's own items for the
// competition: the competition's shape and scoring, the validator's models
// and seed. Only the shipped persona set can be re-planned: the hub does
// not publish a custom set's cards.
func (n *Node) roleplayItems(ctx context.Context, c competition.Competition, epoch int64) (roleplay.CompetitionConfig, []roleplay.Item, error) {
	n.mu.Lock()
	if n.rpEpoch == epoch && n.rpItems != nil {
		defer n.mu.Unlock()
		return n.rpConfig, n.rpItems, nil
	}
	n.mu.Unlock()
	r := n.cfg.Roleplay
	cfg, err := r.roleplayConfig(c, epoch)
	if err != nil {
		return cfg, nil, err
	}
	shipped, err := roleplay.DefaultPersonas()
	if err != nil {
		return cfg, nil, err
	}
	if d := roleplay.PersonaDigest(shipped); cfg.PersonaDigest != d {
		return cfg, nil, fmt.Errorf("competition %s uses the persona set %q (digest %s), not the shipped one; a validator can plan its own items only for the shipped set",
			c.ID, cfg.PersonaSet, cfg.PersonaDigest)
	}
	cfg, items, err := kinds.PlanRoleplay(ctx, cfg, shipped, roleplay.DefaultPersonasName, r.Egress)
	if err != nil {
		return cfg, nil, fmt.Errorf("plan the validator's own roleplay items for epoch %d: %w", epoch, err)
	}
	n.mu.Lock()
	n.rpEpoch, n.rpConfig, n.rpItems = epoch, cfg, items
	n.mu.Unlock()
	return cfg, items, nil
}

// evaluateRoleplay runs the roleplay evaluator on the miner's model over the
// validator's own items of the epoch, judged by the validator's own judge
// against its own reference.
func (n *Node) evaluateRoleplay(ctx context.Context, c competition.Competition, s competition.Submission, epoch int64) ([]eval.Result, error) {
	cfg, items, err := n.roleplayItems(ctx, c, epoch)
	if err != nil {
		return nil, err
	}
	cl, err := inference.New(inference.Config{BaseURL: s.Model.BaseURL, HTTPClient: n.modelHTTP(s)})
	if err != nil {
		return nil, err
	}
	var measured int64
	if s.Artifact != nil {
		// As the hub's worker does: the count the validator read from the
		// verified files, never what the launched server declares.
		measured, cfg.TrustDeclaredParams = s.Artifact.Parameters, false
	}
	ev, err := kinds.RoleplayEvaluator(cfg, items, roleplay.Endpoint{Client: cl, Model: s.Model.Model}, measured, n.cfg.Roleplay.Egress)
	if err != nil {
		return nil, err
	}
	return n.run(ctx, ev)
}
