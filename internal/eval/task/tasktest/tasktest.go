// Package tasktest holds the task kind's baseline policies, served by
// internal/baseline's model server (as net/http/httptest is beside
// net/http): deterministic models that answer any lm-eval task file, so
// task evaluations run end to end without a real model.
//
// # Policies
//
//   - oracle: the gold answer of each item;
//   - first: the first choice; for a generation without choices, the
//     target of the task's first item (a fixed, wrong-but-plausible answer);
//   - random: a choice fixed by (Config.Seed, item index) through FNV-1a,
//     the same in every process; for a generation without choices, the
//     target of an item picked the same way;
//   - replay: answers recorded in a file of {"match", "response"} lines
//     (ReadResponses): a request gets the response of the longest match
//     contained in its prompt, and none is baseline.ErrNoMatch (a 404).
//
// # Recognising items
//
// A request is about an item when its prompt ends with the item's doc
// text (doc_to_text rendered alone), optionally followed by one of the
// item's log-likelihood continuations (target_delimiter + choice). Matching
// the end, not the whole prompt, recognises the item whatever description
// and few-shot examples (drawn with whatever seed) precede it. The longest
// doc text wins, ties to the lowest index, so items with identical texts
// all get the first one's answer. Chat prompts are the last message's
// content, as it is or with trailing white space removed. A prompt about no item is
// baseline.ErrNoMatch (a 404).
//
// # Answers
//
// A generation (chat, or a completion without a matching continuation) is
// the answer's text: the chosen choice's text, or the chosen target — for
// GSM8K the reference solution ending "#### 18", which the task's filters
// extract. A log-likelihood request (the prompt ends with a continuation)
// scores the continuation's tokens 0 each when it is the policy's choice
// and -5 each otherwise, so the choice's sum is 0 and every other is
// negative: acc and acc_norm both pick it, whatever the lengths. A
// loglikelihood task's single continuation is always greedy (the baseline
// server reports each token as its own top log-probability).
//
// Like every kind, this package never imports the store, jobs, api or app.
package tasktest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"unicode/utf8"

	"crucible/internal/baseline"
	"crucible/internal/eval/task"
	"crucible/internal/inference"
	"crucible/internal/jsonl"
)

// Policy names (model names "baseline-<policy>").
const (
	PolicyOracle = "oracle"
	PolicyFirst  = "first"
	PolicyRandom = "random"
	PolicyReplay = "replay"
)

// Names lists every task policy.
func Names() []string {
	return []string{PolicyOracle, PolicyFirst, PolicyRandom, PolicyReplay}
}

// Log-probabilities of a continuation's tokens.
const (
	ChosenLogprob = 0.0
	OtherLogprob  = -5.0
)

// Bounds on a responses file.
const (
	MaxResponses     = 100_000
	MaxResponseBytes = 1 << 20
)

// Config configures the task policies.
type Config struct {
	// Policies lists the policies to serve, one model each.
	Policies []string
	// Task and Data give the items oracle, first and random answer; they
	// are required by those three.
	Task *task.Config
	Data *task.Data
	// Seed fixes the random policy's answers.
	Seed uint64
	// Responses are the replay policy's answers; required by replay.
	Responses []Response
}

// Response is one line of a replay file: the response given to a prompt
// containing Match.
type Response struct {
	Match    string `json:"match"`
	Response string `json:"response"`
}

// ReadResponses reads a replay file: one {"match", "response"} object a
// line (unknown keys refused), at most MaxResponses lines of
// MaxResponseBytes each, matches non-empty and distinct.
func ReadResponses(r io.Reader) ([]Response, error) {
	var out []Response
	seen := map[string]int{}
	err := jsonl.Each(r, jsonl.Options{MaxLineBytes: MaxResponseBytes, MaxValues: MaxResponses, DisallowUnknownFields: true},
		func(line int, v Response) error {
			if v.Match == "" {
				return errors.New("match must not be empty")
			}
			if prev, ok := seen[v.Match]; ok {
				return fmt.Errorf("match %q repeats line %d", v.Match, prev)
			}
			seen[v.Match] = line
			out = append(out, v)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("responses: %w", err)
	}
	return out, nil
}

// Policies returns cfg's policies for a baseline server, in order.
func Policies(cfg Config) ([]baseline.Named, error) {
	var items *items
	var out []baseline.Named
	for _, name := range cfg.Policies {
		switch name {
		case PolicyReplay:
			if len(cfg.Responses) == 0 {
				return nil, errors.New("baseline: the replay policy needs responses (--responses FILE)")
			}
			out = append(out, baseline.Named{Name: name, Policy: replay(cfg.Responses)})
			continue
		case PolicyOracle, PolicyFirst, PolicyRandom:
		default:
			return nil, fmt.Errorf("baseline: unknown task policy %q (want %s)", name, strings.Join(Names(), ", "))
		}
		if items == nil {
			if cfg.Task == nil || cfg.Data == nil {
				return nil, fmt.Errorf("baseline: the %s policy needs a task and its data (--task FILE)", name)
			}
			var err error
			if items, err = newItems(cfg.Task, cfg.Data); err != nil {
				return nil, err
			}
		}
		p := &policy{items: items, answers: make([]answer, len(items.list))}
		for i := range items.list {
			p.answers[i] = items.answer(name, cfg.Seed, i)
		}
		out = append(out, baseline.Named{Name: name, Policy: p})
	}
	return out, nil
}

// items are a task's items, each with its doc text alone.
type items struct {
	list  []task.Item
	texts []string
}

func newItems(c *task.Config, d *task.Data) (*items, error) {
	// The doc text alone: no description, no few-shot examples, so a
	// prompt is recognised by its end whatever precedes it.
	bare := *c
	bare.Description = nil
	list, err := bare.Items(&task.Data{Eval: d.Eval}, 0, 0)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%s: no items", c.File)
	}
	it := &items{list: list, texts: make([]string, len(list))}
	for i, x := range list {
		it.texts[i] = x.Prompt
	}
	return it, nil
}

