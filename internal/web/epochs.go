package web

// This file holds the epoch pages: /epochs lists every competition with a
// closed model-competition epoch and shows the latest one's weights, win
// rates and copies, then the validator consensus (consensus.go);
// /epochs/{id} shows one competition's epoch, chosen from its recent epochs
// with ?epoch=N.

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"crucible/internal/competition"
	"crucible/internal/store"
	"crucible/internal/weights"
)

// EpochStore is what the epoch pages read besides Store. *store.DB
// implements it; when Config.Store does not, /epochs lists nothing.
type EpochStore interface {
	// LatestEpoch returns the last closed epoch of a competition, or -1.
	LatestEpoch(ctx context.Context, competitionID string) (int64, error)
	// EpochRecord decodes the record of a closed epoch into out.
	EpochRecord(ctx context.Context, competitionID string, epoch int64, out any) error
}

// EpochLister lists the closed epochs of a competition, newest first. A
// store that implements it lets /epochs/{id} offer every epoch; otherwise the
// page looks for closed epochs among the RecentEpochs before the latest.
type EpochLister interface {
	ClosedEpochs(ctx context.Context, competitionID string) ([]int64, error)
}

// RecentEpochs is how many epoch numbers before the latest /epochs/{id}
// looks at for its list when the store cannot list them (48 default epochs
// of 72 minutes are 2.4 days).
const RecentEpochs = 48

func (s *Server) epochStore() (EpochStore, bool) {
	es, ok := s.cfg.Store.(EpochStore)
	return es, ok
}

// epochsPage is /epochs.
type epochsPage struct {
	Page
	Competitions []epochSummary
	// Waiting are roleplay competitions whose first epoch has not closed.
	Waiting []competition.Competition
	// Consensus is the validator consensus epoch shown, nil before the first.
	Consensus *consensusView
}

// epochSummary is a competition with its latest closed epoch.
type epochSummary struct {
	Competition competition.Competition
	Latest      epochView
}

// epochPage is /epochs/{id}.
type epochPage struct {
	Page
	Competition competition.Competition
	Epoch       epochView
	// Recent are the closed epochs offered in the select, newest first.
	Recent []epochOption
}

// epochOption is one closed epoch in the select.
type epochOption struct {
	N          int64
	Start, End time.Time
	Selected   bool
}

// epochView is one closed epoch: its record, its rows by weight and a bar
// chart of the weights.
type epochView struct {
	weights.Record
	Rows  []epochRow
	Chart weightChart
	// Originals counts the rows that are not copies.
	Originals int
	// sorter orders Rows on /epochs/{id}; on /epochs, which shows many
	// epochs, the tables keep their weight order and have no sort links.
	sorter
	// CSV links to the rows as CSV, in the order shown.
	CSV string
}

// epochRow is one submission in an epoch.
type epochRow struct {
	ID, Name               string
	Score, WinRate, Weight float64
	// CopyOf is the earlier submission this one copies (it weighs 0).
	CopyOf, CopyOfName string
	Rank               int
	// Top marks the heaviest submission, when it weighs anything.
	Top bool
	// SubmitterID is the submitter's key id, Handle its short form.
	SubmitterID, Handle string
}

// Weight bar chart geometry: one horizontal bar per submission on a 0..1
// scale, names in a column on the left and values after the bars.
const (
	weightWidth  = 720
	weightLabelW = 190
	weightValueW = 70
	weightRowH   = 26
	weightTop    = 26
	weightBottom = 8
)

// weightChart is a server-drawn SVG of an epoch's weights.
type weightChart struct {
	W, H        int
	Left, Right float64
	// NameX is where the right-aligned submission names end.
	NameX float64
	// AxisY is where the tick labels sit; Top and Bottom bound the grid.
	AxisY, Top, Bottom float64
	Bars               []weightBar
	Ticks              []tick
}

// weightBar is one submission's bar.
type weightBar struct {
	Name, Label string
	Y, TextY, W float64
	ValueX      float64
	Copy, Top   bool
}

func (c weightChart) x(v float64) float64 { return c.Left + clamp01(v)*(c.Right-c.Left) }

