package preference

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"crucible/internal/stats"
)

// Config holds the scoring weights and the trust gate; the package doc
// gives the formula. It is stored as a competition's preference config.
type Config struct {
	// AgreementWeight is w_A, the weight of agreement with the other
	// miners' leave-one-out consensus.
	AgreementWeight float64 `json:"agreement_weight"`
	// GroundTruthWeight is w_G, the weight of closeness to the synthetic
	// ground truth. Keep it below AgreementWeight so human consensus wins.
	GroundTruthWeight float64 `json:"ground_truth_weight"`
	// KappaWeights is the Cohen's kappa weighting: "none", "linear" or
	// "quadratic".
	KappaWeights string `json:"kappa_weights"`
	// KappaThreshold is the trust gate: a miner whose pooled epoch kappa
	// is below it gets reward 0.
	KappaThreshold float64 `json:"kappa_threshold"`
	// MinTasks is the fewest tasks a miner must rate in an epoch to be
	// trusted.
	MinTasks int `json:"min_tasks"`
}

// DefaultConfig returns the default scoring configuration: w_A = 0.75,
// w_G = 0.25, quadratic kappa, gate κ ≥ 0.3, at least 1 task.
func DefaultConfig() Config {
	return Config{AgreementWeight: 0.75, GroundTruthWeight: 0.25, KappaWeights: "quadratic", KappaThreshold: 0.3, MinTasks: 1}
}

// Validate checks c.
func (c Config) Validate() error {
	if c.AgreementWeight < 0 || c.GroundTruthWeight < 0 || c.AgreementWeight+c.GroundTruthWeight <= 0 {
		return fmt.Errorf("preference config: weights %g and %g must be non-negative with a positive sum", c.AgreementWeight, c.GroundTruthWeight)
	}
	if _, err := ParseWeighting(c.KappaWeights); err != nil {
		return fmt.Errorf("preference config: %w", err)
	}
	if c.KappaThreshold < -1 || c.KappaThreshold > 1 || math.IsNaN(c.KappaThreshold) {
		return fmt.Errorf("preference config: kappa threshold %g is outside [-1, 1]", c.KappaThreshold)
	}
	if c.MinTasks < 0 {
		return fmt.Errorf("preference config: negative min tasks %d", c.MinTasks)
	}
	return nil
}

// Describe explains the scoring rule with c's values, for
// `crucible competition show`.
func (c Config) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Per task, for miner m with ranks r (1 = best; scores become ranks) and the leave-one-out\n")
	fmt.Fprintf(&b, "consensus c (average ranks of the other miners' mean ranks):\n")
	fmt.Fprintf(&b, "  A = (max(0, kappa_%s(r, c)) + max(0, spearman(r, c))) / 2\n", c.KappaWeights)
	fmt.Fprintf(&b, "  G = 1 - normalised Kendall tau distance(r, ground truth)   (synthetic tasks only)\n")
	fmt.Fprintf(&b, "  S = (%g*A + %g*G) / %g   (S = A without ground truth, S = G without other miners)\n",
		c.AgreementWeight, c.GroundTruthWeight, c.AgreementWeight+c.GroundTruthWeight)
	fmt.Fprintf(&b, "Epoch: kappa_%s over all of m's (r, c) pairs pooled; below %g, or fewer than %d tasks,\n", c.KappaWeights, c.KappaThreshold, c.MinTasks)
	fmt.Fprintf(&b, "means no trust and reward 0. Otherwise reward = sum of S; weights = rewards / their sum.\n")
	if c.AgreementWeight > c.GroundTruthWeight {
		fmt.Fprintf(&b, "Human consensus outweighs the synthetic ground truth when they disagree.\n")
	}
	return b.String()
}

// ParseWeighting maps "none", "linear" or "quadratic" to a stats.Weighting.
func ParseWeighting(s string) (stats.Weighting, error) {
	switch s {
	case "none":
		return stats.None, nil
	case "linear":
		return stats.Linear, nil
	case "quadratic":
		return stats.Quadratic, nil
	}
	return 0, fmt.Errorf("unknown kappa weighting %q (want none, linear or quadratic)", s)
}

