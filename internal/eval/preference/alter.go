package preference

import (
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
)

// This file holds the in-place alterations behind injected errors and
// contradictions: each changes one claim of an answer's own sentence (a
// number, a word for its opposite, a negation), so the result reads like
// the rest of the answer and carries no phrase of its own.

var (
	numeralRE = regexp.MustCompile(`\b\d+\b`)
	letterRE  = regexp.MustCompile(`[A-Za-z]+`)
)

// numberWords spell small numbers; a spelled number is changed like a
// numeral.
var numberWords = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"}

// opposites pairs words with a word that makes the claim false: an
// opposite, or for words common in the shipped seeds a wrong alternative
// (water/oil, Friday/Monday). Both directions are used. An attacker who
// reads this list learns nothing: good answers use these words too.
var opposites = [][2]string{
	{"lower", "higher"}, {"low", "high"}, {"more", "less"}, {"most", "least"}, {"before", "after"},
	{"first", "last"}, {"larger", "smaller"}, {"large", "small"}, {"longer", "shorter"}, {"long", "short"},
	{"increase", "decrease"}, {"increases", "decreases"}, {"early", "late"}, {"faster", "slower"},
	{"true", "false"}, {"always", "never"}, {"above", "below"}, {"add", "remove"}, {"adds", "removes"},
	{"better", "worse"}, {"same", "different"}, {"inside", "outside"}, {"stopped", "started"},
	{"stops", "starts"}, {"once", "twice"}, {"keeps", "drops"}, {"keep", "drop"}, {"latest", "earliest"},
	{"warm", "cold"},
	{"untouched", "modified"}, {"even", "odd"}, {"efficient", "slow"}, {"simple", "complex"},
	{"Thursday", "Wednesday"}, {"Friday", "Monday"}, {"Plants", "Animals"}, {"green", "red"},
	{"releases", "absorbs"}, {"water", "oil"}, {"sugar", "salt"}, {"prime", "composite"},
	{"ships", "slips"}, {"postponed", "confirmed"}, {"hire", "lose"}, {"Waterproof", "Cotton"},
	{"Warm", "Light"}, {"wool", "cotton"},
}

var oppositeOf = func() map[string]string {
	m := map[string]string{}
	for _, p := range opposites {
		m[p[0]], m[p[1]] = p[1], p[0]
	}
	return m
}()

// negations toggles a negation; both directions are used.
var negations = [][2]string{
	{" is ", " is not "}, {" are ", " are not "}, {" can ", " cannot "}, {" will ", " will not "},
	{" does ", " does not "}, {" should ", " should not "}, {" must ", " need not "}, {" was ", " was not "},
}

// alterProse changes one claim of sentence s, trying a number, an opposite
// word and a negation in an order drawn from rng; ok is false when s has
// nothing to change.
func alterProse(s string, rng *rand.Rand) (string, bool) {
	forms := []func(string, *rand.Rand) (string, bool){changeNumber, swapOpposite, toggleNegation}
	for _, i := range rng.Perm(len(forms)) {
		if out, ok := forms[i](s, rng); ok && out != s {
			return out, true
		}
	}
	return s, false
}

// changeNumber replaces one numeral or spelled number of s by a nearby
// wrong one.
func changeNumber(s string, rng *rand.Rand) (string, bool) {
	type hit struct {
		start, end int
		n          int
		spelled    bool
	}
	var hits []hit
	for _, loc := range numeralRE.FindAllStringIndex(s, -1) {
		if n, err := strconv.Atoi(s[loc[0]:loc[1]]); err == nil && loc[1]-loc[0] < 6 {
			hits = append(hits, hit{loc[0], loc[1], n, false})
		}
	}
	for _, loc := range letterRE.FindAllStringIndex(s, -1) {
		w := strings.ToLower(s[loc[0]:loc[1]])
		for n, nw := range numberWords {
			if w == nw && n > 0 {
				hits = append(hits, hit{loc[0], loc[1], n, true})
			}
		}
	}
	if len(hits) == 0 {
		return s, false
	}
	h := hits[rng.IntN(len(hits))]
	var wrong int
	switch rng.IntN(3) {
	case 0:
		wrong = h.n + 1 + rng.IntN(3)
	case 1:
		wrong = h.n * 2
	default:
		wrong = max(1, h.n-1-rng.IntN(2))
	}
	if wrong == h.n {
		wrong = h.n + 1
	}
	rep := strconv.Itoa(wrong)
	if h.spelled && wrong < len(numberWords) {
		rep = matchCase(numberWords[wrong], s[h.start:h.end])
	}
	return s[:h.start] + rep + s[h.end:], true
}

// swapOpposite replaces one word of s that has an opposite.
func swapOpposite(s string, rng *rand.Rand) (string, bool) {
	var locs [][]int
	for _, loc := range letterRE.FindAllStringIndex(s, -1) {
		if _, ok := oppositeOf[s[loc[0]:loc[1]]]; ok {
			locs = append(locs, loc)
		} else if _, ok := oppositeOf[strings.ToLower(s[loc[0]:loc[1]])]; ok {
			locs = append(locs, loc)
		}
	}
	if len(locs) == 0 {
		return s, false
	}
	loc := locs[rng.IntN(len(locs))]
	w := s[loc[0]:loc[1]]
	o, ok := oppositeOf[w]
	if !ok {
		o = oppositeOf[strings.ToLower(w)]
	}
	return s[:loc[0]] + matchCase(o, w) + s[loc[1]:], true
}

// toggleNegation adds or removes one negation of s.
func toggleNegation(s string, rng *rand.Rand) (string, bool) {
	type edit struct {
		at, n int
		with  string
	}
	var edits []edit
	for _, p := range negations {
		if i := strings.Index(s, p[1]); i >= 0 {
			edits = append(edits, edit{i, len(p[1]), p[0]})
		} else if i := strings.Index(s, p[0]); i >= 0 {
			edits = append(edits, edit{i, len(p[0]), p[1]})
		}
	}
	if len(edits) == 0 {
		return s, false
	}
	e := edits[rng.IntN(len(edits))]
	return s[:e.at] + e.with + s[e.at+e.n:], true
}

// matchCase gives word the capitalisation of like's first letter.
func matchCase(word, like string) string {
	if like != "" && like[0] >= 'A' && like[0] <= 'Z' && word != "" {
		return strings.ToUpper(word[:1]) + word[1:]
	}
	if like != "" && like[0] >= 'a' && like[0] <= 'z' && word != "" {
		return strings.ToLower(word[:1]) + word[1:]
	}
	return word
}

// alterCode puts one bug into a code block's lines (a flipped comparison
// or operator, or a changed number); ok is false when there is none.
func alterCode(b block, rng *rand.Rand) ([]string, bool) {
	body := strings.Join(b.units, "\n")
	lang := normLang(strings.TrimLeft(strings.TrimSpace(b.open), "`~"))
	if lang == "" {
		lang = guessLang(body)
	}
	out, ok := breakCode(body, lang, rng)
	if !ok || out == body {
		return nil, false
	}
	return strings.Split(out, "\n"), true
}