// answer is a policy's answer to one item: the choice it scores highest
// (-1 for none) and the text it generates.
type answer struct {
	choice int
	text   string
}

func (it *items) answer(policy string, seed uint64, i int) answer {
	x := it.list[i]
	k := 0
	switch policy {
	case PolicyOracle:
		return answer{choice: gold(x), text: x.Target}
	case PolicyRandom:
		h := fnv.New64a()
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], seed)
		binary.BigEndian.PutUint64(b[8:], uint64(i))
		h.Write(b[:])
		n := len(x.Choices)
		if n == 0 {
			n = len(it.list)
		}
		k = int(h.Sum64() % uint64(n))
	}
	if len(x.Choices) == 0 {
		return answer{choice: -1, text: it.list[k].Target}
	}
	return answer{choice: k, text: x.Choices[k]}
}

// gold is the index of the item's scored continuation the oracle prefers:
// the gold choice, the single target continuation (loglikelihood), or -1.
func gold(x task.Item) int {
	switch {
	case len(x.Choices) > 0:
		return x.Gold
	case len(x.Requests) > 0 && x.Requests[0].Continuation != "":
		return 0
	}
	return -1
}

// recognise returns the item prompt is about and the continuation it ends
// with (-1 for none), or item -1.
func (it *items) recognise(prompt string) (item, cont int) {
	item, cont = -1, -1
	for i, text := range it.texts {
		// An empty text would end every prompt.
		if text == "" || item >= 0 && len(text) <= len(it.texts[item]) {
			continue
		}
		if strings.HasSuffix(prompt, text) {
			item, cont = i, -1
			continue
		}
		for k, r := range it.list[i].Requests {
			if r.Continuation != "" && strings.HasSuffix(prompt, text+r.Continuation) {
				item, cont = i, k
				break
			}
		}
	}
	return item, cont
}

// policy answers every item with a fixed answer.
type policy struct {
	*items
	answers []answer
}

// Chat generates the answer to the item of the last message.
func (p *policy) Chat(msgs []inference.ChatMessage) (string, error) {
	last := msgs[len(msgs)-1].Content
	item, _ := p.recognise(last)
	if item < 0 {
		item, _ = p.recognise(strings.TrimRight(last, " \t\r\n"))
	}
	if item < 0 {
		return "", fmt.Errorf("baseline: the message is about no item of the task: %w", baseline.ErrNoMatch)
	}
	return p.answers[item].text, nil
}

// Complete generates the item's answer and scores the continuation the
// prompt ends with.
func (p *policy) Complete(prompt string) (baseline.Completion, error) {
	item, cont := p.recognise(prompt)
	if item < 0 {
		return baseline.Completion{}, fmt.Errorf("baseline: the prompt is about no item of the task: %w", baseline.ErrNoMatch)
	}
	a := p.answers[item]
	c := baseline.Completion{Text: a.text, ScoredFrom: -1}
	if cont >= 0 {
		c.ScoredFrom = utf8.RuneCountInString(prompt) - utf8.RuneCountInString(p.list[item].Requests[cont].Continuation)
		c.Logprob = OtherLogprob
		if cont == a.choice {
			c.Logprob = ChosenLogprob
		}
	}
	return c, nil
}

// replay answers with recorded responses.
type replay []Response

func (r replay) find(prompt string) (string, error) {
	best := -1
	for i, x := range r {
		if (best < 0 || len(x.Match) > len(r[best].Match)) && strings.Contains(prompt, x.Match) {
			best = i
		}
	}
	if best < 0 {
		return "", fmt.Errorf("baseline: no recorded response matches the prompt: %w", baseline.ErrNoMatch)
	}
	return r[best].Response, nil
}

// Chat answers the messages joined by newlines, as the server counts them.
func (r replay) Chat(msgs []inference.ChatMessage) (string, error) {
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		parts[i] = m.Content
	}
	return r.find(strings.Join(parts, "\n"))
}

// Complete generates the recorded response and scores nothing.
func (r replay) Complete(prompt string) (baseline.Completion, error) {
	text, err := r.find(prompt)
	return baseline.Completion{Text: text, ScoredFrom: -1}, err
}
