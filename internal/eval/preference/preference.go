// Package preference owns the human-preference task kind: ranking tasks
// (an instruction with 3–6 responses to rank or score), their synthetic
// generation by progressive degradation (whose order is the ground truth),
// organic tasks supplied by a requester, obfuscated per-miner copies that
// map back to the canonical task, the agreement-based score of each miner,
// and the export of consensus rankings as DPO pairs, JSONL and CSV.
//
// # Tasks
//
// A Task holds the original instruction, its responses in a canonical order
// (shuffled at generation, so position says nothing about quality), the
// criteria (CriteriaRank: rank every response; CriteriaScore: score each
// 1–10), a deadline and, for synthetic tasks, the ground truth: the rank of
// each response (1 = best). Generate builds one from a Seed: a generator
// model answers the original instruction and progressively degraded ones
// (level k applies the first k operators of the task's own seeded order of
// Config.Operators), and by default the same operators are applied to the
// answer text as well, so the order holds even when the model ignores a
// degradation. Response level k has ground-truth rank k+1.
//
// The ground truth must need reading: each degradation draws its form and
// place from a per-task random source keyed by the validator's salt,
// changes the answer's own words (a number, a word for its opposite, a
// negation; a dropped sentence; a cut after a whole sentence) rather than
// adding a fixed phrase or a truncation mark, and some also drift into
// off-topic or echoed text so that length does not track quality. With a
// model client every level is also rewritten by the model (rewrite.go).
// surface_test.go holds the rankers that must not read it.
//
// # Copies
//
// Each miner ranks its own Copy of a task (Obfuscator.Copy): the response
// order is shuffled with a seed derived from a validator secret, the task id
// and the miner; prose gets whitespace and list-marker variations; fenced
// code gets local identifiers renamed consistently and spacing changed in
// ways that keep behaviour. The Copy stores the permutation and the renames;
// Deobfuscate maps a miner's answer back to canonical order. Obfuscator.Copies
// guarantees that any two miners' copies differ byte-wise.
//
// # Scoring
//
// For task t and miner m, r_m are m's ranks (1 = best; scores become ranks,
// ties get the average rank) and c₋m is the leave-one-out consensus: the
// average ranks of the mean ranks of every other miner on t. Then
//
//	κ = Cohen's kappa(r_m, c₋m) with Config.KappaWeights (quadratic)
//	ρ = Spearman(r_m, c₋m)
//	A = (max(0, κ) + max(0, ρ)) / 2                      agreement
//	G = 1 − KendallTauDistance(r_m, ground truth)        closeness, synthetic tasks
//	S = (w_A·A + w_G·G) / (w_A + w_G)                    the task score
//
// S = A when t has no ground truth and S = G when nobody else rated t. With
// the defaults w_A = 0.75 and w_G = 0.25 a miner who matches the human
// consensus always outscores one who matches a ground truth the consensus
// disagrees with (tested over every permutation of 3–6 responses): human
// consensus wins.
//
// The trust gate is per epoch: κ_m is the same kappa computed once over all
// of m's (r_m, c₋m) pairs of the epoch pooled together (a per-task kappa on
// 3–6 items is too noisy to gate on). A miner with κ_m below
// Config.KappaThreshold (default 0.3), or fewer than Config.MinTasks rated
// tasks, gets no trust and reward 0. Otherwise its reward is the sum of its
// task scores (more completed tasks earn more, as in Dojo), and weights are
// rewards normalised to sum 1. Config.Describe prints this for
// `crucible competition show`.
//
// The export consensus of a task is the average rank over trusted miners
// only (all miners when none is trusted).
//
// This package must never import the store, the API, the job queue or
// another eval kind; it uses internal/stats, internal/inference and the
// standard library.
package preference

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Name is the kind's name: the registry's key and every competition's kind.
const Name = "preference"

// Criteria says how a contributor answers a task.
type Criteria string

const (
	// CriteriaRank asks for a rank of every response, 1 = best, no ties.
	CriteriaRank Criteria = "rank"
	// CriteriaScore asks for a score of every response, MinScore..MaxScore,
	// higher = better; ties are allowed.
	CriteriaScore Criteria = "score"
)

// Score bounds for CriteriaScore.
const (
	MinScore = 1
	MaxScore = 10
)

// Response-count bounds of a task.
const (
	MinResponses = 3
	MaxResponses = 6
)

// Task sources.
const (
	// SourceSynthetic marks a generated task with a ground truth.
	SourceSynthetic = "synthetic"
	// SourceOrganic marks a task whose responses a requester supplied.
	SourceOrganic = "organic"
)

