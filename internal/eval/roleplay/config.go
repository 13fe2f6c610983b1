package roleplay

import (
	"errors"
	"fmt"
	"strings"

	"crucible/internal/competition"
	"crucible/internal/incentive"
)

// Model names of the baseline model server's roleplay policies
// (roleplaytest, served by internal/baseline), the defaults of a local
// evaluation.
const (
	BaselineGenerator = "baseline-persona"
	BaselineReference = "baseline-persona-ref"
	BaselineJudge     = "baseline-judge"
)

// EndpointSpec names a model server and a model in a stored configuration.
// An empty BaseURL means the server's own model for the role, configured
// by its operator. API keys never appear here: only the operator's own
// endpoints get one, from the operator's configuration.
type EndpointSpec struct {
	BaseURL string `json:"base_url"`
	Model   string `json:"model"`
}

// CompetitionConfig is the kind-specific configuration of a roleplay
// competition, stored as its JSON config and printed by `crucible
// competition show`.
type CompetitionConfig struct {
	// Seed, Items and Turns plan the evaluation (see PlanConfig).
	Seed  int64 `json:"seed"`
	Items int   `json:"items"`
	Turns int   `json:"turns"`
	// MaxTokens bounds generated messages and replies.
	MaxTokens int `json:"max_tokens"`
	// PersonaSet and PersonaDigest identify the persona set.
	PersonaSet    string `json:"persona_set"`
	PersonaDigest string `json:"persona_digest"`
	// Generator, Reference and Judge are the evaluation's own models.
	Generator EndpointSpec `json:"generator"`
	Reference EndpointSpec `json:"reference"`
	Judge     EndpointSpec `json:"judge"`
	// Scoring holds the weights and thresholds.
	Scoring Scoring `json:"scoring"`
	// FreshItems makes the hub evaluate every model, each epoch, on items
	// planned from a secret epoch seed (committed when the epoch opens,
	// revealed when it closes); the items planned from Seed become the
	// public practice set. Epoch weights then compare fresh items only.
	FreshItems bool `json:"fresh_items,omitempty"`
	// ContaminationThreshold is the practice-minus-fresh score gap above
	// which a model is flagged (0: DefaultContaminationThreshold).
	ContaminationThreshold float64 `json:"contamination_threshold,omitempty"`
	// TrustDeclaredParams lets the size component use the parameter count
	// a submitted model's own server declares in /v1/models. Off by
	// default: a competitor's server can declare a tiny count for a large
	// model, so without a count the hub measured itself (from the weights,
	// see the artifact submissions of issue 18) the size component is left
	// out. Only a competition whose model servers the operator runs, or a
	// local evaluation of one's own server, should turn it on.
	TrustDeclaredParams bool `json:"trust_declared_params,omitempty"`
	// WinRate names the win-rate preset of the epoch weights: crucible
	// (""), dippy or pretraining (incentive.Preset).
	WinRate string `json:"win_rate,omitempty"`
	// Entries says whether competitors enter model servers or artifacts;
	// an artifact's size component reads the parameter count its worker
	// measured, never a declared one.
	competition.Entries
}

// WithDefaults fills zero Items, Turns, MaxTokens, PersonaSet and Scoring
// fields with their defaults.
func (c CompetitionConfig) WithDefaults() CompetitionConfig {
	if c.Items == 0 {
		c.Items = DefaultItems
	}
	if c.Turns == 0 {
		c.Turns = DefaultTurns
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = DefaultMaxTokens
	}
	if c.PersonaSet == "" {
		c.PersonaSet = DefaultPersonasName
	}
	c.Scoring = c.Scoring.WithDefaults()
	return c
}

// Limits of a roleplay configuration. Creating a competition makes about
// two generator calls per item and generated turn, and every submission one
// reference and one judge call per item, all on the server's behalf, so a
// creator must not be able to ask for an unbounded amount of outbound work.
const (
	MaxItems = 1000
	MaxTurns = 10
	// MaxItemTurns bounds items × turns, the size of planning.
	MaxItemTurns = 2000
	// MaxMaxTokens bounds max_tokens of every generated message.
	MaxMaxTokens = 8192
)

// Validate reports a configuration that cannot be evaluated, or one over
// the limits above (the error names the limit).
func (c CompetitionConfig) Validate() error {
	if c.Items < 1 || c.Turns < 1 || c.MaxTokens < 1 {
		return fmt.Errorf("roleplay: items (%d), turns (%d) and max_tokens (%d) must be positive", c.Items, c.Turns, c.MaxTokens)
	}
	switch {
	case c.Items > MaxItems:
		return fmt.Errorf("roleplay: items %d is over the limit of %d", c.Items, MaxItems)
	case c.Turns > MaxTurns:
		return fmt.Errorf("roleplay: turns %d is over the limit of %d", c.Turns, MaxTurns)
	case c.Items*c.Turns > MaxItemTurns:
		return fmt.Errorf("roleplay: items × turns = %d × %d is over the limit of %d", c.Items, c.Turns, MaxItemTurns)
	case c.MaxTokens > MaxMaxTokens:
		return fmt.Errorf("roleplay: max_tokens %d is over the limit of %d", c.MaxTokens, MaxMaxTokens)
	}
	for _, e := range []struct {
		role string
		s    EndpointSpec
	}{{"generator", c.Generator}, {"reference", c.Reference}, {"judge", c.Judge}} {
		if e.role == "generator" && c.Turns == 1 && e.s == (EndpointSpec{}) {
			continue // no generated turns, no generator needed
		}
		if strings.TrimSpace(e.s.Model) == "" {
			return fmt.Errorf("roleplay: %s needs a model (and a base_url, or none for the server's own %s)", e.role, e.role)
		}
	}
	if c.PersonaSet == "" {
		return errors.New("roleplay: persona_set is empty")
	}
	if c.ContaminationThreshold < 0 || c.ContaminationThreshold > 1 {
		return fmt.Errorf("roleplay: contamination_threshold %v is outside 0..1", c.ContaminationThreshold)
	}
	if _, err := incentive.Preset(c.WinRate); err != nil {
		return fmt.Errorf("roleplay: win_rate: %w", err)
	}
	return c.Scoring.Validate()
}
