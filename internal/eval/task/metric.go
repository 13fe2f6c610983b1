package task

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"unicode/utf8"

	"crucible/internal/inference"
	"crucible/internal/stats"

	"gopkg.in/yaml.v3"
)

func (p parser) metrics(n *yaml.Node) ([]Metric, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "metric_list: want a list")
	}
	var out []Metric
	for _, e := range n.Content {
		if e.Kind != yaml.MappingNode {
			return nil, p.errf(e, "metric_list: want a mapping with metric")
		}
		var m Metric
		for k := 0; k+1 < len(e.Content); k += 2 {
			key, val := e.Content[k], e.Content[k+1]
			var err error
			switch key.Value {
			case "metric":
				m.Name = val.Value
				if m.Name != "acc" && m.Name != "acc_norm" && m.Name != "exact_match" {
					return nil, p.errf(val, "metric %q is not supported (want acc, acc_norm or exact_match)", m.Name)
				}
			case "aggregation":
				if val.Value != "mean" {
					return nil, p.errf(val, "aggregation %q is not supported (want mean)", val.Value)
				}
			case "higher_is_better":
				_, err = p.boolean(val)
			case "ignore_case":
				m.IgnoreCase, err = p.boolean(val)
			case "ignore_punctuation":
				m.IgnorePunctuation, err = p.boolean(val)
			case "regexes_to_ignore":
				if val.Kind != yaml.SequenceNode {
					return nil, p.errf(val, "regexes_to_ignore: want a list")
				}
				for _, r := range val.Content {
					re, rerr := regexp.Compile(r.Value)
					if rerr != nil {
						return nil, p.errf(r, "regexes_to_ignore: %v (Go's RE2 syntax: no lookaround or backreferences)", rerr)
					}
					m.RegexesToIgnore = append(m.RegexesToIgnore, re)
				}
			default:
				return nil, p.errf(key, "metric_list: unsupported key %q", key.Value)
			}
			if err != nil {
				return nil, err
			}
		}
		if m.Name == "" {
			return nil, p.errf(e, "metric_list: entry without metric")
		}
		if m.Name != "exact_match" && (m.IgnoreCase || m.IgnorePunctuation || m.RegexesToIgnore != nil) {
			return nil, p.errf(e, "metric %s takes no exact_match options", m.Name)
		}
		out = append(out, m)
	}
	return out, nil
}

// pyPunctuation is Python's string.punctuation.
const pyPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// ExactMatch is HF evaluate's exact_match as lm-eval calls it: regexes are
// removed from both sides in order, then case, then punctuation.
func (m Metric) ExactMatch(pred, ref string) bool {
	norm := func(s string) string {
		for _, re := range m.RegexesToIgnore {
			s = re.ReplaceAllString(s, "")
		}
		if m.IgnoreCase {
			s = strings.ToLower(s)
		}
		if m.IgnorePunctuation {
			s = strings.Map(func(r rune) rune {
				if r < utf8.RuneSelf && strings.ContainsRune(pyPunctuation, r) {
					return -1
				}
				return r
			}, s)
		}
		return s
	}
	return norm(pred) == norm(ref)
}

// LL is the log-likelihood of one continuation and whether it is the
// greedy continuation (every token the most likely one).
type LL struct {
	Sum    float64
	Greedy bool
	Tokens int
}

// ContinuationLL sums the log-probabilities of the tokens of an echoed
// /v1/completions response that start at or after the prompt's end
// (offsets counted in code points, as Python-based
// OpenAI-compatible servers report them). A token straddling the boundary
// belongs to the prompt. Greedy follows lm-eval's OpenAI backend: each
// continuation token is the top entry of its top_logprobs (true when the
// server sent none).
func ContinuationLL(prompt string, resp inference.CompletionResponse) (LL, error) {
	if len(resp.Choices) == 0 || resp.Choices[0].Logprobs == nil {
		return LL{}, errors.New("completion has no logprobs (does the server support echo with logprobs?)")
	}
	lp := resp.Choices[0].Logprobs
	if len(lp.TextOffset) != len(lp.TokenLogprobs) {
		return LL{}, fmt.Errorf("%d text offsets for %d token logprobs", len(lp.TextOffset), len(lp.TokenLogprobs))
	}
	start := utf8.RuneCountInString(prompt)
	ll := LL{Greedy: true}
	for k, off := range lp.TextOffset {
		if off < start || lp.TokenLogprobs[k] == nil {
			continue
		}
		ll.Sum += *lp.TokenLogprobs[k]
		ll.Tokens++
		if k < len(lp.TopLogprobs) && k < len(lp.Tokens) && len(lp.TopLogprobs[k]) > 0 {
			top, best := "", math.Inf(-1)
			for tok, v := range lp.TopLogprobs[k] {
				if v > best || v == best && tok < top {
					top, best = tok, v
				}
			}
			if top != lp.Tokens[k] {
				ll.Greedy = false
			}
		}
	}
	if ll.Tokens == 0 || math.IsNaN(ll.Sum) {
		return LL{}, errors.New("no scored tokens after the prompt")
	}
	return ll, nil
}

// MetricName is lm-eval's result key, "metric,filter".
func MetricName(metric, filter string) string { return metric + "," + filter }

// MetricNames lists the result keys of a task in report order; the first
// is the score.
func (c *Config) MetricNames() []string {
	var names []string
	for _, pl := range c.Filters {
		for _, m := range c.Metrics {
			names = append(names, MetricName(m.Name, pl.Name))
		}
	}
	return names
}

