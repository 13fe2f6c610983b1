package preference

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
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
	// with seeds that carry a Reference. When set, the model also rewrites
	// every level in its own words (see rewriteLevels), in every mode.
	Client *inference.Client
	// Model is the generator model's name.
	Model string
	// Operators are the degradations; each task applies them in its own
	// seeded order and level k has the first k of that order. Two to five
	// operators (three to six responses); default DefaultOperators.
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
	// OffTopic are prose paragraphs a degradation may insert as off-topic
	// drift (paragraphs of the task's own answer are skipped); default
	// the prose paragraphs of the shipped seeds' references. They make
	// some degraded answers longer than the original.
	OffTopic []string
	// Salt mixes into the canonical shuffle and the degradations' draws;
	// set it to a validator secret so neither can be predicted.
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
	if cfg.OffTopic == nil {
		for _, s := range DefaultSeeds() {
			cfg.OffTopic = append(cfg.OffTopic, proseParagraphs(s.Reference)...)
		}
	}
	return &Generator{cfg: cfg}, nil
}

// Generate builds task id from seed s: level k (0 = original) is the answer
// to the instruction degraded by the first k operators of the task's
// seeded operator order (per the mode), and its ground-truth rank is k+1.
// With a model client every level is then rewritten by the model.
// Responses are stored in a shuffled canonical order. It fails when two
// levels give the same text.
func (g *Generator) Generate(ctx context.Context, id string, s Seed) (Task, error) {
	if err := s.validate(); err != nil {
		return Task{}, fmt.Errorf("generate %s: seed %s: %w", id, s.ID, err)
	}
	rng := taskRand("degrade", g.cfg.Salt, id)
	// Each task degrades in its own order, so which operator comes first
	// (and so which length change the best degraded answer has) varies.
	ops := append([]Operator(nil), g.cfg.Operators...)
	rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
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
	var texts []string
	if g.cfg.Mode == ModeAnswer {
		var err error
		if texts, err = degradeChain(original, s.Kind, ops, drift(g.cfg.OffTopic, s, original, rng), rng); err != nil {
			return Task{}, fmt.Errorf("generate %s: %w", id, err)
		}
	}
	inst := s
	for k := 0; k <= len(ops); k++ {
		if k > 0 {
			inst = ops[k-1].Instruction(inst)
		}
		if g.cfg.Mode != ModeAnswer {
			answer, err := g.answer(ctx, inst.Prompt())
			if err != nil {
				return Task{}, fmt.Errorf("generate %s: level %d: %w", id, k, err)
			}
			text := answer
			if g.cfg.Mode == ModeBoth && k > 0 {
				if text, err = degradeDistinct(answer, s.Kind, ops[:k], drift(g.cfg.OffTopic, s, answer, rng), texts, rng); err != nil {
					return Task{}, fmt.Errorf("generate %s: level %d: %w", id, k, err)
				}
			}
			texts = append(texts, text)
		}
		names := make([]string, k)
		for i, op := range ops[:k] {
			names[i] = string(op)
		}
		levels[k] = Response{Text: texts[k], Model: g.cfg.Model, Level: k, Operators: names}
	}
	if g.cfg.Client != nil {
		if err := g.rewriteLevels(ctx, levels); err != nil {
			return Task{}, fmt.Errorf("generate %s: %w", id, err)
		}
	}
	seen := map[string]int{}
	for k, r := range levels {
		if j, dup := seen[r.Text]; dup {
			return Task{}, fmt.Errorf("generate %s: levels %d and %d gave the same answer; use mode %q", id, j, k, ModeBoth)
		}
		seen[r.Text] = k
	}
	perm := taskRand("canonical", g.cfg.Salt, id).Perm(len(levels))
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

// taskRand returns the random source of one use (purpose) for task id,
// keyed by the validator's salt: the same salt and id give the same task.
func taskRand(purpose, salt, id string) *rand.Rand {
	sum := sha256.Sum256([]byte(purpose + "\x00" + salt + "\x00" + id))
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(sum[:8]), binary.LittleEndian.Uint64(sum[8:16])))
}

