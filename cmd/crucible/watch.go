package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"crucible/internal/competition"
)

// screen redraws a block of text in place on a terminal: before each draw
// it moves the cursor up by the rows the last draw took, counting the
// rows a line longer than the terminal wraps onto, and clears to the end
// of the screen, so no stale row stays behind when a line grows or wraps.
type screen struct {
	w     io.Writer
	width func() int // the terminal's columns; ≤ 0 when unknown
	rows  int
}

func newScreen(w io.Writer) *screen {
	return &screen{w: w, width: func() int {
		if f, ok := w.(*os.File); ok {
			if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
				return cols
			}
		}
		return 0
	}}
}

func (s *screen) draw(text string) {
	if s.rows > 0 {
		fmt.Fprintf(s.w, "\x1b[%dA", s.rows)
	}
	fmt.Fprint(s.w, "\r\x1b[J"+text)
	s.rows = screenRows(text, s.width())
}

// screenRows counts the terminal rows text takes at width columns: each
// line at least one, a longer line one per width columns begun (width ≤ 0:
// one per line). Runes count one column each.
func screenRows(text string, width int) int {
	rows := 0
	for _, line := range strings.SplitAfter(text, "\n") {
		if line == "" {
			continue
		}
		n := utf8.RuneCountInString(strings.TrimSuffix(line, "\n"))
		if width <= 0 || n <= width {
			rows++
			continue
		}
		rows += (n + width - 1) / width
	}
	return rows
}

// progressRates tracks each submission's progress across refreshes to
// show its rate and the time left.
type progressRates struct {
	first map[string]progressSample
}

type progressSample struct {
	at   time.Time
	done int
}

// observe records subs at now and returns, per submission that is making
// progress, its rate and ETA ("12.5/s ETA 40s").
func (p *progressRates) observe(now time.Time, subs []competition.Submission) map[string]string {
	if p.first == nil {
		p.first = map[string]progressSample{}
	}
	out := map[string]string{}
	for _, s := range subs {
		f, ok := p.first[s.ID]
		if !ok || s.ItemsDone < f.done { // a new submission, or a restart
			p.first[s.ID] = progressSample{now, s.ItemsDone}
			continue
		}
		elapsed := now.Sub(f.at).Seconds()
		if elapsed <= 0 || s.ItemsDone == f.done || s.ItemsDone >= s.ItemsTotal {
			continue
		}
		rate := float64(s.ItemsDone-f.done) / elapsed
		eta := time.Duration(float64(s.ItemsTotal-s.ItemsDone) / rate * float64(time.Second)).Round(time.Second)
		out[s.ID] = fmt.Sprintf("%.1f/s ETA %s", rate, eta)
	}
	return out
}
