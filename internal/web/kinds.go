package web

// This file renders the kind-specific parts of pages through the kind
// contract's description hooks (kind.ItemDescriber, kind.Counter), so no
// page names a kind: a roleplay item as its chat, a patch as a coloured diff.

import (
	"strings"
	"unicode/utf8"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/kind"
)

// itemView is one evaluated item as its kind shows it.
type itemView struct {
	kind.ItemView
	Index     int
	Score     float64
	LatencyMS int64
}

// maxShownText bounds each text an item view shows (a reply, a turn): a
// competitor's server controls the reply, and a page must stay readable.
const maxShownText = 16 << 10

// itemViews describes results through c's kind; nil when the kind has no
// view of its own or cannot describe one of them (the page shows the
// generic rows). Results reach here
// through the sealed store, so each item, its reference reply included, is
// one the public may see (a fresh epoch's only once it has ended).
func (s *Server) itemViews(c competition.Competition, results []eval.Result) []itemView {
	var out []itemView
	for _, r := range results {
		v, ok, err := s.cfg.Kinds.DescribeItem(c, r)
		if err != nil {
			// One result the kind cannot read must not take the page
			// down: the generic rows still show every result as stored.
			s.cfg.Logger.Warn("web: describe item", "competition", c.ID, "item", r.Index, "err", err)
			return nil
		}
		if !ok {
			return nil
		}
		v.Card, v.Reply, v.Reference = clip(v.Card), clip(v.Reply), clip(v.Reference)
		for i := range v.Turns {
			v.Turns[i].Text = clip(v.Turns[i].Text)
		}
		out = append(out, itemView{ItemView: v, Index: r.Index, Score: r.Score, LatencyMS: r.LatencyMS})
	}
	return out
}

// clip cuts s to maxShownText bytes at a rune boundary, marking the cut.
func clip(s string) string {
	if len(s) <= maxShownText {
		return s
	}
	cut := maxShownText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "\n… (cut at 16 KiB)"
}

// diffLine is one line of a unified diff with its class: add, del, hunk,
// file (headers) or "" for context.
type diffLine struct {
	Class, Text string
}

// maxDiffLines bounds the lines of a diff a page colours; the rest is
// summarised.
const maxDiffLines = 2000

// diffLines splits a unified diff into classed lines, at most
// maxDiffLines of them; more reports how many were left out.
func diffLines(diff string) (lines []diffLine, more int) {
	// Split off the shown lines only and count the rest: a submitted diff
	// of 8 MiB of newlines would otherwise cost a 128 MiB slice on every
	// view of its page.
	all := strings.SplitN(strings.TrimRight(diff, "\n"), "\n", maxDiffLines+1)
	if len(all) > maxDiffLines {
		more = strings.Count(all[maxDiffLines], "\n") + 1
		all = all[:maxDiffLines]
	}
	for _, l := range all {
		c := ""
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"), strings.HasPrefix(l, "diff "), strings.HasPrefix(l, "index "):
			c = "file"
		case strings.HasPrefix(l, "@@"):
			c = "hunk"
		case strings.HasPrefix(l, "+"):
			c = "add"
		case strings.HasPrefix(l, "-"):
			c = "del"
		}
		lines = append(lines, diffLine{Class: c, Text: l})
	}
	return lines, more
}
