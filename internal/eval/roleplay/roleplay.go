// Package roleplay owns the roleplay evaluation kind: persona sets (character
// cards in JSONL, a small set shipped in data/), the deterministic planning
// of conversation items from a seed (Plan), the chat template that turns a
// card and a conversation into OpenAI chat messages, the judge prompts and
// the parsing of their structured JSON, and an eval.Evaluator that scores a
// submitted model's in-character replies on quality, creativity, vibe,
// latency and size behind a coherence gate. Cross-item parts of the score
// (repetition across replies, near duplicates) are computed by Aggregate,
// which the server and the local `crucible eval` share.
//
// # Score
//
// Per item, with every component in [0,1] and the weights of Scoring:
//
//	item = coherent × (wQ·quality·creativity + wV·vibe + wL·latency + wS·size) / (wQ+wV+wL+wS)
//
// Creativity modifies quality (a model that regurgitates cannot earn quality)
// rather than having a weight of its own. Aggregate replaces each item's
// creativity by its final value (cross-sample penalties applied), zeroes all
// items when fewer than Thresholds.MinCoherent of them are coherent, applies
// the post-evaluation multiplier and clamps to [0,1]; the total is the mean.
//
// Size counts only with a parameter count the evaluation trusts
// (Config.Params, or with Config.DeclaredParams the model server's own
// declaration); without one the size weight is left out and the others
// renormalise (Scoring.SizeMissing; competitions stored before this scored
// it 0 and keep doing so).
//
// # Presets
//
// Scoring.Preset names the formulas: PresetCrucible (the above, the
// default) or one of the Dippy subnet's scoring eras, PresetDippyJul2024,
// PresetDippyNov2024, PresetDippyFeb2025 and PresetDippyJudge, each with
// its own weights, quality-creativity combination, vibe, latency and size
// definitions and coherence rule, read from Dippy's code (presets.go names
// the file of every constant).
//
// This package must never import the store, the job queue or the API.
package roleplay

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"crucible/internal/jsonl"
)

// Name is the kind's name: the registry's key and every competition's kind.
const Name = "roleplay"

// MaxLineBytes is the longest persona line ParsePersonas accepts.
const MaxLineBytes = 256 << 10

// Character is a character card: who the model plays.
type Character struct {
	// Name is the character's name. Required, unique within a set.
	Name string `json:"name"`
	// Persona describes the character's personality. Required.
	Persona string `json:"persona"`
	// Scenario sets the scene of the conversation. Optional.
	Scenario string `json:"scenario,omitempty"`
	// Greeting is the character's first message. Required.
	Greeting string `json:"greeting"`
	// ExampleDialogue shows the character's voice. Optional.
	ExampleDialogue []Exchange `json:"example_dialogue,omitempty"`
	// Openers are candidate first user messages; when empty, Plan uses
	// DefaultOpeners.
	Openers []string `json:"openers,omitempty"`
}

// Exchange is one user message and the character's answer in an example
// dialogue.
type Exchange struct {
	User      string `json:"user"`
	Character string `json:"character"`
}

// DefaultOpeners returns the user's opening lines for characters without
// Openers of their own.
func DefaultOpeners() []string {
	return []string{
		"Hi there. I did not expect to meet anyone here. Who are you?",
		"Sorry to interrupt, but could you help me with something?",
		"This place is strange. How long have you been here?",
		"You look like you have a story to tell. What happened?",
	}
}

//go:embed data/personas.jsonl
var defaultPersonas []byte

// DefaultPersonasName names the shipped persona set.
const DefaultPersonasName = "crucible-personas-v1"

// DefaultPersonas returns the shipped persona set (data/personas.jsonl),
// twelve original characters. Each call returns a fresh copy.
func DefaultPersonas() ([]Character, error) {
	return ParsePersonas(bytes.NewReader(defaultPersonas), DefaultPersonasName)
}

// ParsePersonas reads a JSONL persona set named name: one Character object
// per non-blank line. Unknown fields, a missing or empty name, persona or
// greeting, an example exchange with an empty side, an empty opener, a
// duplicate name and a line over MaxLineBytes fail the whole parse with an
// error naming the line ("personas x: line 3: missing \"greeting\""); an
// empty set is an error too. Text fields are trimmed.
func ParsePersonas(r io.Reader, name string) ([]Character, error) {
	var out []Character
	seen := map[string]int{}
	opt := jsonl.Options{MaxLineBytes: MaxLineBytes, DisallowUnknownFields: true}
	err := jsonl.Each(r, opt, func(line int, c Character) error {
		c, err := checkPersona(c)
		if err != nil {
			return err
		}
		key := strings.ToLower(c.Name)
		if first, dup := seen[key]; dup {
			return fmt.Errorf("duplicate name %q (first on line %d)", c.Name, first)
		}
		seen[key] = line
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("personas %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("personas %s: no personas", name)
	}
	return out, nil
}

// ParsePersonasFile parses the JSONL persona set at path, named after the
// file without its extension.
func ParsePersonasFile(path string) ([]Character, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load personas: %w", err)
	}
	defer f.Close()
	return ParsePersonas(f, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)))
}

// checkPersona trims c's text fields and reports the first invalid one.
func checkPersona(c Character) (Character, error) {
	c.Name = strings.TrimSpace(c.Name)
	c.Persona = strings.TrimSpace(c.Persona)
	c.Scenario = strings.TrimSpace(c.Scenario)
	c.Greeting = strings.TrimSpace(c.Greeting)
	for _, f := range []struct{ key, v string }{{"name", c.Name}, {"persona", c.Persona}, {"greeting", c.Greeting}} {
		if f.v == "" {
			return Character{}, fmt.Errorf("missing or empty %q", f.key)
		}
	}
	if strings.ContainsAny(c.Name, "\n\r") {
		return Character{}, errors.New(`"name" must be one line`)
	}
	for i, ex := range c.ExampleDialogue {
		ex.User, ex.Character = strings.TrimSpace(ex.User), strings.TrimSpace(ex.Character)
		if ex.User == "" || ex.Character == "" {
			return Character{}, fmt.Errorf(`"example_dialogue"[%d] needs non-empty "user" and "character"`, i)
		}
		c.ExampleDialogue[i] = ex
	}
	for i, o := range c.Openers {
		if c.Openers[i] = strings.TrimSpace(o); c.Openers[i] == "" {
			return Character{}, fmt.Errorf(`"openers"[%d] is empty`, i)
		}
	}
	return c, nil
}

// PersonaDigest returns the hex SHA-256 of the canonical JSON of a persona
// set, so two sets with the same cards have the same digest.
func PersonaDigest(cs []Character) string {
	return digestJSON(cs)
}

func digestJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen for this package's plain types
		panic(fmt.Sprintf("roleplay: digest: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
