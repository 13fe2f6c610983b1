package web

import (
	"fmt"
	"strings"
	"time"

	"crucible/internal/competition"
)

// Interval bars: one small SVG per leaderboard row on a shared 0..1 scale.
const (
	barWidth  = 240
	barHeight = 20
	barPad    = 8
)

// barX maps a score in [0,1] to an x coordinate of an interval bar.
func barX(v float64) float64 {
	return barPad + clamp01(v)*(barWidth-2*barPad)
}

func clamp01(v float64) float64 {
	return min(max(v, 0), 1)
}

// boardRow is a leaderboard row with its interval bar's geometry.
type boardRow struct {
	competition.Row
	// Lo, X and Hi are the interval's ends and the score, in bar pixels.
	Lo, X, Hi float64
	// BandLo and BandHi are the leader's interval, drawn behind every bar so
	// that an overlap (a tie) is visible.
	BandLo, BandHi, BandW float64
	// CopyOfName names the submission this one copies (Row.CopyOf).
	CopyOfName string
	// Contaminated marks a model flagged by the contamination check.
	Contaminated bool
	// SubmitterID is the submitter's key id, Handle its short form.
	SubmitterID, Handle string
	// Comp are the kind's score components, in board.Components order.
	Comp []compCell
}

func leaderboardRows(rows []competition.Row) []boardRow {
	out := make([]boardRow, len(rows))
	names := map[string]string{}
	for _, r := range rows {
		names[r.SubmissionID] = r.Name
	}
	for i, r := range rows {
		out[i] = boardRow{Row: r, Lo: barX(r.CILow), X: barX(r.Score), Hi: barX(r.CIHigh),
			BandLo: barX(rows[0].CILow), BandHi: barX(rows[0].CIHigh)}
		out[i].BandW = out[i].BandHi - out[i].BandLo
		out[i].CopyOfName = names[r.CopyOf]
	}
	return out
}

// barTicks are the 0..1 marks above the interval bars.
func barTicks() []tick {
	var ticks []tick
	for _, v := range []float64{0, 0.25, 0.5, 0.75, 1} {
		ticks = append(ticks, tick{Pos: barX(v), Label: trimFloat(v)})
	}
	return ticks
}

// Score-over-time chart geometry.
const (
	chartWidth  = 720
	chartHeight = 260
	chartLeft   = 48
	chartRight  = 16
	chartTop    = 16
	chartBottom = 44
)

// chart is a server-drawn SVG of every scored submission's score, with its
// interval, in commit order, and the best score so far as a step line.
type chart struct {
	W, H                     int
	Left, Right, Top, Bottom float64
	// TickX and TickY place the y and x tick labels; LabelX and LabelY the
	// x axis title.
	TickX, TickY, LabelX, LabelY float64
	Points                       []chartPoint
	// Best is the best-so-far step line as SVG polyline points.
	Best   string
	XTicks []tick
	YTicks []tick
	// From and To are the first and last commit times plotted.
	From, To time.Time
}

// chartPoint is one scored submission on the chart.
type chartPoint struct {
	N                    int
	X, Y, YLo, YHi       float64
	Name, SubmissionID   string
	Score, CILow, CIHigh float64
	At                   time.Time
	// Record marks a submission that raised the best score so far.
	Record bool
}

// tick is an axis mark at Pos (pixels) with its label.
type tick struct {
	Pos   float64
	Label string
}

// scoreChart plots the scored submissions of subs (given in commit order).
// The x axis is the commit order rather than the clock, so that a burst of
// submissions a second apart stays as readable as a month of them; the
// commit times are in each point's tooltip and under the axis.
func scoreChart(subs []competition.Submission) chart {
	c := chart{W: chartWidth, H: chartHeight, Left: chartLeft, Right: chartWidth - chartRight,
		Top: chartTop, Bottom: chartHeight - chartBottom}
	c.TickX, c.TickY = c.Left-6, c.Bottom+16
	c.LabelX, c.LabelY = (c.Left+c.Right)/2, chartHeight-6
	for _, v := range []float64{0, 0.25, 0.5, 0.75, 1} {
		c.YTicks = append(c.YTicks, tick{Pos: c.y(v), Label: trimFloat(v)})
	}
	var scored []competition.Submission
	for _, s := range subs {
		if s.State == competition.StateScored && s.Card != nil {
			scored = append(scored, s)
		}
	}
	n := len(scored)
	if n == 0 {
		return c
	}
	x := func(i int) float64 {
		if n == 1 {
			return (c.Left + c.Right) / 2
		}
		return c.Left + 12 + float64(i)*(c.Right-c.Left-24)/float64(n-1)
	}
	best := -1.0
	var line []string
	step := max(1, (n+9)/10)
	for i, s := range scored {
		p := chartPoint{N: i + 1, X: x(i), Y: c.y(s.Card.Score), YLo: c.y(s.Card.CILow), YHi: c.y(s.Card.CIHigh),
			Name: s.Name, SubmissionID: s.ID, Score: s.Card.Score, CILow: s.Card.CILow, CIHigh: s.Card.CIHigh, At: s.CommittedAt}
		if s.Card.Score > best {
			if best >= 0 {
				line = append(line, pt(p.X, c.y(best)))
			}
			best, p.Record = s.Card.Score, true
			line = append(line, pt(p.X, p.Y))
		}
		c.Points = append(c.Points, p)
		if i%step == 0 || i == n-1 {
			c.XTicks = append(c.XTicks, tick{Pos: p.X, Label: fmt.Sprint(i + 1)})
		}
	}
	line = append(line, pt(c.Right, c.y(best)))
	c.Best = strings.Join(line, " ")
	c.From, c.To = scored[0].CommittedAt, scored[n-1].CommittedAt
	return c
}

// y maps a score in [0,1] to the chart's y coordinate (up is better).
func (c chart) y(v float64) float64 {
	return c.Bottom - clamp01(v)*(c.Bottom-c.Top)
}

func pt(x, y float64) string { return fmt.Sprintf("%.1f,%.1f", x, y) }

func trimFloat(v float64) string {
	s := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	if s == "" {
		return "0"
	}
	return s
}
