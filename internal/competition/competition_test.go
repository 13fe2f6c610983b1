package competition

import (
	"testing"
	"time"
)

func TestLeaderboardRanksByScoreAndMarksOverlapsWithTheLeaderAsTies(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sub := func(id string, score, lo, hi float64, at int) Submission {
		return Submission{ID: id, Name: id, State: StateScored, CommittedAt: t0.Add(time.Duration(at) * time.Minute),
			Card: &Card{Score: score, CILow: lo, CIHigh: hi, Items: 100}}
	}
	subs := []Submission{
		sub("low", 0.30, 0.21, 0.39, 1),
		sub("close", 0.78, 0.70, 0.86, 2),
		sub("best", 0.80, 0.72, 0.88, 3),
		sub("same-later", 0.30, 0.21, 0.39, 4),
		{ID: "queued", State: StateQueued},
	}
	rows := Leaderboard(subs)
	var names []string
	for _, r := range rows {
		names = append(names, r.Name)
	}
	want := []string{"best", "close", "low", "same-later"}
	if len(names) != len(want) {
		t.Fatalf("rows %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] || rows[i].Rank != i+1 {
			t.Fatalf("rows %v, want %v with ranks 1..n", names, want)
		}
	}
	if !rows[0].Tie || !rows[1].Tie || rows[2].Tie || rows[3].Tie {
		t.Fatalf("ties = %v %v %v %v, want true true false false", rows[0].Tie, rows[1].Tie, rows[2].Tie, rows[3].Tie)
	}
}

func TestLeaderboardWithAClearLeaderHasNoTies(t *testing.T) {
	rows := Leaderboard([]Submission{
		{ID: "a", State: StateScored, Card: &Card{Score: 1, CILow: 1, CIHigh: 1}},
		{ID: "b", State: StateScored, Card: &Card{Score: 0.3, CILow: 0.2, CIHigh: 0.4}},
	})
	if rows[0].Tie || rows[1].Tie {
		t.Fatal("separated intervals were marked as a tie")
	}
}

func TestNewCardIntervalContainsTheMean(t *testing.T) {
	scores := make([]float64, 300)
	for i := range scores {
		if i%3 == 0 {
			scores[i] = 1
		}
	}
	c := NewCard(scores, 100)
	if c.Score < 0.333 || c.Score > 0.334 || c.CILow >= c.Score || c.CIHigh <= c.Score || c.Items != 300 {
		t.Fatalf("card %+v: want score 1/3 inside a non-degenerate interval", c)
	}
	again := NewCard(scores, 100)
	if again != c {
		t.Fatalf("the same scores gave two cards: %+v and %+v", c, again)
	}
}

func TestModelDigestDependsOnWhatWasCommittedOnly(t *testing.T) {
	a := ModelDigest(ModelSpec{BaseURL: "http://h/v1", Model: "m"})
	if a != ModelDigest(ModelSpec{BaseURL: "http://h/v1", Model: "m"}) {
		t.Fatal("digest is not deterministic")
	}
	if a == ModelDigest(ModelSpec{BaseURL: "http://h/v1", Model: "m2"}) {
		t.Fatal("different models share a digest")
	}
}
