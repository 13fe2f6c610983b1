package web

// This file holds what every leaderboard shares: the submitter handle, the
// kind's score components as columns, sorting by any column (server-side,
// so it works without JavaScript) and the CSV of the same rows.

import (
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"crucible/internal/competition"
	"crucible/internal/kind"
)

// componentBudget bounds the item results one leaderboard reads to compute
// its component columns: rows past it show no components rather than make
// one page load read a whole large competition.
const componentBudget = 50_000

// board is a leaderboard as its page and its CSV show it.
type board struct {
	Rows []boardRow
	// Components name the kind's score components, one column each.
	Components []string
	// BySubmitter is set when rows are submitters, not submissions (a
	// code-fix competition's), so no separate submitter column is needed.
	BySubmitter bool
	// Partial is set when the component budget ran out before the last row.
	Partial bool
	// Committed is set when the page shows when each row was committed (a
	// pool's public board does not).
	Committed bool
	// CountsCorrect is set when the kind's count of correct items means
	// something (kind.Counter): a roleplay board has no Correct column.
	CountsCorrect bool
	sorter
	// CSV links to these rows as CSV, in this order.
	CSV string
}

// sorter is the server-side order of a table: its column headings link to
// the same page sorted by them.
type sorter struct {
	// Sort and Dir are the order shown ("rank" and "asc" by default).
	Sort, Dir string
	// path and query rebuild the page's URL in the sort links (?at= kept);
	// anchor is the table's id, so a re-sorted page opens at the table.
	path, anchor string
	query        url.Values
}

// sortHead is one sortable column heading.
type sortHead struct {
	Label string
	// URL sorts by this column (the other direction when it is the current one).
	URL string
	// Aria is the aria-sort value: "ascending", "descending" or "none".
	Aria string
	Num  bool
}

// Head is the heading of the column key, labelled label; num right-aligns it
// and sorts it from the highest first.
func (b sorter) Head(key, label string, num bool) sortHead {
	dir := "asc"
	if num && key != "rank" {
		dir = "desc"
	}
	h := sortHead{Label: label, Aria: "none", Num: num}
	if b.path == "" {
		return h // a table that is not sorted on its page: no link
	}
	if b.Sort == key {
		h.Aria = map[string]string{"asc": "ascending", "desc": "descending"}[b.Dir]
		dir = map[string]string{"asc": "desc", "desc": "asc"}[b.Dir]
	}
	q := url.Values{}
	for k, v := range b.query {
		q[k] = v
	}
	q.Set("sort", key)
	q.Set("dir", dir)
	h.URL = b.path + "?" + q.Encode() + "#" + b.anchor
	return h
}

// sortOption is one column in the sort select of a narrow screen, where
// the column headings are hidden.
type sortOption struct {
	Key, Label string
	Selected   bool
}

// Options lists the columns a board sorts by: the fixed ones (without the
// submitter column when rows are submitters), then the components.
func (b board) Options() []sortOption {
	var opts []sortOption
	add := func(key, label string) {
		opts = append(opts, sortOption{Key: key, Label: label, Selected: b.Sort == key})
	}
	add("rank", "Rank")
	add("name", "Name")
	if !b.BySubmitter {
		add("submitter", "Submitter")
	}
	add("score", "Score")
	for _, c := range b.Components {
		add(b.ComponentKey(c), c)
	}
	if b.CountsCorrect {
		add("correct", "Correct")
	}
	if b.Committed {
		add("committed", "Committed")
	}
	return opts
}

// Hidden are the page's other query parameters, kept by the sort form.
func (b sorter) Hidden() url.Values { return b.query }

// ComponentKey is the sort key of component name.
func (board) ComponentKey(name string) string { return "c:" + name }

