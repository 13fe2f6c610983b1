package preference

import (
	"regexp"
	"strings"
)

// This file splits an answer into the pieces the degradations move, drop
// and alter: blocks (paragraphs, list groups, fenced code) made of units
// (sentences of a prose paragraph, lines of a multi-line block). Every
// degradation works on these pieces and renders whole pieces back, so a
// degraded answer never ends in a half sentence or a dangling mark.

// block is a paragraph or a fenced code block of an answer.
type block struct {
	code bool
	// units are the sentences of a one-line prose paragraph, or the lines
	// of a multi-line one (a list, an email sign-off); a code block has
	// one unit per line between its fences.
	units []string
	// lines reports whether units are joined by newlines (else spaces).
	lines bool
	// open and close are a code block's fence lines.
	open, close string
}

// sentenceRE finds sentence ends: a stop followed by space and a capital
// or digit, so "e.g. this" and "3.5" stay whole.
var sentenceRE = regexp.MustCompile(`[.!?]["')]?\s+["'(]?[A-Z0-9]`)

// splitSentences splits one line of prose into sentences.
func splitSentences(p string) []string {
	var out []string
	for {
		loc := sentenceRE.FindStringIndex(p)
		if loc == nil {
			break
		}
		// Keep the stop (and a closing quote) with the sentence.
		end := loc[0] + 1
		for end < loc[1] && (p[end] == '"' || p[end] == '\'' || p[end] == ')') {
			end++
		}
		out = append(out, strings.TrimSpace(p[:end]))
		p = strings.TrimLeft(p[end:], " \t\n")
	}
	if p = strings.TrimSpace(p); p != "" {
		out = append(out, p)
	}
	return out
}

var blankLineRE = regexp.MustCompile(`\n\s*\n`)

// parseBlocks splits text into blocks; render(parseBlocks(t)) equals t up
// to blank-line and trailing-space normalisation.
func parseBlocks(text string) []block {
	var out []block
	for _, s := range splitFences(strings.TrimRight(text, "\n")) {
		if s.code {
			body := strings.TrimRight(s.body, "\n")
			var units []string
			if body != "" {
				units = strings.Split(body, "\n")
			}
			closing := strings.TrimRight(s.close, "\n")
			if closing == "" { // an unterminated fence gets its close
				closing = strings.TrimSpace(strings.TrimRight(s.open, "\n"))[:3]
			}
			out = append(out, block{code: true, units: units, lines: true, open: strings.TrimRight(s.open, "\n"), close: closing})
			continue
		}
		for _, p := range blankLineRE.Split(s.body, -1) {
			p = strings.Trim(p, "\n")
			if strings.TrimSpace(p) == "" {
				continue
			}
			if strings.Contains(p, "\n") {
				out = append(out, block{units: strings.Split(p, "\n"), lines: true})
			} else {
				out = append(out, block{units: splitSentences(p)})
			}
		}
	}
	return out
}

// render joins blocks back into text.
func render(blocks []block) string {
	parts := make([]string, 0, len(blocks))
	for _, b := range blocks {
		sep := " "
		if b.lines {
			sep = "\n"
		}
		body := strings.Join(b.units, sep)
		if b.code {
			body = b.open + "\n" + body
			if len(b.units) > 0 {
				body += "\n"
			}
			body += b.close
		}
		if strings.TrimSpace(body) != "" {
			parts = append(parts, body)
		}
	}
	return strings.Join(parts, "\n\n")
}

// cloneBlocks deep-copies blocks so an operator never edits its input.
func cloneBlocks(blocks []block) []block {
	out := make([]block, len(blocks))
	for i, b := range blocks {
		b.units = append([]string(nil), b.units...)
		out[i] = b
	}
	return out
}

// unitRef names one unit: block b, unit u.
type unitRef struct{ b, u int }

// proseUnits lists every prose unit that carries words (list headings and
// bullets included).
func proseUnits(blocks []block) []unitRef {
	var out []unitRef
	for i, b := range blocks {
		if b.code {
			continue
		}
		for j, u := range b.units {
			if len(strings.Fields(u)) > 0 {
				out = append(out, unitRef{i, j})
			}
		}
	}
	return out
}

// words counts the words of a text.
func words(s string) int { return len(strings.Fields(s)) }
