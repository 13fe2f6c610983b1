package kinds

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval/preference"
	"crucible/internal/jsonl"
)

// DefaultPreferenceTTL is how long a preference task stays open when
// neither the task nor the competition says otherwise.
const DefaultPreferenceTTL = 24 * time.Hour

// MaxPreferenceTasks bounds the organic tasks or seeds of one preference
// competition: each seed may cost the server several generator calls when
// the competition is created.
const MaxPreferenceTasks = 2000

// PreferenceSpec is the preference-specific part of a competition request.
// The zero value means: rank criteria, 24-hour deadlines, the default
// scoring, and seeds degraded in answer mode (no model needed).
type PreferenceSpec struct {
	// Criteria of generated tasks (organic lines may set their own):
	// "rank" (default) or "score".
	Criteria preference.Criteria `json:"criteria,omitempty"`
	// TTL is the time from the competition's creation to the deadline of
	// tasks that carry none, as a Go duration ("24h", the default).
	TTL string `json:"ttl,omitempty"`
	// Mode is the degradation mode of synthetic tasks: "answer" (default
	// without a generator), "instruction" or "both" (default with one).
	Mode preference.Mode `json:"mode,omitempty"`
	// GeneratorModel names an OpenAI-compatible generator model that answers
	// seed instructions, at GeneratorURL, or at the server's own generator
	// when GeneratorURL is empty (see Egress: only the server's own gets the
	// operator's key). Without a model, every seed needs a reference answer
	// and the mode must be "answer".
	GeneratorURL   string `json:"generator_url,omitempty" input:"max=2048"`
	GeneratorModel string `json:"generator_model,omitempty" input:"max=256"`
	// Operators is the degradation chain (default: every operator).
	Operators []preference.Operator `json:"operators,omitempty" input:"max=32"`
	// Scoring overrides the default scoring configuration.
	Scoring *preference.Config `json:"scoring,omitempty"`
}

// PreferenceConfig is the stored configuration of a preference competition.
type PreferenceConfig struct {
	// Scoring is the agreement scoring and trust gate (see preference.Config).
	Scoring preference.Config `json:"scoring"`
	// Criteria is the default criteria of the competition's tasks.
	Criteria preference.Criteria `json:"criteria"`
	// TTLSeconds is the deadline of tasks without their own, counted from
	// the competition's creation.
	TTLSeconds int64 `json:"ttl_seconds"`
	// Source is "organic" (tasks supplied) or "synthetic" (seeds degraded).
	Source string `json:"source"`
	// Mode, Generator and Operators say how synthetic tasks were made.
	Mode      preference.Mode       `json:"mode,omitempty"`
	Generator string                `json:"generator,omitempty"`
	Operators []preference.Operator `json:"operators,omitempty"`
}

// TTL returns the configured task lifetime.
func (c PreferenceConfig) TTL() time.Duration { return time.Duration(c.TTLSeconds) * time.Second }

// Describe explains the competition's rules for `crucible competition show`.
func (c PreferenceConfig) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Tasks: %s, criteria %q, open for %s after creation unless a task sets its own deadline.\n",
		c.Source, c.Criteria, c.TTL())
	if c.Source == preference.SourceSynthetic {
		fmt.Fprintf(&b, "Ground truth by degradation: mode %q, operators %v", c.Mode, c.Operators)
		if c.Generator != "" {
			fmt.Fprintf(&b, ", generator %s", c.Generator)
		}
		b.WriteString(".\n")
	}
	b.WriteString(c.Scoring.Describe())
	return b.String()
}

// organicLine is one line of an organic task file.
type organicLine struct {
	ID          string              `json:"id"`
	Instruction string              `json:"instruction"`
	Responses   []string            `json:"responses"`
	Criteria    preference.Criteria `json:"criteria,omitempty"`
	Deadline    *time.Time          `json:"deadline,omitempty"`
}

