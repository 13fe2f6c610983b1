package pool

import (
	"math/big"
	"testing"
	"time"
)

func TestSplitIsSeededAndExact(t *testing.T) {
	a, b := NewSplit(300, 0.5, 7), NewSplit(300, 0.5, 7)
	private := 0
	for i := range a.Private {
		if a.Private[i] != b.Private[i] || a.Order[i] != b.Order[i] {
			t.Fatal("the same seed gave two different splits")
		}
		if a.Private[i] {
			private++
		}
	}
	if private != 150 {
		t.Fatalf("%d private items, want 150", private)
	}
	if c := NewSplit(300, 0.5, 8); samePrivate(a, c) {
		t.Fatal("different seeds gave the same private set")
	}
}

func samePrivate(a, b Split) bool {
	for i := range a.Private {
		if a.Private[i] != b.Private[i] {
			return false
		}
	}
	return true
}

func TestAllowedGrowsWithTimeAndStopsAtTheEnd(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(10 * time.Hour)
	tests := []struct {
		name string
		at   time.Time
		want int
	}{
		{"before the start nothing is allowed", start.Add(-time.Hour), 0},
		{"half an hour allows half the hourly budget", start.Add(30 * time.Minute), 500},
		{"three hours allow three budgets", start.Add(3 * time.Hour), 3000},
		{"after the end the total stops growing", end.Add(5 * time.Hour), 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Allowed(1000, start, end, tt.at); got != tt.want {
				t.Fatalf("Allowed = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestShare(t *testing.T) {
	tests := []struct {
		name      string
		allowance int
		entrants  []Entrant
		want      map[string]int
	}{
		{"an even allowance splits evenly", 9, []Entrant{{"a", 0, 100}, {"b", 0, 100}, {"c", 0, 100}}, map[string]int{"a": 3, "b": 3, "c": 3}},
		{"the remainder goes to who is behind", 4, []Entrant{{"a", 50, 100}, {"b", 10, 100}, {"c", 30, 100}}, map[string]int{"b": 2, "c": 1, "a": 1}},
		{"a late joiner gets its turn at once", 2, []Entrant{{"early", 90, 10}, {"late", 0, 100}}, map[string]int{"late": 1, "early": 1}},
		{"a finished entrant's share goes to the others", 10, []Entrant{{"a", 0, 2}, {"b", 0, 100}}, map[string]int{"a": 2, "b": 8}},
		{"no allowance gives nothing", 0, []Entrant{{"a", 0, 5}}, map[string]int{}},
		{"an allowance beyond the work is left unused", 10, []Entrant{{"a", 0, 3}}, map[string]int{"a": 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Share(tt.allowance, tt.entrants)
			if len(got) != len(tt.want) {
				t.Fatalf("Share = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("Share = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestAllowedIsExactAtTenMillionPerHourOverAYear checks the allowance at the
// largest budget over a year against exact big-integer arithmetic: the
// int64 product of items and nanoseconds overflowed after 15 minutes at this
// budget (after a day at 100,000/h), turning the allowance negative.
func TestAllowedIsExactAtTenMillionPerHourOverAYear(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	year := 365 * 24 * time.Hour
	end := start.Add(year)
	exact := func(d time.Duration) int64 {
		q := new(big.Int).Mul(big.NewInt(MaxBudgetPerHour), big.NewInt(int64(d)))
		return q.Quo(q, big.NewInt(int64(time.Hour))).Int64()
	}
	prev := 0
	// Steps of a little under a minute (an odd number of nanoseconds, so
	// the remainders vary), then the end itself and beyond it.
	step := time.Minute - 7*time.Nanosecond
	for d := time.Duration(0); d <= year+step; d += step {
		at := min(d, year)
		got := Allowed(MaxBudgetPerHour, start, end, start.Add(d))
		if int64(got) != exact(at) {
			t.Fatalf("at %s: allowed %d, exactly %d", d, got, exact(at))
		}
		if got < prev {
			t.Fatalf("at %s: allowed %d went down from %d", d, got, prev)
		}
		prev = got
	}
	if want := int(MaxBudgetPerHour) * 24 * 365; prev != want {
		t.Fatalf("a year at %d/h allows %d, want %d", MaxBudgetPerHour, prev, want)
	}
	if got := Allowed(100_000, start, end, start.Add(25*time.Hour)); got != 2_500_000 {
		t.Fatalf("25 hours at 100,000/h allow %d, want 2,500,000", got)
	}
}
