package ledger

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// TiePolicy says how entrants with equal scores are ranked.
type TiePolicy string

// Tie policies.
const (
	// TiesSplit: tied entrants share the total of the ranks they occupy
	// equally (the default).
	TiesSplit TiePolicy = "split"
	// TiesEarliest: tied entrants take their ranks in commit order, the
	// earliest first (then by name), as the AO POC's later rule did.
	TiesEarliest TiePolicy = "earliest"
)

// Bounds on a rule spec: a funder writes it and settlement runs it, so it
// is refused before any work when it is larger than these.
const (
	MaxRuleSpec  = 4096
	MaxRuleRanks = 1000
)

// ParseRule parses an allocation rule spec:
//
//	arithmetic-decrease       ranks 1..n get n, n−1, …, 1 parts
//	arithmetic-decrease:top=N only ranks 1..m, m = min(n, N), paid m, …, 1
//	                          parts (the AO POC's intent: N = 10)
//	proportional              shares ∝ score
//	winner-take-all           rank 1 takes everything (ties split)
//	top-k:50,30,20            percentages by rank, non-increasing, sum ≤ 100;
//	                          the rest and ranks without an entrant stay unassigned
//	table:35,20,10,5+flat:X   like top-k, then X percent to each further rank
//	                          while the total stays ≤ 100 (the AO POC's table)
//	softmax:T                 shares ∝ exp(score/T), T > 0
//
// and the modifiers, after a "+": progress (the score is multiplied by the
// entrant's Progress, the share of items evaluated, before ranking) and
// ties=split|earliest (for the ranked rules). N, the percentages and the
// table's length are bounded by MaxRuleRanks, the spec by MaxRuleSpec.
func ParseRule(spec string) (Rule, error) {
	if len(spec) > MaxRuleSpec {
		return nil, fmt.Errorf("allocation rule: %d bytes, more than the limit of %d", len(spec), MaxRuleSpec)
	}
	parts := strings.Split(strings.TrimSpace(spec), "+")
	var (
		flat           float64
		hasFlat        bool
		progress       bool
		ties           = TiesSplit
		hasTies        bool
		quote          = fmt.Sprintf("allocation rule %.80q", spec)
		modifierBefore = map[string]bool{}
	)
	for _, m := range parts[1:] {
		m = strings.TrimSpace(m)
		key, val, _ := strings.Cut(m, "=")
		if strings.HasPrefix(m, "flat:") {
			key, val = "flat", strings.TrimPrefix(m, "flat:")
		}
		if modifierBefore[key] {
			return nil, fmt.Errorf("%s: %s is given twice", quote, key)
		}
		modifierBefore[key] = true
		switch {
		case key == "flat":
			f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil || !(f > 0 && f <= 100) {
				return nil, fmt.Errorf("%s: flat:%s must be a percentage > 0 and ≤ 100", quote, val)
			}
			flat, hasFlat = f, true
		case m == "progress":
			progress = true
		case key == "ties" && (val == string(TiesSplit) || val == string(TiesEarliest)):
			ties, hasTies = TiePolicy(val), true
		case key == "ties":
			return nil, fmt.Errorf("%s: ties=%s: want ties=split or ties=earliest", quote, val)
		default:
			return nil, fmt.Errorf("%s: unknown modifier %q (want +progress, +ties=split|earliest, or +flat:X after a table)", quote, m)
		}
	}
	r, err := parseBase(quote, parts[0], ties)
	if err != nil {
		return nil, err
	}
	if hasFlat {
		t, ok := r.(Table)
		if !ok {
			return nil, fmt.Errorf("%s: +flat:X follows a table:P1,P2,… rule only", quote)
		}
		if flat > t.Percents[len(t.Percents)-1] {
			return nil, fmt.Errorf("%s: flat %v is more than the table's last percentage %v; a lower rank must not earn more", quote, flat, t.Percents[len(t.Percents)-1])
		}
		if sum(t.Percents)+flat > 100+1e-9 {
			return nil, fmt.Errorf("%s: the table's percentages leave less than flat %v of 100", quote, flat)
		}
		t.Flat = flat
		r = t
	}
	if hasTies {
		switch r.(type) {
		case ArithmeticDecrease, WinnerTakeAll, TopK, Table:
		default:
			return nil, fmt.Errorf("%s: ties=… applies to ranked rules (arithmetic-decrease, winner-take-all, top-k, table)", quote)
		}
	}
	if progress {
		r = Progress{Rule: r}
	}
	return r, nil
}