// PreparePreference validates a preference competition. The dataset is
// JSONL of organic tasks ({"id", "instruction", "responses": [3–6 texts],
// optional "criteria" and RFC 3339 "deadline"}) or of seed instructions
// (preference.ParseSeeds); the first non-blank line decides which: a line
// with "responses" makes the file organic. An empty dataset means the
// shipped seeds. Tasks without a deadline get one when they are stored:
// the competition's creation time plus the TTL.
func PreparePreference(ctx context.Context, spec CompetitionSpec, p PreferenceSpec) (Prepared, error) {
	cfg := PreferenceConfig{Scoring: preference.DefaultConfig(), Criteria: p.Criteria, TTLSeconds: int64(DefaultPreferenceTTL / time.Second)}
	if p.Scoring != nil {
		cfg.Scoring = *p.Scoring
	}
	if err := cfg.Scoring.Validate(); err != nil {
		return Prepared{}, err
	}
	if cfg.Criteria == "" {
		cfg.Criteria = preference.CriteriaRank
	}
	if cfg.Criteria != preference.CriteriaRank && cfg.Criteria != preference.CriteriaScore {
		return Prepared{}, fmt.Errorf("criteria %q: want %q or %q", cfg.Criteria, preference.CriteriaRank, preference.CriteriaScore)
	}
	if p.TTL != "" {
		ttl, err := time.ParseDuration(p.TTL)
		if err != nil || ttl < time.Second {
			return Prepared{}, fmt.Errorf("ttl %q: want a Go duration of at least 1s, like 24h or 90m", p.TTL)
		}
		cfg.TTLSeconds = int64(ttl / time.Second)
	}
	var tasks []preference.Task
	var err error
	if isOrganic(spec.Dataset) {
		cfg.Source = preference.SourceOrganic
		tasks, err = parseOrganic(spec.Dataset, spec.DatasetName, cfg.Criteria)
	} else {
		cfg.Source = preference.SourceSynthetic
		tasks, err = generateTasks(ctx, spec, p, &cfg)
	}
	if err != nil {
		return Prepared{}, err
	}
	if len(tasks) == 0 {
		return Prepared{}, fmt.Errorf("dataset %s has no tasks", spec.DatasetName)
	}
	config, err := json.Marshal(cfg)
	if err != nil {
		return Prepared{}, err
	}
	items := make([]json.RawMessage, len(tasks))
	h := sha256.New()
	for i, t := range tasks {
		if items[i], err = json.Marshal(t); err != nil {
			return Prepared{}, err
		}
		h.Write(items[i])
		h.Write([]byte("\n"))
	}
	return Prepared{Config: config, DatasetDigest: hex.EncodeToString(h.Sum(nil)), Items: items}, nil
}

// isOrganic reports whether the first non-blank line holds "responses".
func isOrganic(data []byte) bool {
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var probe map[string]json.RawMessage
		if json.Unmarshal(line, &probe) != nil {
			return false
		}
		_, ok := probe["responses"]
		return ok
	}
	return false
}