// ScoreLL scores a multiple_choice or loglikelihood item from one LL per
// request, in the order of Item.Requests.
func (c *Config) ScoreLL(it Item, lls []LL) (map[string]float64, error) {
	if len(lls) != len(it.Requests) {
		return nil, fmt.Errorf("item %d: %d log-likelihoods for %d requests", it.Index, len(lls), len(it.Requests))
	}
	out := map[string]float64{}
	for _, m := range c.Metrics {
		var v float64
		switch {
		case c.OutputType == LogLikelihood:
			v = b2f(lls[0].Greedy)
		case m.Name == "acc":
			v = b2f(argmax(lls, nil) == it.Gold)
		case m.Name == "acc_norm":
			v = b2f(argmax(lls, it.Choices) == it.Gold)
		}
		out[MetricName(m.Name, c.Filters[0].Name)] = v
	}
	return out, nil
}

// Choose is the choice acc picks from one LL per choice: the most likely,
// the first on ties.
func Choose(lls []LL) int { return argmax(lls, nil) }

// argmax is np.argmax over the sums (first index on ties); with choices,
// each sum is divided by its choice's length in bytes (acc_norm). lm-eval
// divides by len(choice) in characters: the same for ASCII choices.
func argmax(lls []LL, choices []string) int {
	best, bestV := 0, math.Inf(-1)
	for k, ll := range lls {
		v := ll.Sum
		if choices != nil {
			v /= float64(max(len(choices[k]), 1))
		}
		if v > bestV {
			best, bestV = k, v
		}
	}
	return best
}

// ScoreGen scores a generate_until item from its responses (one per
// repeat): each is cut at the first until string (see Cut), then each
// filter pipeline yields an answer, checked by each metric.
func (c *Config) ScoreGen(it Item, resps []string) map[string]float64 {
	cut := c.cutAll(resps)
	out := map[string]float64{}
	for _, pl := range c.Filters {
		ans := pl.withChoices(it.Choices).Apply(cut)
		for _, m := range c.Metrics {
			out[MetricName(m.Name, pl.Name)] = b2f(m.ExactMatch(ans, it.Target))
		}
	}
	return out
}

// Answer is what the first filter pipeline makes of an item's responses,
// the answer the score is about.
func (c *Config) Answer(it Item, resps []string) string {
	return c.Filters[0].withChoices(it.Choices).Apply(c.cutAll(resps))
}

func (c *Config) cutAll(resps []string) []string {
	cut := make([]string, len(resps))
	for k, r := range resps {
		cut[k] = Cut(r, c.Generation.Until)
	}
	return cut
}

// Cut truncates a generation before the first occurrence of each non-empty
// until string in turn, as lm-eval's model backends do after generating:
// the text a server returns already stopped is unchanged, and a
// prediction file's raw text is treated as a live answer.
func Cut(text string, until []string) string {
	for _, u := range until {
		if u != "" {
			text, _, _ = strings.Cut(text, u)
		}
	}
	return text
}

// LLRequest is the /v1/completions request that scores a log-likelihood
// request: prompt and continuation echoed with their token log-probabilities
// and nothing generated; ContinuationLL(r.Prompt, response) reads it.
func (r Request) LLRequest(model string) inference.CompletionRequest {
	one, zero := 1, 0.0
	return inference.CompletionRequest{Model: model, Prompt: r.Prompt + r.Continuation,
		MaxTokens: 0, Echo: true, Logprobs: &one, Temperature: &zero}
}

// GenRequest is the /v1/completions request of a generation: max_tokens
// from max_gen_toks, the temperature, and the first inference.MaxStop until
// strings as stop (the server stops early; Cut still truncates at every
// one, as lm-eval does).
func (r Request) GenRequest(model string) inference.CompletionRequest {
	temp := r.Temperature
	var stop []string
	for _, u := range r.Until {
		if u != "" && len(stop) < inference.MaxStop {
			stop = append(stop, u)
		}
	}
	return inference.CompletionRequest{Model: model, Prompt: r.Prompt, MaxTokens: r.MaxGenToks, Temperature: &temp, Stop: stop}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Bootstrap settings for metric intervals.
const (
	BootstrapResamples = 1000
	BootstrapLevel     = 0.95
)

// Summary is one metric's mean over items with its bootstrap interval.
type Summary struct {
	Name   string
	Value  float64
	CILow  float64
	CIHigh float64
}

// Aggregate returns each metric's mean over the items' scores, in
// MetricNames order, with a percentile bootstrap interval (seeded).
func (c *Config) Aggregate(scores []map[string]float64, seed uint64) ([]Summary, error) {
	var out []Summary
	for _, name := range c.MetricNames() {
		vals := make([]float64, len(scores))
		var sum float64
		for k, s := range scores {
			v, ok := s[name]
			if !ok {
				return nil, fmt.Errorf("item %d has no %s", k, name)
			}
			vals[k] = v
			sum += v
		}
		sm := Summary{Name: name}
		if len(vals) > 0 {
			sm.Value = sum / float64(len(vals))
			sm.CILow, sm.CIHigh = stats.BootstrapMeanCI(vals, BootstrapResamples, BootstrapLevel, seed)
		}
		out = append(out, sm)
	}
	return out, nil
}
