package preference

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"crucible/internal/inference"
)

// Mode says where the degradation operators act.
type Mode string

const (
	// ModeBoth (the default) asks the model to answer each degraded
	// instruction and then applies the same operators to its answer, so the
	// ground-truth order holds even when the model ignores a degradation.
	ModeBoth Mode = "both"
	// ModeInstruction only degrades the instruction the model answers.
	ModeInstruction Mode = "instruction"
	// ModeAnswer gets one original answer (Seed.Reference when set, else the
	// model's) and degrades that answer's text.
	ModeAnswer Mode = "answer"
)

// GeneratorConfig configures a Generator.
type GeneratorConfig struct {
	// Client reaches the generator model; it may be nil only in ModeAnswer
	// with seeds that carry a Reference.
	Client *inference.Client
	// Model is the generator model's name.
	Model string
	// Operators is the degradation chain; level k applies the first k.
	// Two to five operators (three to six responses); default
	// DefaultOperators.
	Operators []Operator
	// Mode defaults to ModeBoth.
	Mode Mode
	// Criteria defaults to CriteriaRank.
	Criteria Criteria
	// TTL is the time from generation to the deadline (default 24h).
	TTL time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// MaxTokens bounds each generated answer (default 512).
	MaxTokens int
	// Salt mixes into the canonical shuffle; set it to a validator secret
	// so the canonical order cannot be predicted.
	Salt string
}

// Generator builds synthetic tasks from seed instructions.
type Generator struct {
	cfg GeneratorConfig
}

// NewGenerator validates cfg and returns a Generator.
func NewGenerator(cfg GeneratorConfig) (*Generator, error) {
	if len(cfg.Operators) == 0 {
		cfg.Operators = DefaultOperators
	}
	if n := len(cfg.Operators) + 1; n < MinResponses || n > MaxResponses {
		return nil, fmt.Errorf("generator: %d operators give %d responses, want %d to %d", len(cfg.Operators), n, MinResponses, MaxResponses)
	}
	for _, op := range cfg.Operators {
		if !op.Valid() {
			return nil, fmt.Errorf("generator: unknown operator %q", op)
		}
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeBoth
	case ModeBoth, ModeInstruction, ModeAnswer:
	default:
		return nil, fmt.Errorf("generator: unknown mode %q", cfg.Mode)
	}
	if cfg.Criteria == "" {
		cfg.Criteria = CriteriaRank
	}
	if cfg.Criteria != CriteriaRank && cfg.Criteria != CriteriaScore {
		return nil, fmt.Errorf("generator: unknown criteria %q", cfg.Criteria)
	}
	if cfg.Mode != ModeAnswer && cfg.Client == nil {
		return nil, errors.New("generator: a model client is required unless mode is answer")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 512
	}
	return &Generator{cfg: cfg}, nil
}

// Generate builds task id from seed s: level k (0 = original) is the answer
// to the instruction degraded by the first k operators (per the mode), and
// its ground-truth rank is k+1. Responses are stored in a shuffled
// canonical order. It fails when two levels give the same text.
func (g *Generator) Generate(ctx context.Context, id string, s Seed) (Task, error) {
	if err := s.validate(); err != nil {
		return Task{}, fmt.Errorf("generate %s: seed %s: %w", id, s.ID, err)
	}
	ops := g.cfg.Operators
	levels := make([]Response, len(ops)+1)
	var original string
	if g.cfg.Mode == ModeAnswer {
		original = s.Reference
		if original == "" {
			if g.cfg.Client == nil {
				return Task{}, fmt.Errorf("generate %s: seed %s has no reference and no model client is configured", id, s.ID)
			}
			var err error
			if original, err = g.answer(ctx, s.Prompt()); err != nil {
				return Task{}, fmt.Errorf("generate %s: original answer: %w", id, err)
			}
		}
	}
	inst := s
	for k := 0; k <= len(ops); k++ {
		if k > 0 {
			inst = ops[k-1].Instruction(inst)
		}
		var text string
		switch g.cfg.Mode {
		case ModeAnswer:
			text = original
		default:
			var err error
			if text, err = g.answer(ctx, inst.Prompt()); err != nil {
				return Task{}, fmt.Errorf("generate %s: level %d: %w", id, k, err)
			}
		}
		if g.cfg.Mode != ModeInstruction {
			for _, op := range ops[:k] {
				var err error
				if text, err = op.Answer(text, s.Kind); err != nil {
					return Task{}, fmt.Errorf("generate %s: level %d: %w", id, k, err)
				}
			}
		}
		names := make([]string, k)
		for i, op := range ops[:k] {
			names[i] = string(op)
		}
		levels[k] = Response{Text: text, Model: g.cfg.Model, Level: k, Operators: names}
	}
	seen := map[string]int{}
	for k, r := range levels {
		if j, dup := seen[r.Text]; dup {
			return Task{}, fmt.Errorf("generate %s: levels %d and %d gave the same answer; use mode %q", id, j, k, ModeBoth)
		}
		seen[r.Text] = k
	}
	sum := sha256.Sum256([]byte("canonical\x00" + g.cfg.Salt + "\x00" + id))
	rng := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(sum[:8]), binary.LittleEndian.Uint64(sum[8:16])))
	perm := rng.Perm(len(levels))
	t := Task{
		ID:          id,
		Instruction: s.Prompt(),
		Criteria:    g.cfg.Criteria,
		Deadline:    g.cfg.Now().Add(g.cfg.TTL),
		Source:      SourceSynthetic,
		Seed:        s.ID,
		Responses:   make([]Response, len(levels)),
		GroundTruth: make([]int, len(levels)),
	}
	for i, k := range perm {
		t.Responses[i] = levels[k]
		t.Responses[i].ID = responseID(id, i)
		t.GroundTruth[i] = k + 1
	}
	if err := t.Validate(); err != nil {
		return Task{}, fmt.Errorf("generate: %w", err)
	}
	return t, nil
}

// answer asks the generator model to answer prompt.
func (g *Generator) answer(ctx context.Context, prompt string) (string, error) {
	zero := 0.0
	resp, err := g.cfg.Client.Chat(ctx, inference.ChatRequest{
		Model: g.cfg.Model,
		Messages: []inference.ChatMessage{
			{Role: "system", Content: "Answer the user's instruction as well as you can. Put any code in fenced code blocks."},
			{Role: "user", Content: prompt},
		},
		MaxTokens:   g.cfg.MaxTokens,
		Temperature: &zero,
	})
	if err != nil {
		return "", err
	}
	if len(resp.Choices) == 0 || strings.TrimSpace(resp.Choices[0].Message.Content) == "" {
		return "", errors.New("generator model returned an empty answer")
	}
	return resp.Choices[0].Message.Content, nil
}
