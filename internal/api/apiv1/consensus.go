package apiv1

import (
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval/preference"
)

// PatchSubmission is one code-fix submission's patch, as validators with
// stake read it to judge it themselves.
type PatchSubmission struct {
	SubmissionID string                `json:"submission_id"`
	Patch        competition.PatchSpec `json:"patch"`
}

// PreferenceLabels is what a validator scores a preference competition
// from: its closed tasks in canonical form (with their ground truth) and
// every rating of them. Only validators with stake may read it: closed
// tasks' ground truth would be training data for surface rankers.
type PreferenceLabels struct {
	CompetitionID string              `json:"competition_id"`
	Tasks         []preference.Task   `json:"tasks"`
	Ratings       []preference.Rating `json:"ratings"`
}

// SetStakeRequest is the body of POST /api/v1/consensus/validators.
type SetStakeRequest struct {
	Validator string `json:"validator" input:"max=128"`
	// Stake is in integer base units; 0 takes the validator's vote away.
	Stake int64 `json:"stake" input:"min=0"`
}

// PostWeightsRequest is the body of POST /api/v1/consensus/epochs/{n}/weights.
type PostWeightsRequest struct {
	// Competition is the competition the validator evaluated (informational).
	Competition string `json:"competition_id,omitempty" input:"max=64"`
	// Weights maps miner UIDs to weights (≥ 0, not all zero; normalised by the hub).
	Weights map[int64]float64 `json:"weights" input:"max=65536"`
}

// EpochInfo describes one epoch on the hub's clock. (The hub writes
// consensus.EpochInfo.)
type EpochInfo struct {
	Epoch int64     `json:"epoch"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// LengthSeconds is the epoch length.
	LengthSeconds int64     `json:"length_seconds"`
	Now           time.Time `json:"now"`
}

// ConsensusRecord is one closed consensus epoch. (The hub writes
// consensus.Record.)
type ConsensusRecord struct {
	Epoch    int64     `json:"epoch"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ClosedAt time.Time `json:"closed_at"`
	// Variant (yuma1 or yuma3; empty in records from before variants, which
	// ran Yuma 1), Kappa, BondsAlpha, BondsPenalty, the liquid-alpha bounds
	// (zero when off) and MinerShare are the Yuma parameters of the epoch.
	Variant      string  `json:"variant,omitempty"`
	Kappa        float64 `json:"kappa"`
	BondsAlpha   float64 `json:"bonds_alpha"`
	BondsPenalty float64 `json:"bonds_penalty"`
	AlphaLow     float64 `json:"alpha_low,omitempty"`
	AlphaHigh    float64 `json:"alpha_high,omitempty"`
	MinerShare   float64 `json:"miner_share"`
	// Emission is what the epoch emitted, in base units of Asset.
	Emission int64  `json:"emission"`
	Asset    string `json:"asset"`
	// Transfer is the idempotency key of the emission's ledger transfer
	// ("" when nothing was emitted).
	Transfer   string            `json:"transfer,omitempty"`
	Miners     []MinerResult     `json:"miners"`
	Validators []ValidatorResult `json:"validators"`
}

// MinerResult is one UID's outcome in an epoch.
type MinerResult struct {
	UID int64  `json:"uid"`
	Key string `json:"key_id"`
	// Consensus is the stake-weighted median of the normalised weights (κ).
	Consensus float64 `json:"consensus"`
	// Incentive is the miner's share of the clipped, stake-weighted weight.
	Incentive float64 `json:"incentive"`
	// Trust is the fraction of the miner's weight that survived clipping.
	Trust    float64 `json:"trust"`
	Emission int64   `json:"emission"`
}

// ValidatorResult is one validator's part in an epoch.
type ValidatorResult struct {
	Key   string `json:"key_id"`
	Stake int64  `json:"stake"`
	// Vector is the id of the weight vector used (the latest it posted
	// inside the epoch) and Weights its content.
	Vector   string            `json:"vector_id"`
	PostedAt time.Time         `json:"posted_at"`
	Weights  map[int64]float64 `json:"weights"`
	// Trust is the validator trust Σ_j min(W_ij, C_j).
	Trust     float64 `json:"trust"`
	Dividends float64 `json:"dividends"`
	Emission  int64   `json:"emission"`
	// Bonds are the validator's bonds per UID after this epoch (the next
	// epoch's previous bonds).
	Bonds map[int64]float64 `json:"bonds"`
}

// MinerUID is a miner's registration: one UID per key. (The hub's row is
// store.MinerUID.)
type MinerUID struct {
	UID          int64     `json:"uid"`
	Key          string    `json:"key_id"`
	RegisteredAt time.Time `json:"registered_at"`
	// PruningScore is the miner's incentive in the last closed epoch; the
	// lowest non-immune score is replaced when registration is full.
	PruningScore float64 `json:"pruning_score"`
}

// Registration is the outcome of a miner's registration.
type Registration struct {
	MinerUID
	// Created is false when the key was registered already.
	Created bool `json:"created"`
	// Replaced is the miner that lost its UID to this registration.
	Replaced *MinerUID `json:"replaced,omitempty"`
}

// ValidatorStake is the stake an operator set for a validator key. (The
// hub's row is store.ValidatorStake.)
type ValidatorStake struct {
	Key       string    `json:"key_id"`
	Stake     int64     `json:"stake"`
	SetBy     string    `json:"set_by"`
	UpdatedAt time.Time `json:"updated_at"`
}

// WeightVector is one signed weight vector a validator posted in an epoch:
// weights on miner UIDs, as sent (not normalised). (The hub's row is
// store.WeightVector.)
type WeightVector struct {
	ID          string            `json:"id"`
	Epoch       int64             `json:"epoch"`
	Validator   string            `json:"validator"`
	Competition string            `json:"competition_id,omitempty"`
	Weights     map[int64]float64 `json:"weights"`
	PostedAt    time.Time         `json:"posted_at"`
}