// Rating is one miner's de-obfuscated answer to one task: Values[i] is the
// rank (CriteriaRank) or score (CriteriaScore) of canonical response i.
type Rating struct {
	Miner  string `json:"miner"`
	TaskID string `json:"task_id"`
	Values []int  `json:"values"`
	// Submitted, when set, is checked against the task's deadline; late
	// ratings are ignored (the labeling page refuses them anyway).
	Submitted time.Time `json:"submitted,omitzero"`
}

// Epoch is the scored outcome of one epoch.
type Epoch struct {
	Config Config        `json:"config"`
	Miners []MinerResult `json:"miners"`
	Tasks  []TaskResult  `json:"tasks"`
}

// MinerResult is one miner's epoch outcome.
type MinerResult struct {
	Miner string `json:"miner"`
	// Tasks is the number of tasks the miner rated in time.
	Tasks int `json:"tasks"`
	// Late counts ratings ignored because they came after the deadline.
	Late int `json:"late,omitempty"`
	// Kappa is the pooled epoch kappa against the leave-one-out consensus.
	Kappa float64 `json:"kappa"`
	// Trusted reports whether the miner passed the gate.
	Trusted bool `json:"trusted"`
	// Score is the sum of the miner's task scores (before the gate).
	Score float64 `json:"score"`
	// MeanScore is Score divided by the number of scored tasks.
	MeanScore float64 `json:"mean_score"`
	// Reward is the miner's share of the epoch in [0, 1]: Score over the
	// trusted miners' total, 0 when untrusted.
	Reward float64 `json:"reward"`
}

// TaskResult is one task's outcome.
type TaskResult struct {
	TaskID string `json:"task_id"`
	// Raters is the number of in-time ratings; Trusted how many came from
	// trusted miners.
	Raters  int `json:"raters"`
	Trusted int `json:"trusted"`
	// Consensus is the average rank (1 = best, ties averaged) of each
	// canonical response over trusted raters (all raters when none is
	// trusted); nil without ratings.
	Consensus []float64 `json:"consensus,omitempty"`
	// GroundTruth is the task's ground-truth ranks, when it has one.
	GroundTruth []int `json:"ground_truth,omitempty"`
	// ConsensusCloseness is 1 − KendallTauDistance(consensus, ground truth).
	ConsensusCloseness *float64 `json:"consensus_closeness,omitempty"`
	// ICC2 is ICC(2,1) over the consensus raters' ranks (two or more).
	ICC2 *float64 `json:"icc2,omitempty"`
	// Miners holds each rater's figures, sorted by miner.
	Miners []MinerTask `json:"miners"`
}

// MinerTask is one miner's figures on one task.
type MinerTask struct {
	Miner string    `json:"miner"`
	Ranks []float64 `json:"ranks"`
	// Kappa, Spearman and Agreement compare with the leave-one-out
	// consensus; nil when nobody else rated the task.
	Kappa     *float64 `json:"kappa,omitempty"`
	Spearman  *float64 `json:"spearman,omitempty"`
	Agreement *float64 `json:"agreement,omitempty"`
	// Closeness is 1 − KendallTauDistance to the ground truth, when any.
	Closeness *float64 `json:"closeness,omitempty"`
	// Score is the task score S; Scored is false when neither component
	// exists (a lone rater on an organic task).
	Score  float64 `json:"score"`
	Scored bool    `json:"scored"`
}

// RanksOf converts a rating's values to ranks, 1 = best, ties averaged:
// ranks pass through, scores (higher = better) are ranked.
func RanksOf(c Criteria, values []int) []float64 {
	x := make([]float64, len(values))
	for i, v := range values {
		if c == CriteriaScore {
			x[i] = -float64(v)
		} else {
			x[i] = float64(v)
		}
	}
	return stats.Ranks(x)
}