func parseOrganic(data []byte, name string, criteria preference.Criteria) ([]preference.Task, error) {
	var tasks []preference.Task
	ids := map[string]int{}
	opt := jsonl.Options{MaxLineBytes: preference.MaxSeedLineBytes, MaxValues: MaxPreferenceTasks, DisallowUnknownFields: true}
	err := jsonl.Each(bytes.NewReader(data), opt, func(n int, l organicLine) error {
		if l.ID == "" {
			l.ID = fmt.Sprintf("task-%d", n)
		}
		if prev, dup := ids[l.ID]; dup {
			return fmt.Errorf("task id %q already used on line %d", l.ID, prev)
		}
		ids[l.ID] = n
		if l.Criteria == "" {
			l.Criteria = criteria
		}
		oc := preference.OrganicConfig{ID: l.ID, Instruction: l.Instruction, Responses: l.Responses, Criteria: l.Criteria}
		if l.Deadline != nil {
			oc.Deadline = l.Deadline.UTC()
		}
		t, err := preference.NewOrganic(oc)
		if err != nil {
			return err
		}
		tasks = append(tasks, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", name, err)
	}
	return tasks, nil
}

func generateTasks(ctx context.Context, spec CompetitionSpec, p PreferenceSpec, cfg *PreferenceConfig) ([]preference.Task, error) {
	seeds := preference.DefaultSeeds()
	if len(bytes.TrimSpace(spec.Dataset)) > 0 {
		var err error
		if seeds, err = preference.ParseSeeds(bytes.NewReader(spec.Dataset), spec.DatasetName); err != nil {
			return nil, err
		}
		if len(seeds) > MaxPreferenceTasks {
			return nil, fmt.Errorf("seeds %s: %d seeds is over the limit of %d", spec.DatasetName, len(seeds), MaxPreferenceTasks)
		}
	}
	gc := preference.GeneratorConfig{Model: p.GeneratorModel, Operators: p.Operators, Mode: p.Mode, Criteria: cfg.Criteria,
		Now: func() time.Time { return time.Time{} }, Salt: rand.Text()}
	if p.GeneratorURL != "" || p.GeneratorModel != "" {
		if p.GeneratorModel == "" {
			return nil, errors.New("a generator needs generator_model (and generator_url, or none for the server's own generator)")
		}
		client, err := spec.Egress.Model(RoleGenerator, p.GeneratorURL)
		if err != nil {
			return nil, err
		}
		gc.Client = client
		cfg.Generator = p.GeneratorModel + " at " + cmp.Or(p.GeneratorURL, "the server's own generator")
	} else if gc.Mode == "" {
		gc.Mode = preference.ModeAnswer
	}
	if gc.Mode == "" {
		gc.Mode = preference.ModeBoth
	}
	if gc.Client == nil && gc.Mode != preference.ModeAnswer {
		return nil, fmt.Errorf("mode %q asks a generator model: set generator_url and generator_model, or use mode %q with seeds that carry a reference", gc.Mode, preference.ModeAnswer)
	}
	if len(gc.Operators) == 0 {
		gc.Operators = preference.DefaultOperators
	}
	cfg.Mode, cfg.Operators = gc.Mode, gc.Operators
	gen, err := preference.NewGenerator(gc)
	if err != nil {
		return nil, err
	}
	tasks := make([]preference.Task, 0, len(seeds))
	for _, s := range seeds {
		if gc.Client == nil && strings.TrimSpace(s.Reference) == "" {
			return nil, fmt.Errorf("seed %s has no reference answer, and there is no generator model to write one", s.ID)
		}
		t, err := gen.Generate(ctx, s.ID, s)
		if err != nil {
			return nil, fmt.Errorf("seed %s: %w", s.ID, err)
		}
		t.Deadline = time.Time{} // set from the competition's creation when stored
		tasks = append(tasks, t)
	}
	return tasks, nil
}

// PreferenceSettings decodes a preference competition's configuration.
func PreferenceSettings(c competition.Competition) (PreferenceConfig, error) {
	if c.Kind != preference.Name {
		return PreferenceConfig{}, fmt.Errorf("competition %s is a %s competition, not a preference one", c.ID, c.Kind)
	}
	var cfg PreferenceConfig
	if err := json.Unmarshal(c.Config, &cfg); err != nil {
		return cfg, fmt.Errorf("competition %s config: %w", c.ID, err)
	}
	if cfg.TTLSeconds <= 0 {
		cfg.TTLSeconds = int64(DefaultPreferenceTTL / time.Second)
	}
	return cfg, nil
}

// PreferenceTasks decodes a preference competition's stored items; a task
// without a deadline gets the competition's creation time plus its TTL.
func PreferenceTasks(c competition.Competition, items []json.RawMessage) ([]preference.Task, error) {
	cfg, err := PreferenceSettings(c)
	if err != nil {
		return nil, err
	}
	tasks := make([]preference.Task, len(items))
	for i, raw := range items {
		if err := json.Unmarshal(raw, &tasks[i]); err != nil {
			return nil, fmt.Errorf("competition %s task %d: %w", c.ID, i, err)
		}
		if tasks[i].Deadline.IsZero() {
			tasks[i].Deadline = c.CreatedAt.Add(cfg.TTL()).UTC()
		}
	}
	return tasks, nil
}
