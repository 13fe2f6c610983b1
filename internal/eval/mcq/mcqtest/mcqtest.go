// Package mcqtest holds the multiple-choice kind's baseline policies, served
// by internal/baseline's model server (as net/http/httptest is beside
// net/http): deterministic models that answer the items of an answer key,
// so evaluations, benchmarks and crash tests run without a real model.
//
// # Policies
//
//   - random: a pseudo-random choice fixed by (Config.Seed, item ID) through
//     FNV-1a, so the same item gets the same answer in every process;
//   - first: always the first choice;
//   - oracle: the answer key (requires Config.Key);
//   - overlap: the choice sharing the most distinct words (lowercased,
//     punctuation stripped) with the context and question, ties to the
//     lowest index.
//
// Chat answers "<letter>) <choice text>", e.g. "B) Go home and see Riley";
// completions generate " <letter>".
//
// # Recognising items
//
// The policies index Config.Key by each item's context and question text. A
// prompt (for chat, all message contents joined by newlines) is split into
// lines; each trimmed line, and the line without a short "Label:" prefix, is
// looked up. Items whose every choice text also appears in the prompt are
// candidates; the one with the most matching lines wins, ties to the lowest
// index. A prompt matching no item gets the fallback answer "A" (chat) or
// " A" (completions), never an error. Items whose prompts are identical
// (Social IQa dev has five such pairs with conflicting labels) all get the
// first item's answer, so oracle scores 1949/1954 there, not 1954.
//
// # Log likelihood
//
// If a completion prompt is a recognised item's prompt followed by one of
// its choice texts (the longest such suffix wins), that choice's tokens get
// -0.1 each when it is the policy's choice and -3.0 each otherwise (see
// internal/baseline for the other tokens).
//
// Like every kind, this package never imports the store, jobs, api or app.
package mcqtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
	"time"
	"unicode"

	"crucible/internal/baseline"
	"crucible/internal/eval/mcq"
	"crucible/internal/inference"
)

// Policy names accepted in Config.Policies (model names "baseline-<policy>").
const (
	PolicyRandom  = "random"
	PolicyFirst   = "first"
	PolicyOracle  = "oracle"
	PolicyOverlap = "overlap"
)

// Names lists every multiple-choice policy, the default of Config.Policies.
func Names() []string {
	return []string{PolicyRandom, PolicyFirst, PolicyOracle, PolicyOverlap}
}

// FallbackLetter is the answer given to a prompt that matches no item.
const FallbackLetter = "A"

// Config configures the multiple-choice policies.
type Config struct {
	// Policies lists the policies to serve, one model "baseline-<policy>"
	// each; empty means all four (Names).
	Policies []string
	// Key is the answer-key dataset used to recognise prompts; it is
	// required for the oracle policy and optional otherwise.
	Key *mcq.Dataset
	// Delay, when positive, is waited before every answer (New only).
	Delay time.Duration
	// Seed fixes the random policy's answers.
	Seed uint64
}

// New returns a baseline model server serving cfg's policies.
func New(cfg Config) (http.Handler, error) {
	ps, err := Policies(cfg)
	if err != nil {
		return nil, err
	}
	return baseline.New(baseline.Config{Policies: ps, Delay: cfg.Delay}), nil
}

// Policies returns cfg's policies for a baseline server, in order.
func Policies(cfg Config) ([]baseline.Named, error) {
	names := cfg.Policies
	if len(names) == 0 {
		names = Names()
	}
	k := &key{index: map[string][]int{}}
	if cfg.Key != nil {
		k.items = cfg.Key.Items
	}
	for i, it := range k.items {
		for _, text := range []string{it.Context, it.Question} {
			if text = strings.TrimSpace(text); text != "" {
				if l := k.index[text]; len(l) == 0 || l[len(l)-1] != i {
					k.index[text] = append(l, i)
				}
			}
		}
	}
	var out []baseline.Named
	for _, p := range names {
		switch p {
		case PolicyRandom, PolicyFirst, PolicyOverlap:
		case PolicyOracle:
			if len(k.items) == 0 {
				return nil, errors.New("baseline: the oracle policy needs Config.Key")
			}
		default:
			return nil, fmt.Errorf("baseline: unknown policy %q (want %s)", p, strings.Join(Names(), ", "))
		}
		picks := make([]int, len(k.items))
		for i, it := range k.items {
			picks[i] = pick(p, cfg.Seed, it)
		}
		out = append(out, baseline.Named{Name: p, Policy: &policy{key: k, picks: picks}})
	}
	return out, nil
}

