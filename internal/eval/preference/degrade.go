package preference

import (
	"fmt"
	"math/rand/v2"
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
	// and a paragraph, sentence or list line from anywhere in an answer.
	DropRequirement Operator = "drop_requirement"
	// AddContradiction adds a requirement that contradicts the first one;
	// in an answer it copies one of the answer's own sentences with one
	// claim altered (a number, a word for its opposite, a negation) to
	// another place, so the answer contradicts itself in its own words.
	AddContradiction Operator = "add_contradiction"
	// Truncate cuts an instruction to about half its words, and an answer
	// after a whole sentence, line or paragraph, never mid-sentence and
	// without a marker.
	Truncate Operator = "truncate"
	// InjectError asks for a factual or code error, and puts one into an
	// answer in place: code gets a comparison or arithmetic operator
	// flipped (or a number changed); prose gets a number changed, a word
	// swapped for its opposite or a statement negated.
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

// Answer returns text with op applied; kind is KindText or KindCode. rng
// picks the operator's form, the place it acts and, with probability
// op.padChance(), an off-topic paragraph (one of offTopic, prose from other
// answers) added somewhere, so neither the wording, the position nor the
// length of a degradation is fixed. The same
// rng state gives the same result. It returns an error when op cannot
// change the text.
func (op Operator) Answer(text, kind string, offTopic []string, rng *rand.Rand) (string, error) {
	if !op.Valid() {
		return "", fmt.Errorf("unknown operator %q", op)
	}
	blocks := cloneBlocks(parseBlocks(text))
	var ok bool
	switch op {
	case DropRequirement:
		blocks, ok = dropPart(blocks, rng)
	case AddContradiction:
		blocks, ok = contradict(blocks, kind, rng)
	case Truncate:
		blocks, ok = truncate(blocks, rng)
	case InjectError:
		blocks, ok = injectError(blocks, kind, rng)
	}
	if ok && len(offTopic) > 0 && rng.Float64() < op.padChance() {
		blocks = wander(blocks, offTopic, rng)
	}
	out := render(blocks)
	if !ok || strings.TrimSpace(out) == "" || out == render(parseBlocks(text)) {
		return "", fmt.Errorf("operator %s cannot change a %d-byte answer", op, len(text))
	}
	return out, nil
}

// padChance is how often op also wanders off topic. The chances offset
// the words drop and truncate remove (contradict and inject change words
// in place): over 480 generated tasks every degraded level averaged 1.03
// to 1.06 times the original's length and was longer than it in 38–50 %
// of tasks, so length says little about quality.
func (op Operator) padChance() float64 {
	switch op {
	case DropRequirement, Truncate:
		return 0.6
	case InjectError:
		return 0.3
	}
	return 0
}

// dropPart removes one short prose paragraph or one sentence or list
// line of a paragraph, chosen by rng, keeping at least one prose unit; an answer down to one prose unit loses an inner line of
// its code instead (a missing step).
func dropPart(blocks []block, rng *rand.Rand) ([]block, bool) {
	units := proseUnits(blocks)
	if len(units) < 2 {
		for _, i := range rng.Perm(len(blocks)) {
			if b := &blocks[i]; b.code && len(b.units) >= 3 {
				j := 1 + rng.IntN(len(b.units)-2)
				b.units = append(b.units[:j], b.units[j+1:]...)
				return blocks, true
			}
		}
		return blocks, false
	}
	// A whole paragraph goes only when it is at most half of the prose,
	// so the answer keeps its main part.
	var prose []int
	for i, b := range blocks {
		if !b.code && 2*len(b.units) <= len(units) {
			prose = append(prose, i)
		}
	}
	if len(prose) > 0 && rng.IntN(2) == 0 {
		i := prose[rng.IntN(len(prose))]
		return append(blocks[:i], blocks[i+1:]...), true
	}
	u := units[rng.IntN(len(units))]
	b := &blocks[u.b]
	b.units = append(b.units[:u.u], b.units[u.u+1:]...)
	if len(b.units) == 0 {
		blocks = append(blocks[:u.b], blocks[u.b+1:]...)
	}
	return blocks, true
}

// truncate cuts the answer after a whole unit, removing its last 15–50 %
// of units (at least one, never all); a cut inside a code block keeps the
// block's closing fence, as a model that ran out of tokens mid-function
// would leave it after rendering.
func truncate(blocks []block, rng *rand.Rand) ([]block, bool) {
	total := 0
	for _, b := range blocks {
		total += len(b.units)
	}
	if total < 2 {
		return blocks, false
	}
	cut := min(total-1, max(1, int(float64(total)*(0.15+0.35*rng.Float64()))))
	return cutUnits(blocks, total-cut), true
}

// cutUnits keeps the first n units of blocks.
func cutUnits(blocks []block, n int) []block {
	var out []block
	for _, b := range blocks {
		if n <= 0 {
			break
		}
		if len(b.units) > n {
			b.units = b.units[:n]
		}
		n -= len(b.units)
		out = append(out, b)
	}
	return out
}

// contradict alters, in place, one word or number of a sentence that the
// answer also states elsewhere (so the answer now disagrees with itself)
// or, when nothing repeats, any alterable claim. Working in place adds no
// sentence and no phrase of its own, so the contradiction shows only to a
// reader.
func contradict(blocks []block, kind string, rng *rand.Rand) ([]block, bool) {
	units := proseUnits(blocks)
	var all []string
	for _, u := range units {
		all = append(all, blocks[u.b].units[u.u])
	}
	text := strings.ToLower(strings.Join(all, " "))
	var repeated, other []unitRef
	for _, u := range units {
		if sharesToken(blocks[u.b].units[u.u], text) {
			repeated = append(repeated, u)
		} else {
			other = append(other, u)
		}
	}
	for _, set := range [][]unitRef{repeated, other} {
		for _, i := range rng.Perm(len(set)) {
			u := set[i]
			if altered, ok := alterProse(blocks[u.b].units[u.u], rng); ok {
				blocks[u.b].units[u.u] = altered
				return blocks, true
			}
		}
	}
	return injectError(blocks, kind, rng)
}

// sharesToken reports whether one of the alterable tokens of s (a number
// or a word with an opposite) occurs more than once in text.
func sharesToken(s, text string) bool {
	for _, w := range append(numeralRE.FindAllString(s, -1), letterRE.FindAllString(s, -1)...) {
		w = strings.ToLower(w)
		if _, ok := oppositeOf[w]; (ok || numeralRE.MatchString(w)) && strings.Count(text, w) > 1 {
			return true
		}
	}
	return false
}

// injectError alters one claim in place: for code answers usually a code
// line, otherwise a prose unit.
func injectError(blocks []block, kind string, rng *rand.Rand) ([]block, bool) {
	tryCode := func() bool {
		for _, i := range rng.Perm(len(blocks)) {
			if !blocks[i].code {
				continue
			}
			if lines, ok := alterCode(blocks[i], rng); ok {
				blocks[i].units = lines
				return true
			}
		}
		return false
	}
	if kind == KindCode && rng.IntN(4) > 0 && tryCode() {
		return blocks, true
	}
	units := proseUnits(blocks)
	for _, i := range rng.Perm(len(units)) {
		u := units[i]
		if altered, ok := alterProse(blocks[u.b].units[u.u], rng); ok {
			blocks[u.b].units[u.u] = altered
			return blocks, true
		}
	}
	return blocks, tryCode()
}

// wander inserts one paragraph of offTopic (its first one to three
// sentences) that the answer does not hold yet at a random place: the
// drift of an answer that strays into another question. It is new text, so
// no sentence of the answer repeats.
func wander(blocks []block, offTopic []string, rng *rand.Rand) []block {
	text := render(blocks)
	var fresh [][]string
	for _, p := range offTopic {
		if units := splitSentences(p); len(units) > 0 && !strings.Contains(text, units[0]) {
			fresh = append(fresh, units)
		}
	}
	if len(fresh) == 0 {
		return blocks
	}
	units := fresh[rng.IntN(len(fresh))]
	units = units[:1+rng.IntN(min(3, len(units)))]
	at := rng.IntN(len(blocks) + 1)
	return append(blocks[:at], append([]block{{units: units}}, blocks[at:]...)...)
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

// halfWords keeps the first half of an instruction's words (at least one,
// and one fewer than all), so the model answers an incomplete question.
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
	return strings.TrimRight(text[:pos], " \n\t\r")
}

var flips = map[string]string{
	"<=": "<", ">=": ">", "<": "<=", ">": ">=", "==": "!=", "===": "!==", "!=": "==", "!==": "===",
	"+=": "-=", "-=": "+=", "+": "-", "-": "+", "*": "+", "%": "/",
}

// keywordFlips are identifier tokens whose change is a bug.
var keywordFlips = map[string]string{
	"true": "false", "false": "true", "True": "False", "False": "True", "let": "const", "null": "undefined",
	"clearTimeout": "setTimeout", "apply": "call", "lower": "upper", "append": "extend", "push": "unshift",
}

// breakCode changes one comparison or arithmetic operator of code, or one
// number literal, chosen by rng; ok is false when code has neither or does
// not tokenize losslessly.
func breakCode(code, lang string, rng *rand.Rand) (string, bool) {
	toks := tokenize(code, lang)
	if joinTokens(toks) != code {
		return code, false
	}
	var ops, nums []int
	for i, t := range toks {
		if _, ok := flips[t.text]; ok && t.kind == tkPunct {
			ops = append(ops, i)
		} else if _, ok := keywordFlips[t.text]; ok && t.kind == tkIdent {
			ops = append(ops, i)
		} else if t.kind == tkNumber {
			if _, err := strconv.Atoi(t.text); err == nil {
				nums = append(nums, i)
			}
		}
	}
	switch {
	case len(ops) > 0 && (len(nums) == 0 || rng.IntN(4) > 0):
		i := ops[rng.IntN(len(ops))]
		if to, ok := flips[toks[i].text]; ok && toks[i].kind == tkPunct {
			toks[i].text = to
		} else {
			toks[i].text = keywordFlips[toks[i].text]
		}
	case len(nums) > 0:
		i := nums[rng.IntN(len(nums))]
		n, _ := strconv.Atoi(toks[i].text)
		toks[i].text = strconv.Itoa(n + 1)
	default:
		return code, false
	}
	return joinTokens(toks), true
}