// Task is one ranking task in canonical (validator-side) form. Miners never
// see it: they see a Copy.
type Task struct {
	// ID identifies the task; it seeds the copies' shuffles.
	ID string `json:"id"`
	// Instruction is the original instruction shown with the responses.
	Instruction string `json:"instruction"`
	// Responses are the candidates in canonical order.
	Responses []Response `json:"responses"`
	// Criteria is CriteriaRank or CriteriaScore.
	Criteria Criteria `json:"criteria"`
	// Deadline is when answers stop being accepted.
	Deadline time.Time `json:"deadline"`
	// GroundTruth, when set, is the rank (1 = best) of each response in
	// canonical order; synthetic tasks have one, organic tasks do not.
	GroundTruth []int `json:"ground_truth,omitempty"`
	// Source is SourceSynthetic or SourceOrganic.
	Source string `json:"source"`
	// Seed is the id of the seed instruction a synthetic task came from.
	Seed string `json:"seed,omitempty"`
}

// Response is one candidate answer of a task.
type Response struct {
	// ID is an opaque completion id; it never names the model or level.
	ID string `json:"id"`
	// Text is the response as shown (Markdown; code in fenced blocks).
	Text string `json:"text"`
	// Model is the generator model (validator-side only).
	Model string `json:"model,omitempty"`
	// Level is the degradation level, 0 = original (synthetic tasks).
	Level int `json:"level"`
	// Operators lists the degradations applied, in order (validator-side).
	Operators []string `json:"operators,omitempty"`
}

// Validate checks a task's shape: an id, an instruction, 3–6 responses
// with distinct non-empty texts and ids, known criteria and, when present,
// a ground truth that is a permutation of 1..n.
func (t Task) Validate() error {
	if strings.TrimSpace(t.ID) == "" {
		return errors.New("task: empty id")
	}
	if strings.TrimSpace(t.Instruction) == "" {
		return fmt.Errorf("task %s: empty instruction", t.ID)
	}
	n := len(t.Responses)
	if n < MinResponses || n > MaxResponses {
		return fmt.Errorf("task %s: %d responses, want %d to %d", t.ID, n, MinResponses, MaxResponses)
	}
	ids := map[string]int{}
	texts := map[string]int{}
	for i, r := range t.Responses {
		if strings.TrimSpace(r.Text) == "" {
			return fmt.Errorf("task %s: response %d is empty", t.ID, i)
		}
		if r.ID == "" {
			return fmt.Errorf("task %s: response %d has no id", t.ID, i)
		}
		if j, dup := ids[r.ID]; dup {
			return fmt.Errorf("task %s: responses %d and %d share id %q", t.ID, j, i, r.ID)
		}
		if j, dup := texts[r.Text]; dup {
			return fmt.Errorf("task %s: responses %d and %d have the same text", t.ID, j, i)
		}
		ids[r.ID], texts[r.Text] = i, i
	}
	switch t.Criteria {
	case CriteriaRank, CriteriaScore:
	default:
		return fmt.Errorf("task %s: unknown criteria %q (want %q or %q)", t.ID, t.Criteria, CriteriaRank, CriteriaScore)
	}
	if t.GroundTruth != nil {
		if err := checkPermutation(t.GroundTruth, n); err != nil {
			return fmt.Errorf("task %s: ground truth: %w", t.ID, err)
		}
	}
	return nil
}

// OrganicConfig describes a task whose responses a requester supplies.
type OrganicConfig struct {
	// ID identifies the task.
	ID string
	// Instruction is the prompt the responses answer.
	Instruction string
	// Responses are the candidate texts (3–6), in any order.
	Responses []string
	// Criteria defaults to CriteriaRank.
	Criteria Criteria
	// Deadline is when answers stop being accepted.
	Deadline time.Time
}

// NewOrganic returns a validated organic task (no ground truth). Response
// ids are derived from the task id and position, never from the texts.
func NewOrganic(cfg OrganicConfig) (Task, error) {
	t := Task{
		ID:          cfg.ID,
		Instruction: cfg.Instruction,
		Criteria:    cfg.Criteria,
		Deadline:    cfg.Deadline,
		Source:      SourceOrganic,
	}
	if t.Criteria == "" {
		t.Criteria = CriteriaRank
	}
	for i, text := range cfg.Responses {
		t.Responses = append(t.Responses, Response{ID: responseID(cfg.ID, i), Text: text})
	}
	if err := t.Validate(); err != nil {
		return Task{}, err
	}
	return t, nil
}

// Open reports whether answers are still accepted at now.
func (t Task) Open(now time.Time) bool {
	return t.Deadline.IsZero() || now.Before(t.Deadline)
}

// checkPermutation reports whether ranks is a permutation of 1..n.
func checkPermutation(ranks []int, n int) error {
	if len(ranks) != n {
		return fmt.Errorf("%d ranks for %d responses", len(ranks), n)
	}
	seen := make([]bool, n+1)
	for i, r := range ranks {
		if r < 1 || r > n {
			return fmt.Errorf("rank %d of response %d is outside 1..%d", r, i, n)
		}
		if seen[r] {
			return fmt.Errorf("rank %d given twice", r)
		}
		seen[r] = true
	}
	return nil
}
