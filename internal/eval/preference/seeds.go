package preference

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"strings"

	"crucible/internal/jsonl"
)

// Seed kinds.
const (
	// KindText is a prose seed.
	KindText = "text"
	// KindCode is a seed whose answer contains fenced code.
	KindCode = "code"
)

// Seed is one seed instruction: the base of a synthetic task.
type Seed struct {
	// ID names the seed; it must be unique within a file.
	ID string `json:"id"`
	// Kind is KindText (default) or KindCode; it picks how errors are
	// injected.
	Kind string `json:"kind,omitempty"`
	// Instruction is the task statement without its requirements.
	Instruction string `json:"instruction"`
	// Requirements are explicit constraints, listed after the instruction.
	Requirements []string `json:"requirements,omitempty"`
	// Reference, when set, is a good answer used instead of asking the
	// generator model for the original answer in ModeAnswer.
	Reference string `json:"reference,omitempty"`
}

// Prompt renders the full instruction: the statement and, when there are
// any, a "Requirements:" bullet list.
func (s Seed) Prompt() string {
	if len(s.Requirements) == 0 {
		return s.Instruction
	}
	var b strings.Builder
	b.WriteString(s.Instruction)
	b.WriteString("\n\nRequirements:\n")
	for _, r := range s.Requirements {
		b.WriteString("- ")
		b.WriteString(r)
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// MaxSeedLineBytes bounds one line of a seed file.
const MaxSeedLineBytes = 1 << 20

//go:embed data/seeds.jsonl
var shipped embed.FS

// DefaultSeeds returns the seed instructions shipped with Crucible.
func DefaultSeeds() []Seed {
	data, err := shipped.ReadFile("data/seeds.jsonl")
	if err != nil {
		panic(err) // embedded at build time
	}
	seeds, err := ParseSeeds(bytes.NewReader(data), "seeds.jsonl")
	if err != nil {
		panic(err) // tested
	}
	return seeds
}

// ParseSeeds reads seed instructions, one JSON object per line (blank lines
// are skipped). A bad line is reported with its line number.
func ParseSeeds(r io.Reader, name string) ([]Seed, error) {
	var seeds []Seed
	seen := map[string]int{}
	opt := jsonl.Options{MaxLineBytes: MaxSeedLineBytes, DisallowUnknownFields: true}
	err := jsonl.Each(r, opt, func(line int, s Seed) error {
		if err := s.validate(); err != nil {
			return err
		}
		if first, dup := seen[s.ID]; dup {
			return fmt.Errorf("duplicate id %q (first on line %d)", s.ID, first)
		}
		seen[s.ID] = line
		seeds = append(seeds, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seeds %s: %w", name, err)
	}
	if len(seeds) == 0 {
		return nil, fmt.Errorf("seeds %s: no seeds", name)
	}
	return seeds, nil
}

func (s *Seed) validate() error {
	if strings.TrimSpace(s.ID) == "" {
		return errors.New(`missing "id"`)
	}
	if strings.TrimSpace(s.Instruction) == "" {
		return errors.New(`missing "instruction"`)
	}
	switch s.Kind {
	case "":
		s.Kind = KindText
	case KindText, KindCode:
	default:
		return fmt.Errorf("kind %q: want %q or %q", s.Kind, KindText, KindCode)
	}
	for i, r := range s.Requirements {
		if strings.TrimSpace(r) == "" {
			return fmt.Errorf("requirement %d is empty", i)
		}
	}
	return nil
}
