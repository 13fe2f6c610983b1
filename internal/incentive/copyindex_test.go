package incentive

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// copiesQuadratic is the reference CopiesBy: every submission compared
// with every earlier original, in commit order.
func copiesQuadratic(outs []Output, rule CopyRule) map[string]string {
	sorted := slices.Clone(outs)
	slices.SortStableFunc(sorted, func(a, b Output) int {
		return cmp.Or(a.CommittedAt.Compare(b.CommittedAt), cmp.Compare(a.ID, b.ID))
	})
	copies := map[string]string{}
	for i, later := range sorted {
		for _, earlier := range sorted[:i] {
			if _, isCopy := copies[earlier.ID]; isCopy {
				continue
			}
			if later.Digest != "" && later.Digest == earlier.Digest || rule.match(later.Responses, earlier.Responses) {
				copies[later.ID] = earlier.ID
				break
			}
		}
	}
	return copies
}

// copyOutputs draws submissions built to be copies, near-copies (a few
// answers changed, items dropped or added), or fresh, over answers from a
// small vocabulary (so common answers are shared by many), with tied
// commit times and shared digests.
func copyOutputs(t *rapid.T) []Output {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := rapid.IntRange(0, 40).Draw(t, "n")
	items := rapid.IntRange(1, 30).Draw(t, "items")
	vocab := rapid.IntRange(1, 6).Draw(t, "vocab")
	answer := func(label string) string {
		if rapid.IntRange(0, 3).Draw(t, label+"-rare") == 0 {
			return fmt.Sprintf("rare %d", rapid.IntRange(0, 1000).Draw(t, label+"-text"))
		}
		return string(rune('A' + rapid.IntRange(0, vocab-1).Draw(t, label+"-letter")))
	}
	ids := rapid.Permutation(seqInts(n)).Draw(t, "ids")
	var outs []Output
	for i := range n {
		resp := map[int]string{}
		if i > 0 && rapid.Bool().Draw(t, "copy") {
			resp = maps.Clone(outs[rapid.IntRange(0, i-1).Draw(t, "of")].Responses)
			for range rapid.IntRange(0, 3).Draw(t, "changes") {
				resp[rapid.IntRange(0, items-1).Draw(t, "changed")] = answer("change")
			}
			for range rapid.IntRange(0, 2).Draw(t, "drops") {
				delete(resp, rapid.IntRange(0, items-1).Draw(t, "dropped"))
			}
		} else {
			for it := range items {
				if rapid.IntRange(0, 9).Draw(t, "skip") > 0 {
					resp[it] = answer("fresh")
				}
			}
		}
		digest := ""
		if d := rapid.IntRange(0, 4).Draw(t, "digest"); d > 0 {
			digest = fmt.Sprintf("d%d", d)
		}
		outs = append(outs, Output{ID: fmt.Sprintf("s%02d", ids[i]), Digest: digest,
			CommittedAt: t0.Add(time.Duration(rapid.IntRange(0, 5).Draw(t, "at")) * time.Minute), Responses: resp})
	}
	return outs
}

func seqInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestCopiesByMatchesQuadratic: the indexed CopiesBy answers as the
// quadratic reference does, under the rules in use and arbitrary ones
// (MinItems 0 and above any item count, Agreement ≤ 0 and above 1).
func TestCopiesByMatchesQuadratic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		outs := copyOutputs(t)
		rule := rapid.SampledFrom([]CopyRule{Exact, Near, {MinItems: 20, Agreement: 0.95}}).Draw(t, "rule")
		if rapid.Bool().Draw(t, "arbitrary") {
			rule = CopyRule{MinItems: rapid.IntRange(0, 35).Draw(t, "min"), Agreement: rapid.Float64Range(-0.1, 1.1).Draw(t, "agreement")}
		}
		got, want := CopiesBy(outs, rule), copiesQuadratic(outs, rule)
		if !maps.Equal(got, want) {
			t.Fatalf("rule %+v: CopiesBy = %v, reference %v", rule, got, want)
		}
	})
}

// benchOutputs is n submissions of 100 answers: on each item 60 % give
// one of four bare letters (answers shared by thousands), the rest their
// own text; one in 50 is an exact copy of an earlier one, one in 50 a copy
// with three answers changed, one in 100 re-enters an earlier digest.
func benchOutputs(n int) []Output {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	outs := make([]Output, n)
	for i := range outs {
		resp := make(map[int]string, 100)
		switch r := rng.IntN(100); {
		case i > 0 && r < 2:
			maps.Copy(resp, outs[rng.IntN(i)].Responses)
		case i > 0 && r < 4:
			maps.Copy(resp, outs[rng.IntN(i)].Responses)
			for range 3 {
				resp[rng.IntN(100)] = fmt.Sprintf("changed %d", rng.Int())
			}
		default:
			for it := range 100 {
				if rng.IntN(10) < 6 {
					resp[it] = string(rune('A' + rng.IntN(4)))
				} else {
					resp[it] = fmt.Sprintf("answer %d to item %d", i, it)
				}
			}
		}
		digest := fmt.Sprintf("d%d", i)
		if i > 0 && rng.IntN(100) == 0 {
			digest = outs[rng.IntN(i)].Digest
		}
		outs[i] = Output{ID: fmt.Sprintf("s%06d", i), Digest: digest, CommittedAt: t0.Add(time.Duration(i) * time.Second), Responses: resp}
	}
	return outs
}

// BenchmarkCopiesBy marks copies among 10,000 and 100,000 submissions
// under the leaderboards' rule, and the quadratic reference at 10,000
// (minutes; at 100,000 it would take about a hundred times as long):
//
//	go test -run '^$' -bench CopiesBy -benchtime 1x ./internal/incentive/
func BenchmarkCopiesBy(b *testing.B) {
	rule := CopyRule{MinItems: 20, Agreement: 0.95}
	for _, n := range []int{10_000, 100_000} {
		outs := benchOutputs(n)
		b.Run(fmt.Sprintf("indexed/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				CopiesBy(outs, rule)
			}
		})
		if n <= 10_000 {
			b.Run(fmt.Sprintf("quadratic/n=%d", n), func(b *testing.B) {
				for b.Loop() {
					copiesQuadratic(outs, rule)
				}
			})
		}
	}
}
