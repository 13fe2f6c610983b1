package seal_test

import (
	"encoding/json"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/seal"
	"crucible/internal/store"
)

func TestAnOpenPoolSealsItsPrivateItemsAndCardsUntilItSettles(t *testing.T) {
	c := competition.Competition{ID: "c", Items: 10}
	open := competition.Pool{CompetitionID: "c", PrivateFraction: 0.5, Seed: 7, State: competition.PoolOpen}
	settled := open
	settled.State = competition.PoolSettled
	sub := competition.Submission{ID: "s", Card: &competition.Card{Score: 0.5}}
	var results []eval.Result
	var items []json.RawMessage
	for i := range c.Items {
		results = append(results, eval.Result{Index: i})
		items = append(items, json.RawMessage(`{}`))
	}
	for _, tc := range []struct {
		name   string
		pool   *competition.Pool
		sealed bool
	}{
		{"not a pool", nil, false},
		{"an open pool", &open, true},
		{"a settled pool", &settled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := seal.For(c, tc.pool)
			if pol.Sealed() != tc.sealed {
				t.Fatalf("Sealed() = %v, want %v", pol.Sealed(), tc.sealed)
			}
			if shown := pol.Submission(sub); (shown.Card == nil) != tc.sealed {
				t.Errorf("the card is shown as %v; sealed: %v", shown.Card, tc.sealed)
			}
			want := c.Items
			if tc.sealed {
				want = c.Items / 2
			}
			visible := pol.Results(results)
			if len(visible) != want || len(pol.Items(items)) != want {
				t.Fatalf("%d results and %d items visible, want %d", len(visible), len(pol.Items(items)), want)
			}
			for _, r := range visible {
				if pol.Private(r.Index) {
					t.Errorf("private item %d's result is visible", r.Index)
				}
			}
		})
	}
}

func TestAnEpochsSeedAndItemsShowOnlyOnceItHasEnded(t *testing.T) {
	end := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	e := store.RoleplayEpoch{Epoch: 3, Seed: 42, End: end}
	if seal.Revealed(e, end.Add(-time.Nanosecond)) || !seal.Revealed(e, end) {
		t.Fatalf("revealed just before the end or not at it")
	}
}
