package patch

import (
	"math"
	"sort"
	"strings"
	"time"
)

// Components are the parts of a patch's score, each in [0,1].
type Components struct {
	// Correctness is 1 when resolved; FAIL_TO_PASS pass rate × 0.5 when
	// every PASS_TO_PASS test passes; otherwise 0.
	Correctness float64 `json:"correctness"`
	// Similarity is PatchSimilarity(candidate, reference).
	Similarity float64 `json:"similarity"`
	// Conciseness is Conciseness(candidate, reference).
	Conciseness float64 `json:"conciseness"`
	// Timeliness is Timeliness(created, submitted, half-life).
	Timeliness float64 `json:"timeliness"`
}

// Weights configure Score. The zero value means DefaultWeights.
type Weights struct {
	// Correctness, Similarity, Conciseness and Timeliness weigh the
	// components; Score divides by their sum.
	Correctness float64 `json:"correctness"`
	Similarity  float64 `json:"similarity"`
	Conciseness float64 `json:"conciseness"`
	Timeliness  float64 `json:"timeliness"`
	// HalfLife is the time after publication at which Timeliness is 0.5.
	HalfLife time.Duration `json:"half_life"`
}

// DefaultWeights: correctness 0.7, similarity 0.15, conciseness 0.1,
// timeliness 0.05, half-life 30 days. With Correctness ≥ 0.5 of the total,
// any resolved patch (score ≥ 0.7) outranks any partial one (≤ 0.5).
var DefaultWeights = Weights{Correctness: 0.7, Similarity: 0.15, Conciseness: 0.1, Timeliness: 0.05, HalfLife: 30 * 24 * time.Hour}

func (w Weights) orDefault() Weights {
	if w.Correctness == 0 && w.Similarity == 0 && w.Conciseness == 0 && w.Timeliness == 0 {
		hl := w.HalfLife
		w = DefaultWeights
		if hl > 0 {
			w.HalfLife = hl
		}
	}
	if w.HalfLife <= 0 {
		w.HalfLife = DefaultWeights.HalfLife
	}
	return w
}

// Score combines c with w into [0,1]:
//
//	Correctness × (wC + wS·Similarity + wN·Conciseness + wT·Timeliness) / (wC+wS+wN+wT)
//
// The secondary terms are scaled by Correctness, so a patch that fixes
// nothing scores 0 however similar, short or early it is: correctness
// dominates.
func Score(c Components, w Weights) float64 {
	w = w.orDefault()
	total := w.Correctness + w.Similarity + w.Conciseness + w.Timeliness
	if total <= 0 {
		return 0
	}
	s := clamp01(c.Correctness) * (w.Correctness + w.Similarity*clamp01(c.Similarity) +
		w.Conciseness*clamp01(c.Conciseness) + w.Timeliness*clamp01(c.Timeliness)) / total
	return clamp01(s)
}

// Correctness returns 1 when every FAIL_TO_PASS and PASS_TO_PASS test
// passed, the FAIL_TO_PASS pass rate × 0.5 when every PASS_TO_PASS test
// passed, else 0. An empty list counts as all passing.
func Correctness(f2p, p2p map[string]string) float64 {
	if !allPass(p2p) {
		return 0
	}
	if allPass(f2p) {
		return 1
	}
	n := 0
	for _, s := range f2p {
		if passed(s) {
			n++
		}
	}
	return 0.5 * float64(n) / float64(len(f2p))
}

// Timeliness is 1 at or before created and halves every halfLife after it.
func Timeliness(created, submitted time.Time, halfLife time.Duration) float64 {
	if created.IsZero() || !submitted.After(created) || halfLife <= 0 {
		return 1
	}
	return math.Pow(0.5, float64(submitted.Sub(created))/float64(halfLife))
}

// ConcisenessCap bounds how many times the reference's changed lines a
// candidate may change before Conciseness reaches 0.
const ConcisenessCap = 5.0

// Conciseness compares changed lines (added + removed) of candidate and
// reference: 1 when the candidate changes no more lines than the
// reference, falling linearly to 0 at ConcisenessCap times as many.
// An empty candidate scores 0.
func Conciseness(candidate, reference string) float64 {
	c, r := changedLines(candidate), changedLines(reference)
	if c == 0 {
		return 0
	}
	if r == 0 {
		r = 1
	}
	ratio := float64(c) / float64(r)
	if ratio <= 1 {
		return 1
	}
	return clamp01(1 - (ratio-1)/(ConcisenessCap-1))
}

func changedLines(diff string) int {
	n := 0
	for _, f := range splitDiff(diff) {
		for _, l := range strings.Split(f, "\n") {
			if strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-") {
				n++
			}
		}
	}
	return n
}

