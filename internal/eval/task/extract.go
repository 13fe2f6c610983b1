package task

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// strongRE finds explicit answer markers: "Answer: B", "the answer is (c)",
// "Correct option: 2", "answer is option B".
var strongRE = regexp.MustCompile(`(?i)\b(?:answer|correct\s+(?:option|choice|letter))\b(?:\s+is\b|\s*[:=\-])?\s*(?:(?:option|choice|letter)\b\s*)?([\(\[]?)([a-z]|\d{1,2})\b`)

// leadingRE finds an answer at the very start: "B", "b)", "(B)", "B. text", "2".
var leadingRE = regexp.MustCompile(`^([\(\[]?)([A-Za-z]|\d{1,2})([\)\]\.:,]|\s|$)`)

// ExtractChoice finds which of choices a free-text response names, as the
// mcq kind reads a generated answer and the mcq_answer filter does. In order of
// precedence it accepts:
//
//  1. an explicit marker, the last one winning: "Answer: B.", "The answer is b",
//     "correct option is (C)", "Answer: 2";
//  2. a leading letter or number: "B", "b)", "(B)", "B. Go home", "2";
//  3. the text of a choice, case- and punctuation-insensitively, as whole
//     words; when several choices appear the longest wins if the others are
//     contained in it, otherwise the response is ambiguous;
//  4. a single standalone capital letter anywhere: "I'd go with B".
//
// A lone "A" or "I" followed by a word is read as an article or pronoun, not
// a letter, and anything inside a <think>…</think> block is ignored. It
// returns the 0-based choice index, or (-1, false) when nothing parses.
func ExtractChoice(response string, choices []string) (int, bool) {
	n := len(choices)
	if n == 0 {
		return -1, false
	}
	r := response
	// Most responses have no </think>: Contains rules it out with a
	// vectorised search, where LastIndex hashes every byte.
	if strings.Contains(r, "</think>") {
		r = r[strings.LastIndex(r, "</think>")+len("</think>"):]
	}
	if strings.ContainsAny(r, "*_`") {
		r = markdownStripper.Replace(r)
	}
	r = strings.TrimSpace(r)
	if r == "" {
		return -1, false
	}
	if i, ok := extractExact(r, choices); ok {
		return i, true
	}
	if i, ok := extractStrong(r, n); ok {
		return i, true
	}
	if i, ok := extractLeading(r, choices); ok {
		return i, true
	}
	if i, ok := extractText(r, choices); ok {
		return i, true
	}
	return extractStandalone(r, n)
}

// markdownStripper removes emphasis and code marks ("**B**" → "B"). It is
// immutable and safe for concurrent use.
var markdownStripper = strings.NewReplacer("**", "", "__", "", "`", "")

// extractExact is the fast path for the two most common well-formed answers:
// a lone letter ("B") and "<letter>) <exact choice text>". Both rules give
// the same result as the general ones, which they only short-cut.
func extractExact(r string, choices []string) (int, bool) {
	c := r[0]
	if c < 'A' || int(c-'A') >= len(choices) {
		return -1, false
	}
	i := int(c - 'A')
	if len(r) == 1 {
		return i, true
	}
	if len(r) > 3 && r[1] == ')' && r[2] == ' ' && r[3:] == choices[i] && !containsFoldASCII(r, "answer") {
		return i, true
	}
	return -1, false
}