// parseBase parses the rule before its modifiers.
func parseBase(quote, base string, ties TiePolicy) (Rule, error) {
	name, arg, hasArg := strings.Cut(strings.TrimSpace(base), ":")
	arg = strings.TrimSpace(arg)
	noArg := func(r Rule) (Rule, error) {
		if hasArg {
			return nil, fmt.Errorf("%s: %s takes no parameter", quote, name)
		}
		return r, nil
	}
	switch name {
	case "arithmetic-decrease":
		if !hasArg {
			return ArithmeticDecrease{Ties: ties}, nil
		}
		v, ok := strings.CutPrefix(arg, "top=")
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || err != nil || n < 1 || n > MaxRuleRanks {
			return nil, fmt.Errorf("%s: arithmetic-decrease takes top=N with N from 1 to %d, e.g. arithmetic-decrease:top=10", quote, MaxRuleRanks)
		}
		return ArithmeticDecrease{Top: n, Ties: ties}, nil
	case "proportional":
		return noArg(Proportional{})
	case "winner-take-all":
		return noArg(WinnerTakeAll{Ties: ties})
	case "top-k", "table":
		if !hasArg || arg == "" {
			return nil, fmt.Errorf("%s: %s needs percentages, e.g. %s:50,30,20", quote, name, name)
		}
		ps, err := parsePercents(quote, arg)
		if err != nil {
			return nil, err
		}
		if name == "table" {
			return Table{Percents: ps, Ties: ties}, nil
		}
		return TopK{Percents: ps, Ties: ties}, nil
	case "softmax":
		if !hasArg {
			return nil, fmt.Errorf("%s: softmax needs a temperature, e.g. softmax:0.1", quote)
		}
		tmp, err := strconv.ParseFloat(arg, 64)
		if err != nil || math.IsNaN(tmp) || math.IsInf(tmp, 0) || tmp <= 0 {
			return nil, fmt.Errorf("%s: temperature must be a finite number > 0", quote)
		}
		return Softmax{Temperature: tmp}, nil
	}
	return nil, fmt.Errorf("%s: unknown rule (want arithmetic-decrease[:top=N], proportional, winner-take-all, top-k:P1,P2,…, table:P1,P2,…[+flat:X] or softmax:T)", quote)
}

// parsePercents parses non-increasing percentages summing to at most 100.
func parsePercents(quote, arg string) ([]float64, error) {
	fields := strings.Split(arg, ",")
	if len(fields) > MaxRuleRanks {
		return nil, fmt.Errorf("%s: %d percentages, more than the limit of %d", quote, len(fields), MaxRuleRanks)
	}
	ps := make([]float64, 0, len(fields))
	for i, f := range fields {
		p, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || math.IsNaN(p) || math.IsInf(p, 0) {
			return nil, fmt.Errorf("%s: percentage %d (%q) is not a number", quote, i+1, f)
		}
		if p < 0 {
			return nil, fmt.Errorf("%s: percentage %d is negative (%v)", quote, i+1, p)
		}
		if i > 0 && p > ps[i-1] {
			return nil, fmt.Errorf("%s: percentage %d (%v) is larger than the one before it; a lower rank must not earn more", quote, i+1, p)
		}
		ps = append(ps, p)
	}
	if s := sum(ps); s > 100+1e-9 {
		return nil, fmt.Errorf("%s: percentages sum to %v, more than 100", quote, s)
	}
	return ps, nil
}

func sum(ps []float64) float64 {
	var s float64
	for _, p := range ps {
		s += p
	}
	return s
}

// tieSuffix is the spec suffix of a tie policy ("" for the default).
func tieSuffix(t TiePolicy) string {
	if t == TiesEarliest {
		return "+ties=earliest"
	}
	return ""
}

