package incentive

import (
	"testing"
	"time"
)

func TestCopies(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	outs := []Output{
		{ID: "clone-by-digest", Digest: "d1", CommittedAt: at(5), Responses: []string{"x", "y"}},
		{ID: "leader", Digest: "d1", CommittedAt: at(1), Responses: []string{"a", "b"}},
		{ID: "clone-by-answers", Digest: "d2", CommittedAt: at(3), Responses: []string{"a", "b"}},
		{ID: "different", Digest: "d3", CommittedAt: at(2), Responses: []string{"a", "c"}},
		{ID: "no-answers", Digest: "d4", CommittedAt: at(6)},
		{ID: "also-no-answers", Digest: "d5", CommittedAt: at(7)},
	}
	got := Copies(outs)
	want := map[string]string{"clone-by-digest": "leader", "clone-by-answers": "leader"}
	if len(got) != len(want) {
		t.Fatalf("Copies = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("Copies = %v, want %v", got, want)
		}
	}
}