// containsFoldASCII reports whether s contains the lowercase ASCII word sub,
// ignoring case.
func containsFoldASCII(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// choiceIndex maps a letter or 1-based number token to a choice index.
func choiceIndex(tok string, n int) (int, bool) {
	if tok == "" {
		return -1, false
	}
	c := tok[0]
	var i int
	switch {
	case c >= '0' && c <= '9':
		v := 0
		for _, d := range []byte(tok) {
			v = v*10 + int(d-'0')
		}
		i = v - 1
	case c >= 'a' && c <= 'z':
		i = int(c - 'a')
	case c >= 'A' && c <= 'Z':
		i = int(c - 'A')
	default:
		return -1, false
	}
	if len(tok) > 1 && !(c >= '0' && c <= '9') {
		return -1, false
	}
	if i < 0 || i >= n {
		return -1, false
	}
	return i, true
}

// wordFollows reports whether s starts with whitespace and then a letter.
func wordFollows(s string) bool {
	t := strings.TrimLeft(s, " \t")
	if len(t) == len(s) || t == "" {
		return false
	}
	r, _ := utf8.DecodeRuneInString(t)
	return unicode.IsLetter(r)
}

func isArticleLike(tok string) bool {
	return tok == "A" || tok == "a" || tok == "I" || tok == "i"
}

func extractStrong(r string, n int) (int, bool) {
	best, found := -1, false
	for _, m := range strongRE.FindAllStringSubmatchIndex(r, -1) {
		open := r[m[2]:m[3]]
		tok := r[m[4]:m[5]]
		rest := r[m[5]:]
		closed := strings.HasPrefix(rest, ")") || strings.HasPrefix(rest, "]")
		if open != "" && !closed {
			continue
		}
		// "the answer is a good plan": an article, not a letter.
		if open == "" && tok[0] >= 'a' && tok[0] <= 'z' && isArticleLike(tok) && wordFollows(rest) {
			continue
		}
		if i, ok := choiceIndex(tok, n); ok {
			best, found = i, true
		}
	}
	return best, found
}

func extractLeading(r string, choices []string) (int, bool) {
	m := leadingRE.FindStringSubmatch(r)
	if m == nil {
		return -1, false
	}
	open, tok, after := m[1], m[2], m[3]
	i, ok := choiceIndex(tok, len(choices))
	if !ok {
		return -1, false
	}
	switch {
	case open != "":
		if after == ")" || after == "]" {
			return i, true
		}
		return -1, false
	case after == "" || strings.ContainsAny(after, ")].:,"):
		return i, true
	}
	// Letter or number followed by whitespace: "B Go home".
	if tok[0] >= '0' && tok[0] <= '9' || tok[0] >= 'a' && tok[0] <= 'z' {
		return -1, false
	}
	if !isArticleLike(tok) {
		// "B Go home" but not "B or C".
		if j, ok := extractStandalone(r, len(choices)); ok && j == i {
			return i, true
		}
		return -1, false
	}
	// "A make a new plan" is a letter only when the text that follows is
	// that choice.
	rest := normalize(r[len(tok):])
	if c := normalize(choices[i]); c != "" && strings.HasPrefix(rest+" ", c+" ") {
		return i, true
	}
	return -1, false
}

func extractText(r string, choices []string) (int, bool) {
	hay := " " + normalize(r) + " "
	type hit struct {
		i    int
		norm string
	}
	var hits []hit
	for i, c := range choices {
		nc := normalize(c)
		if nc == "" {
			continue
		}
		if strings.Contains(hay, " "+nc+" ") {
			hits = append(hits, hit{i, nc})
		}
	}
	if len(hits) == 0 {
		return -1, false
	}
	// Keep the hits not explained by a longer hit containing them.
	var keep []hit
	for _, h := range hits {
		inside := false
		for _, o := range hits {
			if o.i != h.i && len(o.norm) > len(h.norm) && strings.Contains(" "+o.norm+" ", " "+h.norm+" ") {
				inside = true
				break
			}
		}
		if !inside {
			keep = append(keep, h)
		}
	}
	if len(keep) != 1 {
		return -1, false
	}
	return keep[0].i, true
}

func extractStandalone(r string, n int) (int, bool) {
	found := -1
	prev := rune(' ')
	for pos, c := range r {
		if c >= 'A' && c <= 'Z' && !isWordRune(prev) {
			next, size := utf8.DecodeRuneInString(r[pos+1:])
			if size == 0 || !isWordRune(next) {
				tok := string(c)
				open := prev == '(' || prev == '['
				if !open && isArticleLike(tok) && wordFollows(r[pos+1:]) {
					prev = c
					continue
				}
				if i, ok := choiceIndex(tok, n); ok {
					if found >= 0 && found != i {
						return -1, false
					}
					found = i
				}
			}
		}
		prev = c
	}
	if found < 0 {
		return -1, false
	}
	return found, true
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\''
}

// normalize lowercases s, turns punctuation into spaces and collapses runs
// of spaces, so "Go home, and see Riley!" becomes "go home and see riley".
func normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := true
	for _, c := range s {
		switch {
		case c == '\'' || c == '’':
			// "didn't" → "didnt": apostrophes join words.
		case unicode.IsLetter(c) || unicode.IsDigit(c):
			b.WriteRune(unicode.ToLower(c))
			space = false
		default:
			if !space {
				b.WriteByte(' ')
				space = true
			}
		}
	}
	return strings.TrimRight(b.String(), " ")
}