// newBoard builds the board of competition c's rows for the page at r
// (whose ?sort= and ?dir= it follows), with each row's submitter from subs;
// its CSV is c's, with the page's query added.
func (s *Server) newBoard(r *http.Request, c competition.Competition, rows []competition.Row, subs []competition.Submission) board {
	b := board{Rows: leaderboardRows(rows), sorter: newSorter(r, "leaderboard"), CountsCorrect: s.cfg.Kinds.CountsCorrect(c)}
	if v := r.URL.Query().Get("at"); v != "" {
		b.query.Set("at", v)
	}
	submitter, name := map[string]string{}, map[string]string{}
	for _, s := range subs {
		submitter[s.ID], name[s.ID] = s.Submitter, s.Name
	}
	for i := range b.Rows {
		row := &b.Rows[i]
		// A copied entrant missing from these rows (not yet scored on a
		// pool's snapshot) is still named, not shown as an id.
		if row.CopyOf != "" && row.CopyOfName == "" {
			row.CopyOfName = cmp.Or(name[row.CopyOf], row.CopyOf)
		}
		if row.SubmitterID = row.Submitter; row.SubmitterID == "" {
			row.SubmitterID = submitter[row.SubmissionID]
		}
		row.Handle = competition.ShortKey(row.SubmitterID)
		b.BySubmitter = b.BySubmitter || row.Submitter != ""
	}
	b.CSV = "/c/" + c.ID + "/leaderboard.csv"
	if len(b.query) > 0 {
		b.CSV += "?" + b.query.Encode()
	}
	return b
}

// withComponents fills the component columns of a board on competition c
// when its kind breaks scores into components (kind.Explainer), from the
// results the public may see of each row's submission.
func (s *Server) withComponents(ctx context.Context, c competition.Competition, b *board) error {
	k, err := s.cfg.Kinds.Get(string(c.Kind))
	if err != nil {
		return nil // an unknown kind has no components to show
	}
	if _, ok := k.(kind.Explainer); !ok {
		return nil
	}
	names := map[string]bool{}
	comps := make([]map[string]float64, len(b.Rows))
	budget := componentBudget
	for i, row := range b.Rows {
		if row.SubmissionID == "" {
			continue
		}
		if budget <= 0 {
			b.Partial = true
			break
		}
		results, err := s.cfg.Store.Results(ctx, row.SubmissionID, 0, budget+1)
		if err != nil {
			return err
		}
		if len(results) > budget {
			b.Partial = true
			break
		}
		budget -= len(results)
		if len(results) == 0 {
			continue
		}
		m, err := s.cfg.Kinds.Components(c, results)
		if err != nil {
			// A component the kind cannot compute is left blank: the
			// score, which the card already holds, still ranks the row.
			s.cfg.Logger.Warn("web: leaderboard components", "submission", row.SubmissionID, "err", err)
			continue
		}
		comps[i] = m
		for n := range m {
			names[n] = true
		}
	}
	b.Components = slices.Sorted(maps.Keys(names))
	for i := range b.Rows {
		b.Rows[i].Comp = make([]compCell, len(b.Components))
		for j, n := range b.Components {
			v, ok := comps[i][n]
			b.Rows[i].Comp[j] = compCell{V: v, OK: ok}
		}
	}
	return nil
}

// compCell is one component of one row; OK is false when it is unknown.
type compCell struct {
	V  float64
	OK bool
}

// newSorter is the rank order of the table whose id is anchor on the page
// at r.
func newSorter(r *http.Request, anchor string) sorter {
	return sorter{Sort: "rank", Dir: "asc", path: r.URL.Path, anchor: anchor, query: url.Values{}}
}

// sortRows orders rows by ?sort= and ?dir= of q, as order compares them
// for a column key (false: no such column), and records the order in so;
// an unknown column or direction is a 400 page.
func sortRows[R any](so *sorter, rows []R, q url.Values, order func(key string) (func(x, y R) int, bool)) error {
	key, dir := cmp.Or(q.Get("sort"), "rank"), cmp.Or(q.Get("dir"), "asc")
	if dir != "asc" && dir != "desc" {
		return &pageError{http.StatusBadRequest, fmt.Sprintf("dir must be asc or desc, got %q.", firstRunes(dir, 20))}
	}
	less, ok := order(key)
	if !ok {
		return &pageError{http.StatusBadRequest, fmt.Sprintf("There is no column %q to sort by.", firstRunes(key, 40))}
	}
	so.Sort, so.Dir = key, dir
	slices.SortStableFunc(rows, func(x, y R) int {
		if dir == "desc" {
			return less(y, x)
		}
		return less(x, y)
	})
	return nil
}

