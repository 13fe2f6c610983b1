package task

import (
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pipeline is one named filter_list entry: its steps run in order over a
// doc's responses (one per repeat), and the first response left is the
// answer, as lm-eval's process_results takes results[0].
type Pipeline struct {
	Name  string
	Steps []Step
}

// Step is one filter function.
type Step struct {
	Func        string // regex, take_first, lowercase, uppercase, strip, remove_whitespace, majority_vote, mcq_answer
	Regex       *regexp.Regexp
	GroupSelect int
	Fallback    string
	// choices are the item's, which mcq_answer reads answers against
	// (set per item by withChoices).
	choices []string
}

// MCQAnswer is Crucible's own filter (not lm-eval's): the choice a
// free-text answer names, read as the mcq kind reads it (ExtractChoice: a
// letter, a number or the choice's text), as that choice's text, or the
// fallback when it names none. The task needs doc_to_choice; with an
// integer doc_to_target the reference is the gold choice's text, so
// exact_match scores what an mcq competition in generative mode scores.
const MCQAnswer = "mcq_answer"

// withChoices returns the pipeline with its mcq_answer steps reading
// against choices.
func (pl Pipeline) withChoices(choices []string) Pipeline {
	steps := make([]Step, len(pl.Steps))
	for k, s := range pl.Steps {
		if s.Func == MCQAnswer {
			s.choices = choices
		}
		steps[k] = s
	}
	return Pipeline{Name: pl.Name, Steps: steps}
}

// DefaultFallback is what lm-eval's regex filter yields without a match.
const DefaultFallback = "[invalid]"

// Apply runs the pipeline over a doc's responses and returns the answer.
func (pl Pipeline) Apply(resps []string) string {
	out := append([]string(nil), resps...)
	for _, s := range pl.Steps {
		out = s.apply(out)
	}
	if len(out) == 0 {
		return ""
	}
	return out[0]
}

func (s Step) apply(resps []string) []string {
	switch s.Func {
	case "take_first":
		if len(resps) > 1 {
			return resps[:1]
		}
		return resps
	case "majority_vote":
		if len(resps) == 0 {
			return resps
		}
		return []string{majority(resps)}
	}
	out := make([]string, len(resps))
	for k, r := range resps {
		switch s.Func {
		case "regex":
			out[k] = s.regex(r)
		case MCQAnswer:
			out[k] = s.Fallback
			if i, ok := ExtractChoice(r, s.choices); ok {
				out[k] = s.choices[i]
			}
		case "lowercase":
			out[k] = strings.ToLower(r)
		case "uppercase":
			out[k] = strings.ToUpper(r)
		case "strip":
			out[k] = strings.TrimSpace(r)
		case "remove_whitespace":
			out[k] = strings.TrimLeft(r, " ")
		}
	}
	return out
}

// regex mirrors lm-eval's RegexFilter over Python's re.findall: the match
// list holds the whole match without groups, the group with one, and with
// several the first non-empty group of the selected match. group_select may
// be negative (from the end); out of range yields the fallback where Python
// would raise IndexError.
func (s Step) regex(r string) string {
	matches := s.Regex.FindAllStringSubmatch(r, -1)
	i := s.GroupSelect
	if i < 0 {
		i += len(matches)
	}
	if i < 0 || i >= len(matches) {
		return s.Fallback
	}
	m := matches[i]
	switch len(m) {
	case 1:
		return strings.TrimSpace(m[0])
	case 2:
		return strings.TrimSpace(m[1])
	}
	for _, g := range m[1:] {
		if g != "" {
			return strings.TrimSpace(g)
		}
	}
	return s.Fallback
}

// majority is collections.Counter.most_common(1): the most frequent
// response, ties going to the one seen first.
func majority(resps []string) string {
	counts := map[string]int{}
	for _, r := range resps {
		counts[r]++
	}
	best := resps[0]
	for _, r := range resps {
		if counts[r] > counts[best] {
			best = r
		}
	}
	return best
}

func (p parser) filters(n *yaml.Node) ([]Pipeline, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "filter_list: want a list")
	}
	var out []Pipeline
	names := map[string]bool{}
	for _, e := range n.Content {
		if e.Kind != yaml.MappingNode {
			return nil, p.errf(e, "filter_list: want a mapping with name and filter")
		}
		var pl Pipeline
		var steps *yaml.Node
		for k := 0; k+1 < len(e.Content); k += 2 {
			key, val := e.Content[k], e.Content[k+1]
			switch key.Value {
			case "name":
				pl.Name = val.Value
			case "filter":
				steps = val
			default:
				return nil, p.errf(key, "filter_list: unsupported key %q", key.Value)
			}
		}
		if pl.Name == "" || steps == nil || steps.Kind != yaml.SequenceNode {
			return nil, p.errf(e, "filter_list: each entry needs a name and a filter list")
		}
		if names[pl.Name] {
			return nil, p.errf(e, "filter_list: %q given twice", pl.Name)
		}
		names[pl.Name] = true
		for _, sn := range steps.Content {
			st, err := p.step(sn)
			if err != nil {
				return nil, err
			}
			pl.Steps = append(pl.Steps, st)
		}
		out = append(out, pl)
	}
	return out, nil
}

func (p parser) step(n *yaml.Node) (Step, error) {
	if n.Kind != yaml.MappingNode {
		return Step{}, p.errf(n, "filter: want a mapping with function")
	}
	st := Step{Fallback: DefaultFallback}
	var pattern *yaml.Node
	for k := 0; k+1 < len(n.Content); k += 2 {
		key, val := n.Content[k], n.Content[k+1]
		var err error
		switch key.Value {
		case "function":
			st.Func = val.Value
		case "regex_pattern":
			pattern = val
		case "group_select":
			st.GroupSelect, err = p.intIn(val, -1000, 1000)
		case "fallback":
			st.Fallback, err = p.str(val)
		default:
			return Step{}, p.errf(key, "filter: unsupported key %q", key.Value)
		}
		if err != nil {
			return Step{}, err
		}
	}
	switch st.Func {
	case "regex":
		src := `#### (\-?[0-9\.\,]+)` // lm-eval's RegexFilter default
		if pattern != nil {
			src = pattern.Value
		}
		re, err := regexp.Compile(src)
		if err != nil {
			return Step{}, p.errf(orNode(pattern, n), "regex_pattern: %v (Go's RE2 syntax: no lookaround or backreferences)", err)
		}
		st.Regex = re
	case "take_first", "lowercase", "uppercase", "strip", "remove_whitespace", "majority_vote", MCQAnswer:
		if pattern != nil {
			return Step{}, p.errf(pattern, "%s takes no regex_pattern", st.Func)
		}
	default:
		return Step{}, p.errf(n, "filter function %q is not supported", st.Func)
	}
	return st, nil
}

func orNode(a, b *yaml.Node) *yaml.Node {
	if a != nil {
		return a
	}
	return b
}
