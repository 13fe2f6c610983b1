package main

import (
	"strings"
	"testing"
	"time"

	"crucible/internal/competition"
)

// A wrapped line takes as many rows as it wraps onto: the next redraw
// moves up over all of them and clears to the end of the screen.
func TestWatchRedrawsByTerminalRows(t *testing.T) {
	if got := screenRows("short\n"+strings.Repeat("x", 25)+"\n\né", 10); got != 1+3+1+1 {
		t.Errorf("rows = %d, want 6 (a 25-column line wraps onto 3 rows of 10)", got)
	}
	if got := screenRows(strings.Repeat("x", 25)+"\n", 0); got != 1 {
		t.Errorf("rows at an unknown width = %d, want 1 per line", got)
	}
	var b strings.Builder
	s := &screen{w: &b, width: func() int { return 10 }}
	s.draw("a\n" + strings.Repeat("y", 21) + "\n")
	b.Reset()
	s.draw("b\n")
	if b.String() != "\x1b[4A\r\x1b[J"+"b\n" {
		t.Errorf("redraw = %q, want up 4 rows (1 + 3 wrapped), clear, text", b.String())
	}
}

func TestWatchShowsRateAndETA(t *testing.T) {
	var p progressRates
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sub := func(done int) []competition.Submission {
		return []competition.Submission{{ID: "s-1", ItemsDone: done, ItemsTotal: 100}}
	}
	if r := p.observe(t0, sub(10)); len(r) != 0 {
		t.Errorf("first sight: %v, want no rate yet", r)
	}
	if r := p.observe(t0.Add(10*time.Second), sub(30)); r["s-1"] != "2.0/s ETA 35s" {
		t.Errorf("20 items in 10 s, 70 left: %q, want 2.0/s ETA 35s", r["s-1"])
	}
	if r := p.observe(t0.Add(20*time.Second), sub(100)); len(r) != 0 {
		t.Errorf("finished: %v, want no ETA", r)
	}
	var b strings.Builder
	printStatus(&b, sub(30), true, map[string]string{"s-1": "2.0/s ETA 35s"})
	if !strings.Contains(b.String(), "30/100 2.0/s ETA 35s") {
		t.Errorf("status line without the rate:\n%s", b.String())
	}
}
