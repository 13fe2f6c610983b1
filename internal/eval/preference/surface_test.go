package preference

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"crucible/internal/inference"
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
func surfaceRankers(instruction string) map[string]func(string) []float64 {
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
		// (4) Fewest repeated or near-repeated sentences first, then
		// longest.
		"repeats": func(s string) []float64 {
			return []float64{float64(nearRepeats(s)), -float64(len(s))}
		},
		// (5) Most on topic first: the share of words of four letters
		// or more that the instruction also uses.
		"relevance": func(s string) []float64 { return []float64{-onTopic(s, instruction)} },
		// (6) Fewest sentences copied from the instruction first.
		"echo": func(s string) []float64 {
			n := 0.0
			for _, u := range splitSentences(strings.ReplaceAll(instruction, "\n", " ")) {
				if len(strings.Fields(u)) >= 3 && strings.Contains(s, strings.TrimPrefix(strings.TrimSuffix(u, "."), "- ")) {
					n++
				}
			}
			return []float64{n, -float64(len(s))}
		},
		// The ten-line ranker of issue 14: fewest fixed phrases, no
		// ellipsis, longest first.
		"issue-14": func(s string) []float64 {
			return []float64{count(s, oldMarkers[:4]...), b2f(strings.Contains(s, "...")), -float64(len(s))}
		},
	}
}

// surfaceEpochs scores each surface ranker in its own epoch beside five
// honest labelers who rank by the ground truth and swap each adjacent pair
// with probability 0.2: one attacker among honest contributors.
func surfaceEpochs(t *testing.T, tasks []Task) map[string]Epoch {
	t.Helper()
	rng := rand.New(rand.NewPCG(14, 3))
	var honest []Rating
	byRanker := map[string][]Rating{}
	for _, task := range tasks {
		texts := make([]string, len(task.Responses))
		for i, r := range task.Responses {
			texts[i] = r.Text
		}
		for name, key := range surfaceRankers(task.Instruction) {
			byRanker[name] = append(byRanker[name], Rating{Miner: name, TaskID: task.ID, Values: rankBy(texts, key)})
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
			honest = append(honest, Rating{Miner: fmt.Sprintf("honest-%d", h), TaskID: task.ID, Values: values})
		}
	}
	out := map[string]Epoch{}
	for name, rs := range byRanker {
		ep, err := Score(DefaultConfig(), tasks, append(slices.Clone(honest), rs...))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = ep
	}
	return out
}

// gated are the rankers that must fail the kappa gate.
var gated = map[string]bool{"length": true, "markers": true, "punctuation": true, "issue-14": true}

// surfaceMargin is how far below the weakest honest labeler's pooled
// kappa every surface ranker's must be.
const surfaceMargin = 0.4

func checkSurfaceEpochs(t *testing.T, eps map[string]Epoch) {
	t.Helper()
	names := slices.Sorted(maps.Keys(eps))
	for _, name := range names {
		honest := 1.0
		var attacker MinerResult
		for _, m := range eps[name].Miners {
			if m.Miner == name {
				attacker = m
				continue
			}
			honest = min(honest, m.Kappa)
			if !m.Trusted || m.Reward <= 0 {
				t.Errorf("epoch of %s: %s trusted %v reward %v; an honest labeler must earn", name, m.Miner, m.Trusted, m.Reward)
			}
		}
		t.Logf("%-12s kappa %+.3f  mean score %.3f  reward %.3f  (weakest honest labeler beside it: kappa %.3f)", name, attacker.Kappa, attacker.MeanScore, attacker.Reward, honest)
		if gated[name] && (attacker.Trusted || attacker.Reward != 0) {
			t.Errorf("%s passes the kappa gate (kappa %.3f, reward %.3f); the ground truth is readable from the surface", name, attacker.Kappa, attacker.Reward)
		}
		if honest-attacker.Kappa < surfaceMargin {
			t.Errorf("%s: kappa %.3f is within %.2f of the weakest honest labeler's %.3f", name, attacker.Kappa, surfaceMargin, honest)
		}
	}
}

// TestSurfaceRankersCannotReadTheGroundTruth generates 80 tasks from the
// shipped seeds and scores each surface ranker beside five honest
// labelers. The three rankers of issue 14 (length, catalogue and marker
// counting, punctuation) and the issue's own attack must fail the kappa
// gate. Three further rankers (near-repeats, overlap with the instruction,
// sentences echoed from the instruction) probe the length-offsetting
// material; over twelve salts the first four stayed at or below 0.26 and
// these three reached 0.23, 0.31 and 0.36, so for them the test asserts the
// margin to the honest labelers, not the gate, and logs their kappas.
func TestSurfaceRankersCannotReadTheGroundTruth(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client func(t *testing.T) *inference.Client
	}{
		{"shipped generator", func(*testing.T) *inference.Client { return nil }},
		{"shipped generator with a rewriting model", func(t *testing.T) *inference.Client {
			c, _ := countingClient(t, rewriter(""))
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := NewGenerator(GeneratorConfig{Client: tc.client(t), Model: "gen", Mode: ModeAnswer, Salt: "surface", Now: func() time.Time { return epoch0 }})
			if err != nil {
				t.Fatal(err)
			}
			tasks := surfaceTasks(t, g, 80)
			checkSurfaceEpochs(t, surfaceEpochs(t, tasks))
			longer := 0
			for _, task := range tasks {
				texts := levelTexts(task)
				for k, text := range texts {
					// "..." is checked in prose only: JavaScript spreads use it.
					if count(text, oldMarkers[:4]...) > 0 || count(strings.Join(sentences(text), " "), "...", "…") > 0 {
						t.Errorf("task %s level %d carries an old marker: %q", task.ID, k, text)
					}
				}
				if len(texts[len(texts)-1]) > len(texts[0]) {
					longer++
				}
			}
			t.Logf("the most degraded answer is longer than the original in %d of %d tasks", longer, len(tasks))
			if longer < len(tasks)/4 {
				t.Errorf("the most degraded answer is longer than the original in only %d of %d tasks; lengths must overlap", longer, len(tasks))
			}
		})
	}
}

// nearRepeats counts sentence pairs of s that share at least 60 % of their
// words.
func nearRepeats(s string) int {
	var sents [][]string
	for _, b := range parseBlocks(s) {
		if !b.code {
			for _, u := range b.units {
				sents = append(sents, strings.Fields(strings.ToLower(u)))
			}
		}
	}
	n := 0
	for i := range sents {
		set := map[string]bool{}
		for _, w := range sents[i] {
			set[w] = true
		}
		for j := i + 1; j < len(sents); j++ {
			common := 0
			for _, w := range sents[j] {
				if set[w] {
					common++
				}
			}
			if l := max(len(sents[i]), len(sents[j])); l > 0 && float64(common) >= 0.6*float64(l) {
				n++
			}
		}
	}
	return n
}

// onTopic is the share of s's words of four letters or more that
// instruction also uses.
func onTopic(s, instruction string) float64 {
	inst := map[string]bool{}
	for _, w := range surfaceWordRE.FindAllString(strings.ToLower(instruction), -1) {
		inst[w] = true
	}
	n, hit := 0, 0
	for _, w := range surfaceWordRE.FindAllString(strings.ToLower(s), -1) {
		if len(w) >= 4 {
			n++
			if inst[w] {
				hit++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return float64(hit) / float64(n)
}
