package preference

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// This file is the attack of issue 14 ("preference ground truth is
// machine-readable") and its harder variants: rankers that never read an
// answer's meaning, only its surface, rate every task of an epoch beside
// honest simulated labelers, and the package's own scoring decides what
// they earn.

// surfaceTasks generates n tasks from the shipped seeds.
func surfaceTasks(t *testing.T, g *Generator, n int) []Task {
	t.Helper()
	seeds := DefaultSeeds()
	var tasks []Task
	for i := range n {
		task, err := g.Generate(context.Background(), fmt.Sprintf("surface-%03d", i), seeds[i%len(seeds)])
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
		tasks = append(tasks, task)
	}
	return tasks
}

// rankBy ranks texts by key, smaller key first (rank 1); ties keep the
// canonical order, as a deterministic attacker's sort would.
func rankBy(texts []string, key func(string) []float64) []int {
	idx := make([]int, len(texts))
	keys := make([][]float64, len(texts))
	for i, s := range texts {
		idx[i], keys[i] = i, key(s)
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ka, kb := keys[idx[a]], keys[idx[b]]
		for j := range ka {
			if ka[j] != kb[j] {
				return ka[j] < kb[j]
			}
		}
		return false
	})
	ranks := make([]int, len(texts))
	for r, i := range idx {
		ranks[i] = r + 1
	}
	return ranks
}

func count(s string, subs ...string) float64 {
	n := 0
	for _, sub := range subs {
		n += strings.Count(s, sub)
	}
	return float64(n)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// oldMarkers are the fixed phrases of the degradations before issue 14.
var oldMarkers = []string{"That said, the opposite of all of the above is also true", "opposite of", "none of it should be relied on", "Isaac Newton", "..."}

// catalogueWords is everything the attacker reads in degrade.go and
// alter.go: every word of the opposites list (both sides), the spelled
// numbers and the negations.
func catalogueWords() map[string]bool {
	m := map[string]bool{}
	for _, p := range opposites {
		m[strings.ToLower(p[0])], m[strings.ToLower(p[1])] = true, true
	}
	for _, w := range numberWords {
		m[w] = true
	}
	for _, w := range []string{"not", "cannot", "never", "no", "need"} {
		m[w] = true
	}
	return m
}

var surfaceWordRE = regexp.MustCompile(`[A-Za-z']+`)

// surfaceRankers are the attacks: none reads what an answer says.
func surfaceRankers() map[string]func(string) []float64 {
	cat := catalogueWords()
	return map[string]func(string) []float64{
		// (1) Longest first.
		"length": func(s string) []float64 { return []float64{-float64(len(s))} },
		// (2) Fewest catalogue, negation and old-marker hits, then no
		// ellipsis, then longest.
		"markers": func(s string) []float64 {
			hits := count(s, oldMarkers...) + count(s, "n't")
			for _, w := range surfaceWordRE.FindAllString(s, -1) {
				if cat[strings.ToLower(w)] {
					hits++
				}
			}
			return []float64{hits, b2f(strings.Contains(s, "...") || strings.Contains(s, "…")), -float64(len(s))}
		},
		// (3) Punctuation statistics: ends with a stop, fewest '!', '?'
		// and ',', then most sentences.
		"punctuation": func(s string) []float64 {
			end := strings.TrimRight(s, " \n`")
			return []float64{-b2f(strings.HasSuffix(end, ".")), count(s, "!", "?", ","), -count(s, ". ", ".\n")}
		},
		// The ten-line ranker of issue 14: fewest fixed phrases, no
		// ellipsis, longest first.
		"issue-14": func(s string) []float64 {
			return []float64{count(s, oldMarkers[:4]...), b2f(strings.Contains(s, "...")), -float64(len(s))}
		},
	}
}

// surfaceEpoch scores the surface rankers beside five honest labelers who
// rank by the ground truth and swap each adjacent pair with probability 0.2.
func surfaceEpoch(t *testing.T, tasks []Task) Epoch {
	t.Helper()
	rng := rand.New(rand.NewPCG(14, 3))
	rankers := surfaceRankers()
	var ratings []Rating
	for _, task := range tasks {
		texts := make([]string, len(task.Responses))
		for i, r := range task.Responses {
			texts[i] = r.Text
		}
		for name, key := range rankers {
			ratings = append(ratings, Rating{Miner: name, TaskID: task.ID, Values: rankBy(texts, key)})
		}
		for h := range 5 {
			n := len(task.GroundTruth)
			order := make([]int, n) // best first
			for i, g := range task.GroundTruth {
				order[g-1] = i
			}
			for j := 0; j+1 < n; j++ {
				if rng.Float64() < 0.2 {
					order[j], order[j+1] = order[j+1], order[j]
				}
			}
			values := make([]int, n)
			for r, i := range order {
				values[i] = r + 1
			}
			ratings = append(ratings, Rating{Miner: fmt.Sprintf("honest-%d", h), TaskID: task.ID, Values: values})
		}
	}
	ep, err := Score(DefaultConfig(), tasks, ratings)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// surfaceMargin is how far below the weakest honest labeler's pooled
// kappa every surface ranker's must be.
const surfaceMargin = 0.4

func checkSurfaceEpoch(t *testing.T, ep Epoch) {
	t.Helper()
	honest := 1.0
	for _, m := range ep.Miners {
		if strings.HasPrefix(m.Miner, "honest") {
			honest = min(honest, m.Kappa)
			if !m.Trusted || m.Reward <= 0 {
				t.Errorf("%s: trusted %v reward %v; an honest labeler must earn", m.Miner, m.Trusted, m.Reward)
			}
		}
	}
	for _, m := range ep.Miners {
		t.Logf("%-12s kappa %+.3f  mean score %.3f  trusted %-5v reward %.3f", m.Miner, m.Kappa, m.MeanScore, m.Trusted, m.Reward)
		if strings.HasPrefix(m.Miner, "honest") {
			continue
		}
		if m.Trusted || m.Reward != 0 {
			t.Errorf("%s passes the kappa gate (kappa %.3f, reward %.3f); the ground truth is readable from the surface", m.Miner, m.Kappa, m.Reward)
		}
		if honest-m.Kappa < surfaceMargin {
			t.Errorf("%s: kappa %.3f is within %.2f of the weakest honest labeler's %.3f", m.Miner, m.Kappa, surfaceMargin, honest)
		}
	}
}

func TestSurfaceRankersCannotReadTheGroundTruth(t *testing.T) {
	g, err := NewGenerator(GeneratorConfig{Mode: ModeAnswer, Salt: "surface", Now: func() time.Time { return epoch0 }})
	if err != nil {
		t.Fatal(err)
	}
	tasks := surfaceTasks(t, g, 80)
	checkSurfaceEpoch(t, surfaceEpoch(t, tasks))
}
