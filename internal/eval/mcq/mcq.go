// Package mcq owns the multiple-choice evaluation kind: datasets (JSONL in
// the Social IQa or a generic shape), the prompt template, and an
// eval.Evaluator that asks a model either generatively (one chat
// completion, the answer read as the task package's mcq_answer filter reads
// it, task.ExtractChoice) or by log likelihood (one scored completion per
// choice, scored by the task package's multiple_choice path). The task
// preset social_iqa:mcq is the Social IQa shape with the default prompt as
// an lm-eval task file.
//
// A benchmark is data (a dataset plus a template), not code. This package
// must never import the store, the job queue or the API.
package mcq

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"crucible/internal/jsonl"
)

// Name is the kind's name: the registry's key and every competition's kind.
const Name = "mcq"

// MaxLineBytes is the longest dataset line Parse accepts.
const MaxLineBytes = 1 << 20

// MaxChoices is the largest number of choices an item may have (A..Z).
const MaxChoices = 26

// Item is one multiple-choice question.
type Item struct {
	// ID identifies the item; without an "id" in the file it is ContentID
	// of the item, so the same row has the same id (and the dataset the
	// same digest) whatever the file is called and wherever the row sits.
	ID string `json:"id"`
	// Context is optional text the question refers to.
	Context string `json:"context"`
	// Question is the question text.
	Question string `json:"question"`
	// Choices are the candidate answers, at least two.
	Choices []string `json:"choices"`
	// Answer is the 0-based index of the correct choice.
	Answer int `json:"answer"`
}

// Dataset is a parsed multiple-choice dataset.
type Dataset struct {
	// Name names the dataset, e.g. "siqa-dev".
	Name string `json:"name"`
	// Items are the questions in file order.
	Items []Item `json:"items"`
	// Digest is the hex SHA-256 of the canonical JSON encoding of Items, so
	// two datasets with the same questions have the same digest.
	Digest string `json:"digest"`
}

// rawLine accepts both supported shapes on one line.
type rawLine struct {
	ID       json.RawMessage `json:"id"`
	Context  *string         `json:"context"`
	Question *string         `json:"question"`
	// Social IQa shape.
	AnswerA *string         `json:"answerA"`
	AnswerB *string         `json:"answerB"`
	AnswerC *string         `json:"answerC"`
	Label   json.RawMessage `json:"label"`
	// Generic shape.
	Choices []string `json:"choices"`
	Answer  *int     `json:"answer"`
}

// Parse reads a JSONL dataset named name. Each non-blank line is one item in
// either shape:
//
//	Social IQa: {"context", "question", "answerA", "answerB", "answerC", "label"}
//	            with label "1".."3" (1 = answerA); a number is accepted too.
//	generic:    {"question", "choices": [...], "answer": <0-based int>}
//	            with optional "context" and "id".
//
// Shapes may be mixed. Any bad line (invalid JSON, a missing field, a label
// or answer out of range, fewer than two choices, an empty choice, a
// duplicate id, a line over MaxLineBytes) fails the whole parse with an error
// naming the line; an empty dataset is an error too.
func Parse(r io.Reader, name string) (*Dataset, error) {
	d := &Dataset{Name: name}
	seen := map[string]int{}
	// next is, per content id, the occurrence number its next repeat
	// tries first, so k repeats of one row cost O(k), not O(k²): a
	// dataset of the same row over and over must not stall its parse.
	next := map[string]int{}
	err := jsonl.Each(r, jsonl.Options{MaxLineBytes: MaxLineBytes}, func(line int, raw rawLine) error {
		it, err := parseLine(raw)
		if err != nil {
			return err
		}
		if it.ID == "" {
			// Real datasets repeat questions (Social IQa's dev split does):
			// a repeat is told apart by its occurrence, which depends on the
			// rows alone, not on the file's name.
			id := ContentID(it)
			it.ID = id
			n := max(next[id], 2)
			for ; seen[it.ID] != 0; n++ {
				it.ID = fmt.Sprintf("%s-%d", id, n)
			}
			next[id] = n
		}
		if first, dup := seen[it.ID]; dup {
			return fmt.Errorf("duplicate id %q (first on line %d)", it.ID, first)
		}
		seen[it.ID] = line
		d.Items = append(d.Items, it)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", name, err)
	}
	if len(d.Items) == 0 {
		return nil, fmt.Errorf("dataset %s: no items", name)
	}
	canon, err := json.Marshal(d.Items)
	if err != nil {
		return nil, fmt.Errorf("dataset %s: digest: %w", name, err)
	}
	sum := sha256.Sum256(canon)
	d.Digest = hex.EncodeToString(sum[:])
	return d, nil
}

// ParseFile parses the JSONL dataset at path, named after the file without
// its extension.
func ParseFile(path string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load dataset: %w", err)
	}
	defer f.Close()
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return Parse(f, name)
}

