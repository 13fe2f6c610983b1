package web

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"crucible/internal/competition"
)

func TestNewPager(t *testing.T) {
	tests := []struct {
		name              string
		page, total, size int
		want              pager
	}{
		{"the first page of many shows the first items", 1, 45, 20, pager{Page: 1, Pages: 3, First: 1, Last: 20, Total: 45}},
		{"the last page shows what is left", 3, 45, 20, pager{Page: 3, Pages: 3, First: 41, Last: 45, Total: 45}},
		{"a page past the end is the last page", 9, 45, 20, pager{Page: 3, Pages: 3, First: 41, Last: 45, Total: 45}},
		{"a page below one is the first page", 0, 45, 20, pager{Page: 1, Pages: 3, First: 1, Last: 20, Total: 45}},
		{"no items is one empty page", 2, 0, 20, pager{Page: 1, Pages: 1}},
		{"an exact multiple has no empty last page", 2, 40, 20, pager{Page: 2, Pages: 2, First: 21, Last: 40, Total: 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newPager(tt.page, tt.total, tt.size); got != tt.want {
				t.Fatalf("newPager(%d, %d, %d) = %+v, want %+v", tt.page, tt.total, tt.size, got, tt.want)
			}
		})
	}
}

func TestScoreChart(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	scored := func(name string, score float64, at int) competition.Submission {
		return competition.Submission{ID: "s-" + name, Name: name, State: competition.StateScored,
			CommittedAt: t0.Add(time.Duration(at) * time.Hour),
			Card:        &competition.Card{Score: score, CILow: score - 0.1, CIHigh: score + 0.1}}
	}
	tests := []struct {
		name       string
		subs       []competition.Submission
		wantPoints int
		// wantRecords lists, per point, whether it raised the best score.
		wantRecords []bool
	}{
		{"no scored submission draws no points", []competition.Submission{{ID: "q", State: competition.StateQueued}}, 0, nil},
		{"one scored submission is one record", []competition.Submission{scored("a", 0.5, 0)}, 1, []bool{true}},
		{
			"only submissions that beat the best so far are records",
			[]competition.Submission{scored("a", 0.3, 0), scored("b", 0.6, 1), scored("c", 0.4, 2), scored("d", 0.9, 3)},
			4, []bool{true, true, false, true},
		},
		{
			"unscored and failed submissions are left out",
			[]competition.Submission{scored("a", 0.3, 0), {ID: "f", State: competition.StateFailed}, scored("b", 0.2, 2)},
			2, []bool{true, false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := scoreChart(tt.subs)
			if len(c.Points) != tt.wantPoints {
				t.Fatalf("%d points, want %d", len(c.Points), tt.wantPoints)
			}
			for i, p := range c.Points {
				if p.Record != tt.wantRecords[i] {
					t.Errorf("point %d (%s) record = %v, want %v", i, p.Name, p.Record, tt.wantRecords[i])
				}
				if p.X < c.Left || p.X > c.Right || p.Y < c.Top || p.Y > c.Bottom {
					t.Errorf("point %d at (%.1f, %.1f) is outside the plot area", i, p.X, p.Y)
				}
				if i > 0 && p.X <= c.Points[i-1].X {
					t.Errorf("point %d is not right of point %d: commit order must read left to right", i, i-1)
				}
			}
			if tt.wantPoints == 0 {
				if c.Best != "" {
					t.Fatalf("best line %q with no points", c.Best)
				}
				return
			}
			// The best-so-far line never goes down (y grows downwards).
			prevY := c.Bottom + 1
			for _, xy := range strings.Fields(c.Best) {
				var x, y float64
				if _, err := fmt.Sscanf(xy, "%f,%f", &x, &y); err != nil {
					t.Fatalf("best line point %q: %v", xy, err)
				}
				if y > prevY {
					t.Fatalf("best line %q goes down at %q", c.Best, xy)
				}
				prevY = y
			}
		})
	}
}

func TestIntervalBarsShareTheLeadersBand(t *testing.T) {
	rows := leaderboardRows([]competition.Row{
		{Name: "lead", Score: 0.8, CILow: 0.7, CIHigh: 0.9},
		{Name: "next", Score: 0.2, CILow: 0, CIHigh: 1.2},
	})
	for _, r := range rows {
		if r.BandLo != barX(0.7) || r.BandHi != barX(0.9) || r.BandW <= 0 {
			t.Fatalf("row %s band %.1f..%.1f, want the leader's interval", r.Name, r.BandLo, r.BandHi)
		}
		if r.Lo > r.X || r.X > r.Hi || r.Lo < barPad || r.Hi > barWidth-barPad {
			t.Fatalf("row %s bar %.1f ≤ %.1f ≤ %.1f is out of order or out of the bar", r.Name, r.Lo, r.X, r.Hi)
		}
	}
}
