package apiv1

import (
	"fmt"
	"time"

	"crucible/internal/competition"
	"crucible/internal/ledger"
)

// CreatePoolRequest is the body of POST /api/v1/pools.
type CreatePoolRequest struct {
	Title       string `json:"title" input:"max=200"`
	DatasetName string `json:"dataset_name,omitempty" input:"max=200"`
	Dataset     string `json:"dataset" input:"text,max=32MiB"`
	Mode        string `json:"mode,omitempty" input:"max=32"`
	Template    string `json:"template,omitempty" input:"text,max=64KiB"`
	// Fund is in integer base units of Asset.
	Fund       int64     `json:"fund"`
	Asset      string    `json:"asset" input:"max=32"`
	Allocation string    `json:"allocation" input:"max=256"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	// BudgetPerHour caps evaluated items per hour (default 1000).
	BudgetPerHour int `json:"budget_per_hour,omitempty"`
	// Refresh is a Go duration such as "24h" (the default).
	Refresh         string  `json:"refresh,omitempty" input:"max=32"`
	PrivateFraction float64 `json:"private_fraction,omitempty" input:"min=0,lt=1"`
	// Task makes the pool's competition a task competition on this lm-eval
	// task (a preset or a task file's text, with num_fewshot); Dataset then
	// holds its rows (JSONL), required for a task file.
	Task *competition.TaskSource `json:"task,omitempty"`
}

// PoolStatus is the body of GET /api/v1/pools/{id}.
type PoolStatus struct {
	Pool        competition.Pool         `json:"pool"`
	Entrants    []competition.Submission `json:"entrants"`
	BudgetUsed  int                      `json:"budget_used"`
	BudgetSoFar int                      `json:"budget_allowed_so_far"`
	Escrow      int64                    `json:"escrow"`
}

// SettlePoolRequest is the (optional) body of POST /api/v1/pools/{id}/settle.
type SettlePoolRequest struct {
	// Force settles an ended pool before its final evaluation tick; only
	// its funder or an operator may, and the settlement records who did.
	Force bool `json:"force,omitempty"`
}

// AllocateRequest is the body of POST /api/v1/allocate: a preview of a rule.
type AllocateRequest struct {
	Rule   string             `json:"rule" input:"max=256"`
	Amount int64              `json:"amount" input:"min=1"`
	Scores map[string]float64 `json:"scores" input:"max=10000"`
	// Progress is each entrant's share of items evaluated, for a rule with
	// +progress; an entrant not named here counts as fully evaluated (1).
	Progress map[string]float64 `json:"progress,omitempty" input:"max=10000"`
}

// MaxAllocateEntrants bounds the scores of POST /api/v1/allocate (a
// preview anyone may call, so its work must stay small).
const MaxAllocateEntrants = 10_000

// Allocate previews a rule with the settlement's own code: name → units.
func (req AllocateRequest) Allocate() (map[string]int64, error) {
	rule, err := ledger.ParseRule(req.Rule)
	if err != nil {
		return nil, err
	}
	if req.Amount <= 0 {
		return nil, fmt.Errorf("amount must be a positive number of base units")
	}
	if len(req.Scores) > MaxAllocateEntrants {
		return nil, fmt.Errorf("scores has %d entrants; a preview takes at most %d", len(req.Scores), MaxAllocateEntrants)
	}
	for name := range req.Progress {
		if _, ok := req.Scores[name]; !ok {
			return nil, fmt.Errorf("progress names %q, which has no score", name)
		}
	}
	var entrants []ledger.Entrant
	for name, score := range req.Scores {
		progress, ok := req.Progress[name]
		if !ok {
			progress = 1
		}
		entrants = append(entrants, ledger.Entrant{Name: name, Score: score, Progress: progress})
	}
	alloc, err := ledger.Allocate(rule, req.Amount, entrants)
	if err != nil {
		return nil, err
	}
	return alloc.Payouts, nil
}

// DepositRequest is the body of POST /api/v1/ledger/deposits, an operator
// crediting a funder's account: the only way money enters the ledger
// (besides the validator network's emissions). (The hub reads
// pool.DepositRequest.)
type DepositRequest struct {
	// To is the funder's key id, or its account funder:<key id>.
	To     string `json:"to"`
	Amount int64  `json:"amount"`
	Asset  string `json:"asset"`
	// IdempotencyKey makes retries safe: a deposit under a used key moves
	// nothing and returns the first one.
	IdempotencyKey string `json:"idempotency_key"`
}

// JoinPoolRequest is the body of POST /api/v1/pools/{id}/entries, a model
// joining a pool. (The hub reads pool.JoinRequest.)
type JoinPoolRequest struct {
	Name    string `json:"name,omitempty"`
	BaseURL string `json:"base_url"`
	Model   string `json:"model"`
	// Artifact enters model files instead of an endpoint (a task pool
	// created with submissions "artifacts"); a tree already entered is a
	// copy, ranked and paid nothing.
	Artifact *ArtifactSource `json:"artifact,omitempty"`
	APIKey   string          `json:"api_key,omitempty"`
}
