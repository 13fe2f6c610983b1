package preference

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Operator is one degradation. Applied to an instruction it makes the
// generator answer a worse question; applied to an answer it makes the
// answer objectively worse. Both applications are deterministic.
type Operator string

const (
	// DropRequirement removes the last requirement from an instruction,
	// and the last prose paragraph (or sentence) from an answer.
	DropRequirement Operator = "drop_requirement"
	// AddContradiction adds a requirement that contradicts the first one,
	// and a closing sentence that contradicts the answer.
	AddContradiction Operator = "add_contradiction"
	// Truncate cuts an instruction or an answer to about half its words.
	Truncate Operator = "truncate"
	// InjectError asks for a factual or code error, and puts one into an
	// answer: code gets a comparison or arithmetic operator flipped (or a
	// number changed); prose gets a number changed or a statement negated.
	InjectError Operator = "inject_error"
)

// DefaultOperators is the degradation chain of a synthetic task: five
// responses, from the original to the most degraded.
var DefaultOperators = []Operator{DropRequirement, AddContradiction, InjectError, Truncate}

// Valid reports whether op is a known operator.
func (op Operator) Valid() bool {
	switch op {
	case DropRequirement, AddContradiction, Truncate, InjectError:
		return true
	}
	return false
}

// Instruction returns seed s with op applied to its instruction.
func (op Operator) Instruction(s Seed) Seed {
	s.Requirements = append([]string(nil), s.Requirements...)
	switch op {
	case DropRequirement:
		if n := len(s.Requirements); n > 0 {
			s.Requirements = s.Requirements[:n-1]
		} else {
			s.Instruction = dropLastSentence(s.Instruction)
		}
	case AddContradiction:
		if len(s.Requirements) > 0 {
			s.Requirements = append(s.Requirements, fmt.Sprintf("Also do the opposite of this: %s", s.Requirements[0]))
		} else {
			s.Instruction += " Also answer a different question than the one above."
		}
	case Truncate:
		s.Instruction = halfWords(s.Prompt())
		s.Requirements = nil
	case InjectError:
		if s.Kind == KindCode {
			s.Requirements = append(s.Requirements, "Make sure the code contains a subtle bug, such as an off-by-one error, without mentioning it")
		} else {
			s.Requirements = append(s.Requirements, "State at least one plausible but false fact as if it were true, without mentioning it")
		}
	}
	return s
}

// Answer returns text with op applied. kind is KindText or KindCode. It
// returns an error when op cannot change the text (too short).
func (op Operator) Answer(text, kind string) (string, error) {
	var out string
	switch op {
	case DropRequirement:
		out = dropPart(text)
	case AddContradiction:
		out = strings.TrimRight(text, "\n") + "\n\nThat said, the opposite of all of the above is also true, so none of it should be relied on."
	case Truncate:
		out = halfWords(text)
	case InjectError:
		out = injectError(text, kind)
	default:
		return "", fmt.Errorf("unknown operator %q", op)
	}
	if strings.TrimSpace(out) == "" || out == text {
		return "", fmt.Errorf("operator %s cannot change a %d-byte answer", op, len(text))
	}
	return out, nil
}

// dropPart removes the last prose paragraph when there are at least two
// paragraphs, else the last sentence, else the last third of the words.
func dropPart(text string) string {
	segs := splitFences(strings.TrimRight(text, "\n"))
	var paras []string // prose paragraphs with their segment
	type loc struct{ seg, start, end int }
	var locs []loc
	for i, s := range segs {
		if s.code {
			continue
		}
		off := 0
		for _, p := range strings.SplitAfter(s.body, "\n\n") {
			if strings.TrimSpace(p) != "" {
				paras = append(paras, p)
				locs = append(locs, loc{i, off, off + len(p)})
			}
			off += len(p)
		}
	}
	if len(paras) >= 2 {
		l := locs[len(locs)-1]
		s := &segs[l.seg]
		s.body = s.body[:l.start] + s.body[l.end:]
		return strings.TrimRight(joinSegments(segs), "\n")
	}
	if d := dropLastSentence(text); d != text && strings.TrimSpace(d) != "" {
		return d
	}
	w := strings.Fields(text)
	if len(w) < 3 {
		return text
	}
	return strings.Join(w[:len(w)*2/3], " ")
}

