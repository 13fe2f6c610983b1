package incentive

import (
	"math"
	"time"
)

// Contender is one model in a pairwise comparison: an identifier, the time
// it was committed, and its score on each evaluation item (higher is better,
// scores ≥ 0; every contender is scored on the same items in the same
// order).
type Contender struct {
	ID          string
	CommittedAt time.Time
	Scores      []float64
}

// WinRates returns each contender's share of pairwise item wins, with the
// earlier-committed side of each pair given a (1+epsilon) advantage (see the
// package documentation). A lone contender's win rate is 1. Items are
// compared up to the longest score list; a missing or NaN score counts as 0.
// IDs should be unique; a repeated ID keeps the last contender's rate.
func WinRates(cs []Contender, epsilon float64) map[string]float64 {
	out := make(map[string]float64, len(cs))
	if len(cs) == 1 {
		out[cs[0].ID] = 1
		return out
	}
	items := 0
	for _, c := range cs {
		items = max(items, len(c.Scores))
	}
	wins := make([]int, len(cs))
	for a := range cs {
		for b := a + 1; b < len(cs); b++ {
			wa, wb := pairWins(cs[a], cs[b], items, epsilon)
			wins[a] += wa
			wins[b] += wb
		}
	}
	den := float64(items * (len(cs) - 1))
	for i, c := range cs {
		if den == 0 {
			out[c.ID] = 0
			continue
		}
		out[c.ID] = float64(wins[i]) / den
	}
	return out
}

// PairwiseWinRates returns, for each ordered pair of contenders (a, b), the
// share of items a wins against b under WinRates' rules (the earlier
// commit's advantage, missing scores as 0); the diagonal is 0. Row a's sum
// over the others, divided by their number, is WinRates' rate of a.
func PairwiseWinRates(cs []Contender, epsilon float64) [][]float64 {
	items := 0
	for _, c := range cs {
		items = max(items, len(c.Scores))
	}
	m := make([][]float64, len(cs))
	for a := range cs {
		m[a] = make([]float64, len(cs))
	}
	if items == 0 {
		return m
	}
	for a := range cs {
		for b := a + 1; b < len(cs); b++ {
			wa, wb := pairWins(cs[a], cs[b], items, epsilon)
			m[a][b], m[b][a] = float64(wa)/float64(items), float64(wb)/float64(items)
		}
	}
	return m
}

// pairWins counts the items a wins against b and b wins against a.
func pairWins(a, b Contender, items int, epsilon float64) (wa, wb int) {
	boostA, boostB := 1.0, 1.0
	switch {
	case a.CommittedAt.Before(b.CommittedAt):
		boostA = 1 + epsilon
	case b.CommittedAt.Before(a.CommittedAt):
		boostB = 1 + epsilon
	}
	for i := range items {
		sa, sb := scoreAt(a.Scores, i)*boostA, scoreAt(b.Scores, i)*boostB
		switch {
		case sa > sb:
			wa++
		case sb > sa:
			wb++
		}
	}
	return wa, wb
}

// scoreAt returns s[i], or 0 when it is missing or NaN.
func scoreAt(s []float64, i int) float64 {
	if i >= len(s) || math.IsNaN(s[i]) {
		return 0
	}
	return s[i]
}

// DecayingEpsilon returns the pretraining subnet's linearly decaying
// advantage: start for a model of age 0, falling linearly to end at
// spanBlocks and staying there (taoverse LinearDecay.compute_epsilon). A
// negative age counts as 0; a non-positive span gives end.
func DecayingEpsilon(start, end float64, ageBlocks, spanBlocks int) float64 {
	if spanBlocks <= 0 {
		return end
	}
	age := max(ageBlocks, 0)
	frac := min(float64(age)/float64(spanBlocks), 1)
	return start - (start-end)*frac
}

// LossModel is a model judged by loss (lower is better) and the block at
// which it was committed.
type LossModel struct {
	ID    string
	Loss  float64
	Block int64
}

// CompetitiveModels returns, in input order, the IDs of the models that can
// ever become the best: those whose loss is below every model committed at
// the same or an earlier block after that model's loss is given its fully
// decayed advantage, other.Loss·(1−epsilon). Pass the decayed floor of the
// schedule (DecayingEpsilon's end). A model that cannot beat an earlier one
// even then is never competitive, which is how the pretraining subnet
// (compute_competitive_uids) discards late copies.
func CompetitiveModels(models []LossModel, epsilon float64) []string {
	var out []string
	for i, m := range models {
		ok := !math.IsNaN(m.Loss)
		for j, o := range models {
			if !ok {
				break
			}
			if i != j && o.Block <= m.Block && !(m.Loss < o.Loss*(1-epsilon)) {
				ok = false
			}
		}
		if ok {
			out = append(out, m.ID)
		}
	}
	return out
}