// key recognises the items of an answer key in prompts.
type key struct {
	items []mcq.Item
	index map[string][]int // context or question text → item indexes
}

// policy answers every item with a fixed choice.
type policy struct {
	*key
	picks []int // choice index per item
}

// pick returns the choice a policy gives item it.
func pick(policy string, seed uint64, it mcq.Item) int {
	switch policy {
	case PolicyOracle:
		return it.Answer
	case PolicyRandom:
		h := fnv.New64a()
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], seed)
		h.Write(b[:])
		h.Write([]byte(it.ID))
		return int(h.Sum64() % uint64(len(it.Choices)))
	case PolicyOverlap:
		ctx := map[string]bool{}
		for _, w := range words(it.Context + " " + it.Question) {
			ctx[w] = true
		}
		best, bestN := 0, -1
		for i, c := range it.Choices {
			seen := map[string]bool{}
			n := 0
			for _, w := range words(c) {
				if ctx[w] && !seen[w] {
					seen[w] = true
					n++
				}
			}
			if n > bestN {
				best, bestN = i, n
			}
		}
		return best
	}
	return 0
}

// words lowercases s and splits it into words of letters and digits.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// recognise returns the index of the item prompt is about, or -1.
func (k *key) recognise(prompt string) int {
	if len(k.index) == 0 {
		return -1
	}
	var counts map[int]int
	add := func(text string) bool {
		l, ok := k.index[text]
		if !ok {
			return false
		}
		if counts == nil {
			counts = map[int]int{}
		}
		for _, i := range l {
			counts[i]++
		}
		return true
	}
	for line := range strings.SplitSeq(prompt, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || add(line) {
			continue
		}
		if j := strings.Index(line, ": "); j > 0 && j <= 24 {
			add(strings.TrimSpace(line[j+2:]))
		}
	}
	best, bestN := -1, 0
	for i, n := range counts {
		if n < bestN || (n == bestN && i > best) {
			continue
		}
		all := true
		for _, c := range k.items[i].Choices {
			if !strings.Contains(prompt, c) {
				all = false
				break
			}
		}
		if all {
			best, bestN = i, n
		}
	}
	return best
}

// Chat answers the item the messages are about with "<letter>) <text>".
func (p *policy) Chat(msgs []inference.ChatMessage) (string, error) {
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		parts[i] = m.Content
	}
	item := p.recognise(strings.Join(parts, "\n"))
	if item < 0 {
		return FallbackLetter, nil
	}
	choice := p.picks[item]
	return mcq.Letter(choice) + ") " + p.items[item].Choices[choice], nil
}

// Complete generates " <letter>" and scores a choice appended to the
// item's prompt.
func (p *policy) Complete(prompt string) (baseline.Completion, error) {
	item := p.recognise(prompt)
	if item < 0 {
		return baseline.Completion{Text: " " + FallbackLetter, ScoredFrom: -1}, nil
	}
	choices := p.items[item].Choices
	choice := p.picks[item]
	c := baseline.Completion{Text: " " + mcq.Letter(choice), ScoredFrom: -1}
	best := -1
	for i, ch := range choices {
		if strings.HasSuffix(prompt, ch) && (best < 0 || len(ch) > len(choices[best])) {
			best = i
		}
	}
	if best >= 0 {
		c.ScoredFrom = len([]rune(prompt)) - len([]rune(choices[best]))
		c.Logprob = -3.0
		if best == choice {
			c.Logprob = -0.1
		}
	}
	return c, nil
}