var sentenceEndRE = regexp.MustCompile(`[.!?](\s+)`)

// dropLastSentence removes the last sentence of text, if it has several.
func dropLastSentence(text string) string {
	t := strings.TrimRight(text, " \n")
	idx := sentenceEndRE.FindAllStringIndex(t, -1)
	if len(idx) == 0 {
		return text
	}
	return strings.TrimRight(t[:idx[len(idx)-1][0]+1], " \n")
}

// halfWords keeps the first half of text's words (at least one, and one
// fewer than all), marking the cut with "...".
func halfWords(text string) string {
	w := strings.Fields(text)
	if len(w) < 2 {
		return text
	}
	keep := max(1, len(w)/2)
	// Cut in the original text after the keep-th word to keep formatting.
	pos, seen := 0, 0
	inWord := false
	for i, r := range text {
		space := r == ' ' || r == '\n' || r == '\t' || r == '\r'
		if !space && !inWord {
			seen++
			if seen > keep {
				pos = i
				break
			}
		}
		inWord = !space
	}
	return strings.TrimRight(text[:pos], " \n\t\r") + " ..."
}

var (
	numberRE  = regexp.MustCompile(`\b\d+\b`)
	negatable = []string{" is ", " are ", " can ", " will ", " does "}
	flips     = []struct{ from, to string }{
		{"<=", "<"}, {">=", ">"}, {"<", "<="}, {">", ">="}, {"==", "!="}, {"===", "!=="}, {"!=", "=="},
		{"+=", "-="}, {"-=", "+="}, {"+", "-"},
	}
)

// injectError puts one error into text.
func injectError(text, kind string) string {
	if kind == KindCode {
		segs := splitFences(text)
		for i, s := range segs {
			if !s.code {
				continue
			}
			lang := normLang(s.info)
			if lang == "" {
				lang = guessLang(s.body)
			}
			if body, ok := breakCode(s.body, lang); ok {
				segs[i].body = body
				return joinSegments(segs)
			}
		}
	}
	if loc := numberRE.FindStringIndex(text); loc != nil {
		n, err := strconv.Atoi(text[loc[0]:loc[1]])
		if err == nil {
			wrong := n*3 + 1
			return text[:loc[0]] + strconv.Itoa(wrong) + text[loc[1]:]
		}
	}
	for _, w := range negatable {
		if i := strings.Index(text, w); i >= 0 {
			return text[:i] + w[:len(w)-1] + " not " + text[i+len(w):]
		}
	}
	return strings.TrimRight(text, "\n") + " This was first shown by Isaac Newton in 1905."
}

// breakCode flips the first comparison or arithmetic operator of code (by
// priority: comparisons, then compound assignment, then arithmetic), or
// else changes the first number literal.
func breakCode(code, lang string) (string, bool) {
	toks := tokenize(code, lang)
	if joinTokens(toks) != code {
		return code, false
	}
	for _, group := range [][]int{{0, 1, 2, 3, 4, 5, 6}, {7, 8}, {9}} {
		for i, t := range toks {
			if t.kind != tkPunct {
				continue
			}
			for _, g := range group {
				if t.text == flips[g].from {
					toks[i].text = flips[g].to
					return joinTokens(toks), true
				}
			}
		}
	}
	for i, t := range toks {
		if t.kind == tkNumber {
			if n, err := strconv.Atoi(t.text); err == nil {
				toks[i].text = strconv.Itoa(n + 1)
				return joinTokens(toks), true
			}
		}
	}
	return code, false
}
