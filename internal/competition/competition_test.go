package competition

import (
	"fmt"
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
	rows := Leaderboard(Competition{Kind: "mcq"}, subs)
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
	rows := Leaderboard(Competition{Kind: "mcq"}, []Submission{
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

// A code-fix leaderboard has one row per submitter: each task counts once
// by their best submission, % resolved is over all the competition's
// tasks, and the score is the mean best score over all tasks.
func TestPatchLeaderboardRanksSubmittersByResolvedTasks(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	sub := func(who, task string, score float64, resolved bool) Submission {
		n++
		c := &Card{Score: score, Items: 1}
		if resolved {
			c.Correct = 1
		}
		return Submission{ID: "s" + string(rune('a'+n)), Submitter: who, State: StateScored, CommittedAt: t0.Add(time.Duration(n) * time.Minute),
			Patch: &PatchSpec{Task: task}, Card: c}
	}
	subs := []Submission{
		sub("k-alice", "t1", 0.9, true),
		sub("k-alice", "t1", 0.95, true), // a second resolution of t1 counts once
		sub("k-alice", "t2", 0.1, false),
		sub("k-bob", "t1", 0.8, true),
		sub("k-bob", "t2", 0.85, true),
		sub("k-bob", "t2", 0, false), // a later failure does not undo the best
		{ID: "q", Submitter: "k-carol", State: StateQueued, Patch: &PatchSpec{Task: "t1"}},
	}
	rows := PatchLeaderboard(subs, 4)
	if len(rows) != 2 {
		t.Fatalf("rows %+v, want one per submitter with a scored submission", rows)
	}
	want := []struct {
		who            string
		resolved, rate float64
		score          float64
	}{{"k-bob", 2, 0.5, (0.8 + 0.85) / 4}, {"k-alice", 1, 0.25, (0.95 + 0.1) / 4}}
	for i, w := range want {
		r := rows[i]
		if r.Submitter != w.who || r.Rank != i+1 || r.Items != 4 || float64(r.Correct) != w.resolved || r.ResolvedRate == nil ||
			*r.ResolvedRate != w.rate || r.Score < w.score-1e-9 || r.Score > w.score+1e-9 {
			t.Errorf("row %d: %+v (rate %v), want %s with %v of 4 resolved and score %v", i, r, r.ResolvedRate, w.who, w.resolved, w.score)
		}
	}
}

// Copies: the same responses on at least CopyRule.MinItems items make a
// later entry a copy; empty responses (docs a predictions file left out)
// are not answers, so two sparse files are not copies of each other.
func TestMarkCopiesIgnoresEmptyResponses(t *testing.T) {
	t0 := time.Unix(1000, 0)
	subs := []Submission{{ID: "a", Digest: "da", CommittedAt: t0}, {ID: "b", Digest: "db", CommittedAt: t0.Add(time.Second)}}
	same, sparseA, sparseB := map[int]string{}, map[int]string{0: "x"}, map[int]string{0: "y"}
	for i := range 30 {
		same[i] = fmt.Sprint("answer ", i)
		if i > 0 {
			sparseA[i], sparseB[i] = "", ""
		}
	}
	for _, tc := range []struct {
		a, b   map[int]string
		copyOf string
	}{{same, same, "a"}, {sparseA, sparseB, ""}} {
		rows := []Row{{SubmissionID: "a"}, {SubmissionID: "b"}}
		MarkCopies(rows, subs, map[string]map[int]string{"a": tc.a, "b": tc.b})
		if rows[0].CopyOf != "" || rows[1].CopyOf != tc.copyOf {
			t.Errorf("rows %+v; want b a copy of %q", rows, tc.copyOf)
		}
	}
}