// newEpochView orders an epoch's submissions by weight (then win rate, then
// name) and draws their weights.
func newEpochView(rec weights.Record, submitters map[string]string) epochView {
	v := epochView{Record: rec}
	for id, name := range rec.Names {
		row := epochRow{ID: id, Name: name, Score: rec.Scores[id], WinRate: rec.WinRates[id], Weight: rec.Weights[id],
			SubmitterID: submitters[id], Handle: competition.ShortKey(submitters[id])}
		if orig, ok := rec.Copies[id]; ok {
			row.CopyOf, row.CopyOfName = orig, rec.Names[orig]
			if row.CopyOfName == "" {
				row.CopyOfName = orig
			}
		} else {
			v.Originals++
		}
		v.Rows = append(v.Rows, row)
	}
	sort.Slice(v.Rows, func(i, j int) bool {
		a, b := v.Rows[i], v.Rows[j]
		if a.Weight != b.Weight {
			return a.Weight > b.Weight
		}
		if a.WinRate != b.WinRate {
			return a.WinRate > b.WinRate
		}
		return a.Name+a.ID < b.Name+b.ID
	})
	for i := range v.Rows {
		v.Rows[i].Rank = i + 1
		v.Rows[i].Top = i == 0 && v.Rows[i].Weight > 0
	}
	v.Chart = weightBars(v.Rows)
	v.CSV = fmt.Sprintf("/epochs/%s/weights.csv?epoch=%d", rec.Competition, rec.Epoch)
	return v
}

// sortedEpochView is newEpochView with its table in the order r asks for
// (?sort=, ?dir=); the chart keeps the weight order.
func sortedEpochView(r *http.Request, rec weights.Record, submitters map[string]string) (epochView, error) {
	v := newEpochView(rec, submitters)
	v.sorter = newSorter(r, fmt.Sprintf("epoch-%s-%d", rec.Competition, rec.Epoch))
	if err := sortRows(&v.sorter, v.Rows, r.URL.Query(), epochOrder); err != nil {
		return v, err
	}
	if v.Sort != "rank" || v.Dir != "asc" {
		v.CSV += "&" + url.Values{"sort": {v.Sort}, "dir": {v.Dir}}.Encode()
	}
	return v, nil
}

// epochOrder compares epoch rows by column key; rank is by weight.
func epochOrder(key string) (func(x, y epochRow) int, bool) {
	return byColumn(key, func(r epochRow) int { return r.Rank }, map[string]func(x, y epochRow) int{
		"name":      func(x, y epochRow) int { return strings.Compare(x.Name, y.Name) },
		"submitter": func(x, y epochRow) int { return strings.Compare(x.Handle, y.Handle) },
		"score":     func(x, y epochRow) int { return cmp.Compare(x.Score, y.Score) },
		"winrate":   func(x, y epochRow) int { return cmp.Compare(x.WinRate, y.WinRate) },
		"weight":    func(x, y epochRow) int { return cmp.Compare(x.Weight, y.Weight) },
	})
}

func weightBars(rows []epochRow) weightChart {
	c := weightChart{W: weightWidth, H: weightTop + len(rows)*weightRowH + weightBottom,
		Left: weightLabelW, Right: weightWidth - weightValueW, NameX: weightLabelW - 8, AxisY: 14, Top: weightTop - 6}
	c.Bottom = float64(c.H - weightBottom)
	for _, v := range []float64{0, 0.25, 0.5, 0.75, 1} {
		c.Ticks = append(c.Ticks, tick{Pos: c.x(v), Label: trimFloat(v)})
	}
	for i, r := range rows {
		y := float64(weightTop + i*weightRowH)
		name := []rune(r.Name)
		if len(name) > 26 {
			name = append(name[:25], '…')
		}
		b := weightBar{Name: string(name), Label: fmt.Sprintf("%.3f", r.Weight), Y: y + 4, TextY: y + weightRowH/2,
			W: c.x(r.Weight) - c.Left, Copy: r.CopyOf != "", Top: r.Top}
		if b.Copy {
			b.Label += " (copy)"
		}
		b.ValueX = c.Left + b.W + 6
		c.Bars = append(c.Bars, b)
	}
	return c
}

// epochs serves /epochs.
func (s *Server) epochs(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	data := epochsPage{Page: Page{Title: "Epochs"}}
	es, ok := s.epochStore()
	comps, err := s.cfg.Store.ListCompetitions(ctx)
	if err != nil {
		return err
	}
	for _, c := range comps {
		latest := int64(-1)
		if ok {
			if latest, err = es.LatestEpoch(ctx, c.ID); err != nil {
				return err
			}
		}
		if latest < 0 {
			if s.cfg.Kinds.Epochs(c.Kind) {
				data.Waiting = append(data.Waiting, c)
			}
			continue
		}
		var rec weights.Record
		if err := es.EpochRecord(ctx, c.ID, latest, &rec); err != nil {
			return err
		}
		submitters, err := s.submitters(ctx, c.ID)
		if err != nil {
			return err
		}
		data.Competitions = append(data.Competitions, epochSummary{Competition: c, Latest: newEpochView(rec, submitters)})
	}
	if data.Consensus, err = s.consensus(ctx, r); err != nil {
		return err
	}
	s.render(w, http.StatusOK, "epochs", data)
	return nil
}