// Score scores one epoch's ratings of tasks under cfg (the zero Config
// means DefaultConfig). Ratings must name known tasks, match their
// criteria, and not repeat a (miner, task) pair.
func Score(cfg Config, tasks []Task, ratings []Rating) (Epoch, error) {
	if cfg == (Config{}) {
		cfg = DefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		return Epoch{}, err
	}
	weighting, _ := ParseWeighting(cfg.KappaWeights)
	byID := map[string]int{}
	for i, t := range tasks {
		if _, dup := byID[t.ID]; dup {
			return Epoch{}, fmt.Errorf("score: task %s listed twice", t.ID)
		}
		byID[t.ID] = i
	}
	perTask := make([][]Rating, len(tasks))
	miners := map[string]*MinerResult{}
	seen := map[[2]string]bool{}
	for _, r := range ratings {
		ti, ok := byID[r.TaskID]
		if !ok {
			return Epoch{}, fmt.Errorf("score: rating by %s names unknown task %s", r.Miner, r.TaskID)
		}
		t := tasks[ti]
		key := [2]string{r.Miner, r.TaskID}
		if seen[key] {
			return Epoch{}, fmt.Errorf("score: miner %s rated task %s twice", r.Miner, r.TaskID)
		}
		seen[key] = true
		if err := checkValues(t, r.Values); err != nil {
			return Epoch{}, fmt.Errorf("score: rating by %s: %w", r.Miner, err)
		}
		m := miners[r.Miner]
		if m == nil {
			m = &MinerResult{Miner: r.Miner}
			miners[r.Miner] = m
		}
		if !r.Submitted.IsZero() && !t.Open(r.Submitted) {
			m.Late++
			continue
		}
		m.Tasks++
		perTask[ti] = append(perTask[ti], r)
	}

	pooledA := map[string][]int{}
	pooledB := map[string][]int{}
	scored := map[string]int{}
	results := make([]TaskResult, len(tasks))
	for ti, t := range tasks {
		rs := perTask[ti]
		sort.Slice(rs, func(a, b int) bool { return rs[a].Miner < rs[b].Miner })
		tr := TaskResult{TaskID: t.ID, Raters: len(rs), GroundTruth: t.GroundTruth}
		ranks := make([][]float64, len(rs))
		for i, r := range rs {
			ranks[i] = RanksOf(t.Criteria, r.Values)
		}
		for i, r := range rs {
			mt := MinerTask{Miner: r.Miner, Ranks: ranks[i]}
			var sum, wsum float64
			if len(rs) > 1 {
				others := make([][]float64, 0, len(rs)-1)
				for j := range rs {
					if j != i {
						others = append(others, ranks[j])
					}
				}
				loo := consensus(others)
				a, b := labels(ranks[i]), labels(loo)
				k, err := stats.CohenKappa(a, b, weighting)
				if err != nil && !errors.Is(err, stats.ErrUndefined) {
					return Epoch{}, fmt.Errorf("score: task %s: %w", t.ID, err)
				}
				rho, err := stats.Spearman(ranks[i], loo)
				if err != nil && !errors.Is(err, stats.ErrUndefined) {
					return Epoch{}, fmt.Errorf("score: task %s: %w", t.ID, err)
				}
				agree := (math.Max(0, k) + math.Max(0, rho)) / 2
				mt.Kappa, mt.Spearman, mt.Agreement = &k, &rho, &agree
				sum += cfg.AgreementWeight * agree
				wsum += cfg.AgreementWeight
				pooledA[r.Miner] = append(pooledA[r.Miner], a...)
				pooledB[r.Miner] = append(pooledB[r.Miner], b...)
			}
			if t.GroundTruth != nil {
				g := 1 - stats.KendallTauDistance(labels(ranks[i]), t.GroundTruth)
				mt.Closeness = &g
				sum += cfg.GroundTruthWeight * g
				wsum += cfg.GroundTruthWeight
			}
			if wsum > 0 {
				mt.Score, mt.Scored = sum/wsum, true
				miners[r.Miner].Score += mt.Score
				scored[r.Miner]++
			}
			tr.Miners = append(tr.Miners, mt)
		}
		results[ti] = tr
	}

	// The gate.
	var total float64
	for name, m := range miners {
		if len(pooledA[name]) > 0 {
			k, err := stats.CohenKappa(pooledA[name], pooledB[name], weighting)
			if err != nil && !errors.Is(err, stats.ErrUndefined) {
				return Epoch{}, fmt.Errorf("score: miner %s: %w", name, err)
			}
			m.Kappa = k
			m.Trusted = k >= cfg.KappaThreshold && m.Tasks >= cfg.MinTasks
		}
		if n := scored[name]; n > 0 {
			m.MeanScore = m.Score / float64(n)
		}
		if m.Trusted {
			total += m.Score
		}
	}
	ep := Epoch{Config: cfg}
	for _, m := range miners {
		if m.Trusted && total > 0 {
			m.Reward = m.Score / total
		}
		ep.Miners = append(ep.Miners, *m)
	}
	sort.Slice(ep.Miners, func(a, b int) bool { return ep.Miners[a].Miner < ep.Miners[b].Miner })

	// Export consensus over trusted raters.
	for ti := range results {
		tr := &results[ti]
		var trusted, all [][]float64
		for _, mt := range tr.Miners {
			all = append(all, mt.Ranks)
			if miners[mt.Miner].Trusted {
				trusted = append(trusted, mt.Ranks)
			}
		}
		tr.Trusted = len(trusted)
		use := trusted
		if len(use) == 0 {
			use = all
		}
		if len(use) == 0 {
			continue
		}
		tr.Consensus = consensus(use)
		if tr.GroundTruth != nil {
			g := 1 - stats.KendallTauDistance(labels(tr.Consensus), tr.GroundTruth)
			tr.ConsensusCloseness = &g
		}
		if len(use) >= 2 {
			m := make([][]float64, len(tr.Consensus))
			for i := range m {
				for _, r := range use {
					m[i] = append(m[i], r[i])
				}
			}
			if icc, err := stats.ICC(m); err == nil {
				v := icc.ICC2
				tr.ICC2 = &v
			}
		}
	}
	ep.Tasks = results
	return ep, nil
}

