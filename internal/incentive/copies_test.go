package incentive

import (
	"testing"
	"time"
)

func TestCopies(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	outs := []Output{
		{ID: "clone-by-digest", Digest: "d1", CommittedAt: at(5), Responses: answers("x", "y")},
		{ID: "leader", Digest: "d1", CommittedAt: at(1), Responses: answers("a", "b")},
		{ID: "clone-by-answers", Digest: "d2", CommittedAt: at(3), Responses: answers("a", "b")},
		{ID: "different", Digest: "d3", CommittedAt: at(2), Responses: answers("a", "c")},
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

func answers(texts ...string) map[int]string {
	m := map[int]string{}
	for i, t := range texts {
		m[i] = t
	}
	return m
}

func TestCopiesByNearlyEveryItem(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	base := make([]string, 40)
	for i := range base {
		base[i] = "A) answer " + string(rune('a'+i%26))
	}
	nearly := append([]string{}, base...)
	nearly[7] = "B) a varied answer" // 39/40 = 97.5 % ≥ 95 %
	far := append([]string{}, nearly...)
	far[8], far[9] = "x", "y" // 37/40 = 92.5 % < 95 %
	rule := CopyRule{MinItems: 20, Agreement: 0.95}
	outs := []Output{
		{ID: "b-original", CommittedAt: t0, Responses: answers(base...)},
		{ID: "a-same-time-later-by-id", CommittedAt: t0.Add(time.Minute), Responses: answers(nearly...)},
		{ID: "far", CommittedAt: t0.Add(2 * time.Minute), Responses: answers(far...)},
		{ID: "too-few-items", CommittedAt: t0.Add(3 * time.Minute), Responses: answers(base[:19]...)},
	}
	got := CopiesBy(outs, rule)
	if len(got) != 1 || got["a-same-time-later-by-id"] != "b-original" {
		t.Fatalf("CopiesBy = %v, want only the 97.5 %% match as a copy of b-original", got)
	}
	// Equal commit times: the smaller id is the original.
	tie := CopiesBy([]Output{{ID: "z", CommittedAt: t0, Responses: answers(base...)}, {ID: "y", CommittedAt: t0, Responses: answers(base...)}}, rule)
	if tie["z"] != "y" || len(tie) != 1 {
		t.Fatalf("tie = %v, want z a copy of y", tie)
	}
}

// TestNearCatchesAVariedCopy: a copier who changes one answer in forty
// escapes Exact but not Near; on six items Near is as strict as Exact.
func TestNearCatchesAVariedCopy(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	base := make([]string, 40)
	for i := range base {
		base[i] = "reply " + string(rune('a'+i%26))
	}
	varied := append([]string{}, base...)
	varied[3] = "a different reply"
	outs := []Output{
		{ID: "original", CommittedAt: t0, Responses: answers(base...)},
		{ID: "varied", CommittedAt: t0.Add(time.Minute), Responses: answers(varied...)},
	}
	if got := Copies(outs); len(got) != 0 {
		t.Fatalf("Exact = %v, want no copy (one answer differs)", got)
	}
	if got := CopiesBy(outs, Near); got["varied"] != "original" {
		t.Fatalf("Near = %v, want varied a copy of original", got)
	}
	small := []Output{
		{ID: "original", CommittedAt: t0, Responses: answers(base[:6]...)},
		{ID: "varied", CommittedAt: t0.Add(time.Minute), Responses: answers(varied[:6]...)},
	}
	if got := CopiesBy(small, Near); len(got) != 0 {
		t.Fatalf("Near on six items = %v, want no copy (5 of 6 is below 95 %%)", got)
	}
}