// PatchSimilarity follows SWE-RL (arXiv 2502.18449): per file, the
// normalised diff texts are compared with SequenceRatio; the mean is taken
// over the union of files, a file present on one side only scoring 0.
// Two empty patches are identical (1).
func PatchSimilarity(candidate, reference string) float64 {
	a, b := splitDiff(candidate), splitDiff(reference)
	names := map[string]bool{}
	for k := range a {
		names[k] = true
	}
	for k := range b {
		names[k] = true
	}
	if len(names) == 0 {
		return 1
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sum := 0.0
	for _, k := range keys {
		x, okx := a[k]
		y, oky := b[k]
		if okx && oky {
			sum += SequenceRatio(x, y)
		}
	}
	return sum / float64(len(keys))
}

// splitDiff maps each file path of a unified diff to its normalised body:
// only the hunk lines (' ', '+', '-'), trailing white space trimmed; file
// headers, index lines and @@ line numbers are dropped, since they differ
// between equivalent patches.
func splitDiff(diff string) map[string]string {
	out := map[string]string{}
	var cur string
	var body strings.Builder
	flush := func() {
		if cur != "" {
			out[cur] += body.String()
		}
		body.Reset()
	}
	inHunk := false
	for _, line := range strings.Split(diff, "\n") {
		switch {
		case strings.HasPrefix(line, "diff --git "):
			flush()
			cur = diffGitPath(line)
			inHunk = false
		case strings.HasPrefix(line, "+++ ") && !inHunk:
			if p := strings.TrimSpace(strings.TrimPrefix(line, "+++ ")); p != "/dev/null" {
				if cur == "" {
					flush()
				}
				cur = stripPrefix(p)
			}
		case strings.HasPrefix(line, "--- ") && !inHunk:
			if cur == "" {
				if p := strings.TrimSpace(strings.TrimPrefix(line, "--- ")); p != "/dev/null" {
					cur = stripPrefix(p)
				}
			}
		case strings.HasPrefix(line, "@@"):
			inHunk = true
		case inHunk && (strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-") || strings.HasPrefix(line, " ")):
			body.WriteString(strings.TrimRight(line, " \t\r"))
			body.WriteByte('\n')
		default:
			if !strings.HasPrefix(line, `\`) {
				inHunk = false
			}
		}
	}
	flush()
	return out
}

// diffGitPath extracts the b/ path of a "diff --git a/X b/Y" line.
func diffGitPath(line string) string {
	rest := strings.TrimPrefix(line, "diff --git ")
	if i := strings.LastIndex(rest, " b/"); i >= 0 {
		return rest[i+3:]
	}
	f := strings.Fields(rest)
	if len(f) == 2 {
		return stripPrefix(f[1])
	}
	return rest
}

func stripPrefix(p string) string {
	if i := strings.IndexByte(p, '\t'); i >= 0 {
		p = p[:i]
	}
	if strings.HasPrefix(p, "a/") || strings.HasPrefix(p, "b/") {
		return p[2:]
	}
	return p
}

// diffFiles lists the paths a unified diff touches.
func diffFiles(diff string) []string {
	m := splitDiff(diff)
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SequenceRatio is Python's difflib.SequenceMatcher(None, a, b,
// autojunk=False).ratio() over the code points of a and b: 2·M/T, where M
// counts the elements of the matching blocks found by Ratcliff/Obershelp
// (longest common block, earliest in a then b on ties, recursively on
// both sides) and T = len(a)+len(b); 1 when both are empty. It takes
// O(len(a)·len(b)) time in the worst case.
func SequenceRatio(a, b string) float64 {
	ra, rb := []rune(a), []rune(b)
	t := len(ra) + len(rb)
	if t == 0 {
		return 1
	}
	return 2 * float64(matches(ra, rb)) / float64(t)
}

// matches sums the sizes of difflib's matching blocks (no junk).
func matches(a, b []rune) int {
	b2j := map[rune][]int{}
	for j, r := range b {
		b2j[r] = append(b2j[r], j)
	}
	// j2len of difflib as dense arrays with generation stamps: lenP/stampP
	// hold the previous row (runs ending at a[i-1]), lenC/stampC the current.
	lenP, stampP := make([]int, len(b)), make([]int, len(b))
	lenC, stampC := make([]int, len(b)), make([]int, len(b))
	gen := 0
	longest := func(alo, ahi, blo, bhi int) (int, int, int) {
		besti, bestj, bestsize := alo, blo, 0
		gen++
		prevStamp := gen // nothing carries this stamp: the empty row
		for i := alo; i < ahi; i++ {
			gen++
			cur := gen
			for _, j := range b2j[a[i]] {
				if j < blo {
					continue
				}
				if j >= bhi {
					break
				}
				k := 1
				if j > 0 && stampP[j-1] == prevStamp {
					k = lenP[j-1] + 1
				}
				lenC[j], stampC[j] = k, cur
				if k > bestsize {
					besti, bestj, bestsize = i-k+1, j-k+1, k
				}
			}
			lenP, lenC = lenC, lenP
			stampP, stampC = stampC, stampP
			prevStamp = cur
		}
		return besti, bestj, bestsize
	}
	total := 0
	type span struct{ alo, ahi, blo, bhi int }
	queue := []span{{0, len(a), 0, len(b)}}
	for len(queue) > 0 {
		s := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		i, j, k := longest(s.alo, s.ahi, s.blo, s.bhi)
		if k == 0 {
			continue
		}
		total += k
		if s.alo < i && s.blo < j {
			queue = append(queue, span{s.alo, i, s.blo, j})
		}
		if i+k < s.ahi && j+k < s.bhi {
			queue = append(queue, span{i + k, s.ahi, j + k, s.bhi})
		}
	}
	return total
}

func clamp01(x float64) float64 {
	if math.IsNaN(x) || x < 0 {
		return 0
	}
	if x > 1 {
		return 1
	}
	return x
}
