package web

// A pool's charts: how its escrow is (or would be) paid by rank, and after
// settlement how each entrant moved from the public to the private ranking.

import (
	"fmt"

	"crucible/internal/competition"
	"crucible/internal/ledger"
)

// maxChartRows bounds the entrants a pool chart draws; the tables list all.
const maxChartRows = 30

// payoutBar is one entrant's bar in a payout chart.
type payoutBar struct {
	Name  string
	Units int64
	Y, W  float64
}

// payoutChart is a horizontal bar chart of payouts, largest scale first.
type payoutChart struct {
	// Projected: drawn from the current public board, as the rule would pay
	// if the private items ranked the same (the pool has not settled).
	Projected bool
	Bars      []payoutBar
	W, H      float64
	// Left is where bars start (after the names), BarMax their longest.
	Left, BarMax float64
}

const payoutRowH, payoutLeft, payoutBarMax = 22.0, 170.0, 280.0

func newPayoutChart(projected bool, names []string, units []int64) *payoutChart {
	n := min(len(names), maxChartRows)
	if n == 0 {
		return nil
	}
	var top int64 = 1
	for _, u := range units[:n] {
		top = max(top, u)
	}
	c := &payoutChart{Projected: projected, W: payoutLeft + payoutBarMax + 90, H: float64(n)*payoutRowH + 8, Left: payoutLeft, BarMax: payoutBarMax}
	for i := range n {
		c.Bars = append(c.Bars, payoutBar{Name: shortName(names[i]), Units: units[i], Y: 4 + float64(i)*payoutRowH,
			W: payoutBarMax * float64(units[i]) / float64(top)})
	}
	return c
}

// settledPayouts charts a settlement's payouts in private order.
func settledPayouts(st competition.Settlement) *payoutChart {
	names, units := make([]string, len(st.Payouts)), make([]int64, len(st.Payouts))
	for i, p := range st.Payouts {
		names[i], units[i] = p.Name, p.Units
	}
	return newPayoutChart(false, names, units)
}

// projectedPayouts charts how p's rule would split amount over the public
// board rows (copies earn nothing); nil when the rule or board cannot say.
func projectedPayouts(p competition.Pool, amount int64, rows []competition.Row) *payoutChart {
	rule, err := ledger.ParseRule(p.Rule)
	if err != nil || len(rows) == 0 {
		return nil
	}
	entrants := make([]ledger.Entrant, len(rows))
	for i, r := range rows {
		entrants[i] = ledger.Entrant{Name: r.SubmissionID, Score: r.Score, CommittedAt: r.CommittedAt, Failed: r.CopyOf != "", Progress: 1}
	}
	alloc, err := ledger.Allocate(rule, amount, entrants)
	if err != nil {
		return nil
	}
	names, units := make([]string, len(rows)), make([]int64, len(rows))
	for i, r := range rows {
		names[i], units[i] = r.Name, alloc.Payouts[r.SubmissionID]
	}
	return newPayoutChart(true, names, units)
}

// shakeLine is one entrant's move from its public to its private rank.
type shakeLine struct {
	Name                string
	PublicRank, Private int
	Y1, Y2              float64
	Class               string
}

// shakeChart is a slope chart: public ranks on the left, private on the right.
type shakeChart struct {
	Lines  []shakeLine
	W, H   float64
	X1, X2 float64
}

const shakeRowH = 22.0

// newShakeChart draws the settled entrants that had both ranks.
func newShakeChart(rows []finalRow) *shakeChart {
	c := &shakeChart{W: 460, X1: 150, X2: 310}
	ranks := 0
	for _, r := range rows {
		if r.PublicRank == 0 || r.PrivateRank == 0 || len(c.Lines) == maxChartRows {
			continue
		}
		l := shakeLine{Name: shortName(r.Name), PublicRank: r.PublicRank, Private: r.PrivateRank,
			Y1: 14 + float64(r.PublicRank-1)*shakeRowH, Y2: 14 + float64(r.PrivateRank-1)*shakeRowH, Class: "same"}
		switch {
		case r.Moved > 0:
			l.Class = "up"
		case r.Moved < 0:
			l.Class = "down"
		}
		ranks = max(ranks, r.PublicRank, r.PrivateRank)
		c.Lines = append(c.Lines, l)
	}
	if len(c.Lines) == 0 {
		return nil
	}
	c.H = float64(ranks)*shakeRowH + 10
	return c
}

// shortName keeps a chart label to 20 characters.
func shortName(s string) string {
	if r := []rune(s); len(r) > 20 {
		return string(r[:19]) + "…"
	}
	return s
}

func (b payoutBar) Label() string { return fmt.Sprintf("%s: %s", b.Name, formatUnits(b.Units)) }