// ContentIDLen is the length of a ContentID in hex digits (64 bits:
// a collision within one dataset is out of reach).
const ContentIDLen = 16

// ContentID is the id of an item whose line has none: the first
// ContentIDLen hex digits of the SHA-256 of the item's normalised content,
// the canonical JSON of context, question and choices as parsing trimmed
// them, whichever shape the line had. The answer is left out: a model sees
// the rest in its prompt and could otherwise try each choice against an id
// it is shown; the dataset digest covers the answers.
func ContentID(it Item) string {
	canon, _ := json.Marshal(struct { // strings only: always encodes
		Context  string   `json:"context"`
		Question string   `json:"question"`
		Choices  []string `json:"choices"`
	}{it.Context, it.Question, it.Choices})
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])[:ContentIDLen]
}

func parseLine(raw rawLine) (Item, error) {
	var it Item
	if len(raw.ID) > 0 && string(raw.ID) != "null" {
		var s string
		if err := json.Unmarshal(raw.ID, &s); err != nil {
			var n json.Number
			if err := json.Unmarshal(raw.ID, &n); err != nil {
				return Item{}, fmt.Errorf(`"id" must be a string or a number, got %s`, raw.ID)
			}
			s = n.String()
		}
		if strings.TrimSpace(s) == "" {
			return Item{}, errors.New(`"id" is empty`)
		}
		it.ID = s
	}
	if raw.Question == nil {
		return Item{}, errors.New(`missing "question"`)
	}
	it.Question = strings.TrimSpace(*raw.Question)
	if it.Question == "" {
		return Item{}, errors.New(`"question" is empty`)
	}
	if raw.Context != nil {
		it.Context = strings.TrimSpace(*raw.Context)
	}
	siqa := raw.AnswerA != nil || raw.AnswerB != nil || raw.AnswerC != nil || len(raw.Label) > 0
	switch {
	case siqa && raw.Choices != nil:
		return Item{}, errors.New(`mixes Social IQa fields (answerA..answerC, label) with "choices"`)
	case siqa:
		if raw.Context == nil {
			return Item{}, errors.New(`missing "context"`)
		}
		for _, f := range []struct {
			name string
			v    *string
		}{{"answerA", raw.AnswerA}, {"answerB", raw.AnswerB}, {"answerC", raw.AnswerC}} {
			if f.v == nil {
				return Item{}, fmt.Errorf("missing %q", f.name)
			}
			it.Choices = append(it.Choices, *f.v)
		}
		if len(raw.Label) == 0 {
			return Item{}, errors.New(`missing "label"`)
		}
		label, err := parseLabel(raw.Label)
		if err != nil {
			return Item{}, err
		}
		it.Answer = label - 1
	case raw.Choices != nil:
		it.Choices = raw.Choices
		if raw.Answer == nil {
			return Item{}, errors.New(`missing "answer"`)
		}
		it.Answer = *raw.Answer
	default:
		return Item{}, errors.New(`has neither Social IQa fields (answerA..answerC, label) nor "choices"`)
	}
	if len(it.Choices) < 2 {
		return Item{}, fmt.Errorf("has %d choices, want at least 2", len(it.Choices))
	}
	if len(it.Choices) > MaxChoices {
		return Item{}, fmt.Errorf("has %d choices, want at most %d", len(it.Choices), MaxChoices)
	}
	for i, c := range it.Choices {
		it.Choices[i] = strings.TrimSpace(c)
		if it.Choices[i] == "" {
			return Item{}, fmt.Errorf("choice %d is empty", i)
		}
	}
	if !siqa && (it.Answer < 0 || it.Answer >= len(it.Choices)) {
		return Item{}, fmt.Errorf("answer %d out of range 0..%d", it.Answer, len(it.Choices)-1)
	}
	return it, nil
}

func parseLabel(raw json.RawMessage) (int, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return 0, fmt.Errorf(`"label" must be a string or a number, got %s`, raw)
		}
		s = n.String()
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || v < 1 || v > 3 {
		return 0, fmt.Errorf("label %q out of range 1..3", s)
	}
	return v, nil
}