// degradeAttempts bounds the draws degradeDistinct tries, and
// chainAttempts the chains degradeChain tries.
const (
	degradeAttempts = 8
	chainAttempts   = 4
)

// degradeChain returns the nested levels of ModeAnswer: level 0 is
// original and level k is level k-1 with ops[k-1] applied. A chain that
// gets stuck (an answer left too short for the next operator) is drawn
// again from the next rng state.
func degradeChain(original, kind string, ops []Operator, pool []string, rng *rand.Rand) ([]string, error) {
	var err error
	for range chainAttempts {
		err = nil
		texts := []string{original}
		for k := 1; k <= len(ops) && err == nil; k++ {
			var text string
			if text, err = degradeDistinct(texts[k-1], kind, ops[k-1:k], pool, texts, rng); err == nil {
				texts = append(texts, text)
			} else {
				err = fmt.Errorf("level %d: %w", k, err)
			}
		}
		if err == nil {
			return texts, nil
		}
	}
	return nil, err
}

// degradeDistinct applies ops to text in order and returns a result that
// differs from every text in earlier, drawing again (a different form or
// place) when a draw gives an earlier level's text or cannot apply.
func degradeDistinct(text, kind string, ops []Operator, pool, earlier []string, rng *rand.Rand) (string, error) {
	var lastErr error
	for range degradeAttempts {
		out, err := applyOps(text, kind, ops, pool, rng)
		if err != nil {
			lastErr = err
			continue
		}
		if !slices.Contains(earlier, out) {
			return out, nil
		}
		lastErr = errors.New("the degradation gave the text of an earlier level")
	}
	return "", lastErr
}

func applyOps(text, kind string, ops []Operator, pool []string, rng *rand.Rand) (string, error) {
	for _, op := range ops {
		var err error
		if text, err = op.Answer(text, kind, pool, rng); err != nil {
			return "", err
		}
	}
	return text, nil
}

// proseParagraphs returns the one-line prose paragraphs of text with at
// least six words: the material of off-topic drift.
func proseParagraphs(text string) []string {
	var out []string
	for _, b := range parseBlocks(text) {
		if p := strings.Join(b.units, " "); !b.code && !b.lines && words(p) >= 6 {
			out = append(out, p)
		}
	}
	return out
}

// drift returns the paragraphs a degradation of this task may stray
// into: three off-topic paragraphs from pool that answer does not contain,
// and one echo of the task itself (its instruction, or its requirements as
// statements), as an answer that parrots the question would. The mix
// keeps the overlap of an answer's words with the instruction from
// telling degraded answers apart: off-topic drift lowers it, an echo
// raises it (the 3:1 mix was measured with the surface rankers of
// surface_test.go).
func drift(pool []string, s Seed, answer string, rng *rand.Rand) []string {
	var foreign []string
	for _, p := range pool {
		if !strings.Contains(answer, p) {
			foreign = append(foreign, p)
		}
	}
	rng.Shuffle(len(foreign), func(i, j int) { foreign[i], foreign[j] = foreign[j], foreign[i] })
	out := foreign[:min(3, len(foreign))]
	if len(s.Requirements) == 0 || rng.IntN(2) == 0 {
		out = append(out, strings.TrimSpace(s.Instruction))
	} else {
		var reqs []string
		for _, r := range s.Requirements {
			r = strings.TrimSpace(r)
			if !strings.ContainsAny(r[len(r)-1:], ".!?") {
				r += "."
			}
			reqs = append(reqs, r)
		}
		out = append(out, strings.Join(reqs, " "))
	}
	return out
}

// answer asks the generator model to answer prompt.
func (g *Generator) answer(ctx context.Context, prompt string) (string, error) {
	return g.chat(ctx, "Answer the user's instruction as well as you can. Put any code in fenced code blocks.", prompt)
}