// sortBoard orders b's rows by ?sort= and ?dir= of q.
func sortBoard(b *board, q url.Values) error {
	return sortRows(&b.sorter, b.Rows, q, func(key string) (func(x, y boardRow) int, bool) {
		if key == "correct" && !b.CountsCorrect {
			return nil, false
		}
		return rowOrder(key, b.Components)
	})
}

// byColumn compares rows by the column key among cols, rank breaking ties
// (key "rank" is rank alone); false when there is no such column.
func byColumn[R any](key string, rank func(R) int, cols map[string]func(x, y R) int) (func(x, y R) int, bool) {
	byRank := func(x, y R) int { return cmp.Compare(rank(x), rank(y)) }
	if key == "rank" {
		return byRank, true
	}
	f, ok := cols[key]
	if !ok {
		return nil, false
	}
	return func(x, y R) int { return cmp.Or(f(x, y), byRank(x, y)) }, true
}

// rowOrder compares leaderboard rows by column key.
func rowOrder(key string, components []string) (func(x, y boardRow) int, bool) {
	cols := map[string]func(x, y boardRow) int{
		"name":      func(x, y boardRow) int { return strings.Compare(x.Name, y.Name) },
		"submitter": func(x, y boardRow) int { return strings.Compare(x.Handle, y.Handle) },
		"score":     func(x, y boardRow) int { return cmp.Compare(x.Score, y.Score) },
		"correct":   func(x, y boardRow) int { return cmp.Compare(x.Correct, y.Correct) },
		"committed": func(x, y boardRow) int { return x.CommittedAt.Compare(y.CommittedAt) },
	}
	if j := slices.Index(components, strings.TrimPrefix(key, "c:")); strings.HasPrefix(key, "c:") && j >= 0 {
		// A row without the component sorts before every value: last when
		// the highest come first.
		cols[key] = func(x, y boardRow) int {
			cx, cy := x.Comp[j], y.Comp[j]
			if cx.OK != cy.OK {
				if cx.OK {
					return 1
				}
				return -1
			}
			return cmp.Compare(cx.V, cy.V)
		}
	}
	return byColumn(key, func(r boardRow) int { return r.Rank }, cols)
}

func firstRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// writeBoardCSV writes b's rows as CSV: the page's columns, the interval's
// ends and ids in full.
func writeBoardCSV(w http.ResponseWriter, name string, b board) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`-leaderboard.csv"`)
	cw := csv.NewWriter(w)
	head := []string{"rank", "name", "submission_id", "submitter", "score", "ci_low", "ci_high", "correct", "items", "tie", "copy_of", "committed_at"}
	// Without a count of correct items that means something, the column
	// is left out rather than filled with a number nobody should read.
	const correctCol = 7
	if !b.CountsCorrect {
		head = slices.Delete(head, correctCol, correctCol+1)
	}
	rows := [][]string{append(head, b.Components...)}
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, r := range b.Rows {
		committed := r.CommittedAt.UTC().Format(time.RFC3339Nano)
		if r.CommittedAt.IsZero() {
			committed = ""
		}
		line := []string{strconv.Itoa(r.Rank), cell(r.Name), cell(r.SubmissionID), cell(r.SubmitterID),
			num(r.Score), num(r.CILow), num(r.CIHigh), strconv.Itoa(r.Correct), strconv.Itoa(r.Items),
			strconv.FormatBool(r.Tie), cell(r.CopyOf), committed}
		if !b.CountsCorrect {
			line = slices.Delete(line, correctCol, correctCol+1)
		}
		for _, c := range r.Comp {
			if c.OK {
				line = append(line, num(c.V))
			} else {
				line = append(line, "")
			}
		}
		rows = append(rows, line)
	}
	return cw.WriteAll(rows)
}

// cell neutralises a competitor-chosen string that a spreadsheet would run
// as a formula (=, +, -, @, tab, carriage return first): a leading
// apostrophe makes it text, as OWASP's CSV-injection advice says.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Path is the page the table is on.
func (b sorter) Path() string { return b.path }

// rankOrder is b's rows in rank order, whatever the page sorts by.
func (b board) rankOrder() []competition.Row {
	rows := make([]competition.Row, len(b.Rows))
	for i, r := range b.Rows {
		rows[i] = r.Row
	}
	slices.SortStableFunc(rows, func(a, b competition.Row) int { return a.Rank - b.Rank })
	return rows
}