func formatPercents(ps []float64) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = strconv.FormatFloat(p, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

// ArithmeticDecrease gives the eligible entrants ranked 1..m a share
// proportional to m, m−1, …, 1, where m is the number of eligible entrants,
// or at most Top of them when Top > 0 (the AO POC's intent, Top = 10: with
// more than ten entrants ranks 1..10 get 10/55 … 1/55 and the rest nothing).
type ArithmeticDecrease struct {
	Top  int
	Ties TiePolicy
}

// Name returns the spec, e.g. "arithmetic-decrease:top=10".
func (r ArithmeticDecrease) Name() string {
	s := "arithmetic-decrease"
	if r.Top > 0 {
		s += ":top=" + strconv.Itoa(r.Top)
	}
	return s + tieSuffix(r.Ties)
}

// Shares implements Rule.
func (r ArithmeticDecrease) Shares(entrants []Entrant) []float64 {
	return byRank(entrants, r.Ties, func(rank, n int) float64 {
		m := n
		if r.Top > 0 {
			m = min(n, r.Top)
		}
		if rank >= m {
			return 0
		}
		return float64(m-rank) / (float64(m) * float64(m+1) / 2)
	})
}

// Proportional gives each eligible entrant a share proportional to its score.
type Proportional struct{}

// Name returns "proportional".
func (Proportional) Name() string { return "proportional" }

// Shares implements Rule.
func (Proportional) Shares(entrants []Entrant) []float64 {
	out := make([]float64, len(entrants))
	var total float64
	for _, e := range entrants {
		if e.eligible() {
			total += e.Score
		}
	}
	if total == 0 || math.IsInf(total, 0) {
		return out
	}
	for i, e := range entrants {
		if e.eligible() {
			out[i] = e.Score / total
		}
	}
	return out
}

// WinnerTakeAll gives the whole pool to rank 1; entrants tied for first
// split it equally (or the earliest takes it, under TiesEarliest).
type WinnerTakeAll struct {
	Ties TiePolicy
}

// Name returns "winner-take-all".
func (r WinnerTakeAll) Name() string { return "winner-take-all" + tieSuffix(r.Ties) }

// Shares implements Rule.
func (r WinnerTakeAll) Shares(entrants []Entrant) []float64 {
	return byRank(entrants, r.Ties, func(rank, _ int) float64 {
		if rank == 0 {
			return 1
		}
		return 0
	})
}

// TopK gives rank i (1-based) Percents[i−1] percent of the pool. Ranks
// beyond the percentages get nothing; percentages for ranks without an
// eligible entrant, and whatever the percentages leave below 100, stay
// unassigned. Percents must be non-increasing (ParseRule enforces it), so
// that a better rank never earns less.
type TopK struct {
	Percents []float64
	Ties     TiePolicy
}

// Name returns the spec, e.g. "top-k:50,30,20".
func (r TopK) Name() string { return "top-k:" + formatPercents(r.Percents) + tieSuffix(r.Ties) }

// Shares implements Rule.
func (r TopK) Shares(entrants []Entrant) []float64 {
	return byRank(entrants, r.Ties, func(rank, _ int) float64 {
		if rank < len(r.Percents) {
			return r.Percents[rank] / 100
		}
		return 0
	})
}

// Table is a fixed percentage table by rank, like TopK, followed by a flat
// Flat percent for each further rank while the total stays within 100:
// the AO POC's later rule (35, 20, 10 and 5 % for ranks 4–10, then a flat
// amount from rank 11). What no entrant takes stays unassigned.
type Table struct {
	Percents []float64
	Flat     float64
	Ties     TiePolicy
}

// Name returns the spec, e.g. "table:35,20,10+flat:0.5".
func (r Table) Name() string {
	s := "table:" + formatPercents(r.Percents)
	if r.Flat > 0 {
		s += "+flat:" + strconv.FormatFloat(r.Flat, 'g', -1, 64)
	}
	return s + tieSuffix(r.Ties)
}

// Shares implements Rule.
func (r Table) Shares(entrants []Entrant) []float64 {
	flatRanks := 0
	if r.Flat > 0 {
		flatRanks = int(math.Floor((100-sum(r.Percents))/r.Flat + 1e-9))
	}
	return byRank(entrants, r.Ties, func(rank, _ int) float64 {
		switch {
		case rank < len(r.Percents):
			return r.Percents[rank] / 100
		case rank-len(r.Percents) < flatRanks:
			return r.Flat / 100
		}
		return 0
	})
}

// Softmax gives each eligible entrant a share proportional to
// exp(score/Temperature), computed as exp((score − max)/Temperature) so that
// it cannot overflow.
type Softmax struct {
	Temperature float64
}

// Name returns the spec, e.g. "softmax:0.1".
func (r Softmax) Name() string {
	return "softmax:" + strconv.FormatFloat(r.Temperature, 'g', -1, 64)
}

// Shares implements Rule. A non-positive temperature behaves as its limit
// T → 0⁺: the top-scoring entrants split the pool.
func (r Softmax) Shares(entrants []Entrant) []float64 {
	out := make([]float64, len(entrants))
	top := math.Inf(-1)
	for _, e := range entrants {
		if e.eligible() {
			top = max(top, e.Score)
		}
	}
	if math.IsInf(top, -1) {
		return out
	}
	if !(r.Temperature > 0) {
		return WinnerTakeAll{}.Shares(entrants)
	}
	var total float64
	for i, e := range entrants {
		if e.eligible() {
			out[i] = math.Exp((e.Score - top) / r.Temperature)
			total += out[i]
		}
	}
	for i := range out {
		out[i] /= total // total ≥ 1: the top entrant contributes exp(0)
	}
	return out
}

// Progress applies Rule to the entrants with each score multiplied by the
// entrant's Progress, the share of items evaluated (the AO POC's score ×
// progress): an entrant evaluated on half the items counts half its score.
type Progress struct {
	Rule Rule
}

// Name returns the inner rule's spec with "+progress".
func (r Progress) Name() string { return r.Rule.Name() + "+progress" }

// Shares implements Rule.
func (r Progress) Shares(entrants []Entrant) []float64 {
	return r.Rule.Shares(r.counted(entrants))
}

// counted implements countedScorer: the entrants with the scores the rule
// ranks by.
func (Progress) counted(entrants []Entrant) []Entrant {
	scaled := slices.Clone(entrants)
	for i := range scaled {
		scaled[i].Score *= max(0, min(1, scaled[i].Progress))
	}
	return scaled
}

// countedScorer is a rule that ranks by other scores than the entrants'
// own (Progress); Allocate breaks equal remainders by those scores, so a
// higher counted score never earns less.
type countedScorer interface {
	counted([]Entrant) []Entrant
}

// byRank ranks the eligible entrants by score (descending), gives rank r
// (0-based, of n eligible) the share part(r, n), and resolves equal scores
// by ties: split shares their ranks' total equally, earliest gives the
// ranks in commit order (then name order).
func byRank(entrants []Entrant, ties TiePolicy, part func(rank, n int) float64) []float64 {
	out := make([]float64, len(entrants))
	var idx []int
	for i, e := range entrants {
		if e.eligible() {
			idx = append(idx, i)
		}
	}
	n := len(idx)
	slices.SortStableFunc(idx, func(a, b int) int {
		ea, eb := entrants[a], entrants[b]
		if c := cmp.Compare(eb.Score, ea.Score); c != 0 || ties != TiesEarliest {
			return c
		}
		return cmp.Or(ea.CommittedAt.Compare(eb.CommittedAt), strings.Compare(ea.Name, eb.Name))
	})
	for i := 0; i < n; {
		j := i + 1
		for ties != TiesEarliest && j < n && entrants[idx[j]].Score == entrants[idx[i]].Score {
			j++
		}
		total, same := 0.0, true
		for r := i; r < j; r++ {
			total += part(r, n)
			same = same && part(r, n) == part(i, n)
		}
		share := total / float64(j-i)
		if same {
			// The mean of equal parts can differ from them in the last bit,
			// and Allocate's remainders would then rank that noise above
			// the scores: tied entrants on equal parts get the part itself.
			share = part(i, n)
		}
		for r := i; r < j; r++ {
			out[idx[r]] = share
		}
		i = j
	}
	return out
}