// consensus returns the average ranks of the mean of several rank vectors.
func consensus(ranks [][]float64) []float64 {
	mean := make([]float64, len(ranks[0]))
	for _, r := range ranks {
		for i, v := range r {
			mean[i] += v / float64(len(ranks))
		}
	}
	// Round away float noise so equal means tie exactly.
	for i := range mean {
		mean[i] = math.Round(mean[i]*1e9) / 1e9
	}
	return stats.Ranks(mean)
}

// labels turns (possibly half-integer) ranks into integer labels, 2·rank,
// preserving order and ties.
func labels(ranks []float64) []int {
	out := make([]int, len(ranks))
	for i, r := range ranks {
		out[i] = int(math.Round(2 * r))
	}
	return out
}

// checkValues checks a rating's values against the task.
func checkValues(t Task, values []int) error {
	n := len(t.Responses)
	switch t.Criteria {
	case CriteriaRank:
		if err := checkPermutation(values, n); err != nil {
			return fmt.Errorf("task %s: %w", t.ID, err)
		}
	case CriteriaScore:
		if len(values) != n {
			return fmt.Errorf("task %s: %d scores for %d responses", t.ID, len(values), n)
		}
		for i, v := range values {
			if v < MinScore || v > MaxScore {
				return fmt.Errorf("task %s: score %d of response %d is outside %d..%d", t.ID, v, i, MinScore, MaxScore)
			}
		}
	default:
		return fmt.Errorf("task %s: unknown criteria %q", t.ID, t.Criteria)
	}
	return nil
}