// epochDetail serves /epochs/{id}, the latest epoch or ?epoch=N.
func (s *Server) epochDetail(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, rec, n, latest, err := s.epochAsked(r)
	if err != nil {
		return err
	}
	es, _ := s.epochStore()
	submitters, err := s.submitters(ctx, c.ID)
	if err != nil {
		return err
	}
	recent, err := s.recentEpochs(ctx, es, c.ID, latest)
	if err != nil {
		return err
	}
	view, err := sortedEpochView(r, rec, submitters)
	if err != nil {
		return err
	}
	data := epochPage{
		Page:        Page{Title: fmt.Sprintf("Epoch %d of %s", n, c.Title), APIPath: fmt.Sprintf("/api/v1/competitions/%s/weights?epoch=%d", c.ID, n)},
		Competition: c,
		Epoch:       view,
	}
	found := false
	for _, e := range recent {
		e.Selected = e.N == n
		found = found || e.Selected
		data.Recent = append(data.Recent, e)
	}
	if !found { // an older epoch asked for by number
		data.Recent = append(data.Recent, epochOption{N: n, Start: rec.Start, End: rec.End, Selected: true})
	}
	s.render(w, http.StatusOK, "epoch", data)
	return nil
}

// recentEpochs lists closed epochs of a competition, newest first: all of
// them from an EpochLister, else those among the RecentEpochs numbers up to
// latest.
func (s *Server) recentEpochs(ctx context.Context, es EpochStore, id string, latest int64) ([]epochOption, error) {
	var numbers []int64
	if l, ok := es.(EpochLister); ok {
		var err error
		if numbers, err = l.ClosedEpochs(ctx, id); err != nil {
			return nil, err
		}
	} else {
		for n := latest; n >= 0 && n > latest-RecentEpochs; n-- {
			numbers = append(numbers, n)
		}
	}
	var out []epochOption
	for _, n := range numbers {
		var rec weights.Record
		err := es.EpochRecord(ctx, id, n, &rec)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, epochOption{N: n, Start: rec.Start, End: rec.End})
	}
	return out, nil
}

// epochAsked reads the record of the epoch r asks for (?epoch=, default
// the latest closed) of competition /epochs/{id}.
func (s *Server) epochAsked(r *http.Request) (c competition.Competition, rec weights.Record, n, latest int64, err error) {
	ctx := r.Context()
	if c, err = s.cfg.Store.GetCompetition(ctx, r.PathValue("id")); err != nil {
		return
	}
	es, ok := s.epochStore()
	if !ok {
		err = notFound("This server keeps no epochs.")
		return
	}
	if latest, err = es.LatestEpoch(ctx, c.ID); err != nil {
		return
	}
	if latest < 0 {
		err = notFound("No epoch of %s has closed yet.", c.Title)
		return
	}
	n = latest
	if v := r.URL.Query().Get("epoch"); v != "" {
		n, err = strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			err = &pageError{http.StatusBadRequest, fmt.Sprintf("epoch must be a non-negative whole number, got %q.", firstRunes(v, 30))}
			return
		}
	}
	err = es.EpochRecord(ctx, c.ID, n, &rec)
	return
}

// submitters maps the submissions of competition id to their submitters.
func (s *Server) submitters(ctx context.Context, id string) (map[string]string, error) {
	subs, err := s.cfg.Store.ListSubmissions(ctx, id)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(subs))
	for _, sub := range subs {
		m[sub.ID] = sub.Submitter
	}
	return m, nil
}

// epochCSV serves an epoch's weights table (/epochs/{id}, ?epoch=, ?sort=,
// ?dir=) as CSV, in the page's order.
func (s *Server) epochCSV(w http.ResponseWriter, r *http.Request) error {
	c, rec, n, _, err := s.epochAsked(r)
	if err != nil {
		return err
	}
	submitters, err := s.submitters(r.Context(), c.ID)
	if err != nil {
		return err
	}
	v, err := sortedEpochView(r, rec, submitters)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-epoch-%d.csv"`, c.ID, n))
	rows := [][]string{{"rank", "name", "submission_id", "submitter", "score", "win_rate", "weight", "copy_of"}}
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	for _, row := range v.Rows {
		rows = append(rows, []string{strconv.Itoa(row.Rank), cell(row.Name), cell(row.ID), cell(row.SubmitterID),
			num(row.Score), num(row.WinRate), num(row.Weight), cell(row.CopyOf)})
	}
	return csv.NewWriter(w).WriteAll(rows)
}
