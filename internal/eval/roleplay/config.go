package roleplay

import (
	"errors"
	"fmt"
	"strings"
)

// Model names of the baseline model server's roleplay policies
// (internal/modelserver), the defaults of a local evaluation.
const (
	BaselineGenerator = "baseline-persona"
	BaselineReference = "baseline-persona-ref"
	BaselineJudge     = "baseline-judge"
)

// EndpointSpec names a model server and a model in a stored configuration.
// API keys never appear here; they come from the environment.
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

// Validate reports a configuration that cannot be evaluated.
func (c CompetitionConfig) Validate() error {
	if c.Items < 1 || c.Turns < 1 || c.MaxTokens < 1 {
		return fmt.Errorf("roleplay: items (%d), turns (%d) and max_tokens (%d) must be positive", c.Items, c.Turns, c.MaxTokens)
	}
	for _, e := range []struct {
		role string
		s    EndpointSpec
	}{{"generator", c.Generator}, {"reference", c.Reference}, {"judge", c.Judge}} {
		if e.role == "generator" && c.Turns == 1 && e.s == (EndpointSpec{}) {
			continue // no generated turns, no generator needed
		}
		if strings.TrimSpace(e.s.BaseURL) == "" || strings.TrimSpace(e.s.Model) == "" {
			return fmt.Errorf("roleplay: %s needs base_url and model", e.role)
		}
	}
	if c.PersonaSet == "" {
		return errors.New("roleplay: persona_set is empty")
	}
	return c.Scoring.Validate()
}
