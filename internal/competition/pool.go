package competition

import "time"

// PoolState is where a funded pool is in its life.
type PoolState string

// Pool states: open until its end time passes and it is settled, once.
const (
	PoolOpen    PoolState = "open"
	PoolSettled PoolState = "settled"
)

// Pool is a funded benchmark: an mcq competition with money escrowed by a
// funder, an allocation rule, a schedule, an evaluation budget and a
// public/private item split.
type Pool struct {
	CompetitionID string    `json:"competition_id"`
	Title         string    `json:"title"`
	Funder        string    `json:"funder"`
	Asset         string    `json:"asset"`
	Amount        int64     `json:"amount"`
	Rule          string    `json:"allocation"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	// BudgetPerHour caps evaluated items (inferences) per hour across the pool.
	BudgetPerHour int           `json:"budget_per_hour"`
	Refresh       time.Duration `json:"refresh"`
	// PrivateFraction of the items (chosen by Seed) ranks the final payout;
	// the public leaderboard uses the rest.
	PrivateFraction float64   `json:"private_fraction"`
	Seed            uint64    `json:"seed"`
	State           PoolState `json:"state"`
	// FinalTickAt is when the final evaluation tick ran: the first tick at or
	// after End, which spends the budget accrued up to End. Settlement
	// without force waits for it.
	FinalTickAt *time.Time  `json:"final_tick_at,omitempty"`
	Settlement  *Settlement `json:"settlement,omitempty"`
}

// Settlement is the once-only result of a pool's end.
type Settlement struct {
	SettledAt time.Time `json:"settled_at"`
	Rule      string    `json:"allocation"`
	Amount    int64     `json:"amount"`
	Payouts   []Payout  `json:"payouts"`
	// Refunded is what the rule left unassigned, returned to the funder.
	Refunded int64 `json:"refunded"`
	// ForcedBy is the key (the funder's or an operator's) that settled the
	// pool before its final evaluation tick; empty for a regular settlement.
	ForcedBy string `json:"forced_by,omitempty"`
}

// Payout is one entrant's line in a settlement.
type Payout struct {
	SubmissionID string  `json:"submission_id"`
	Name         string  `json:"name"`
	Account      string  `json:"account"`
	Score        float64 `json:"score"`
	Items        int     `json:"private_items"`
	Units        int64   `json:"units"`
	// CopyOf is the earlier entrant this one copies (see Row.CopyOf); a
	// copy is paid 0 and its share goes to the others by the rule.
	CopyOf string `json:"copy_of,omitempty"`
}

// Snapshot is a public leaderboard as published at a moment.
type Snapshot struct {
	TakenAt time.Time `json:"taken_at"`
	Rows    []Row     `json:"rows"`
}
