package apiv1

import (
	"time"

	"crucible/internal/eval/kinds"
	"crucible/internal/eval/preference"
)

// CreatePreferenceCompetitionRequest is the body of POST
// /api/v1/preference/competitions: a dataset of organic tasks or seed
// instructions (empty: the shipped seeds) and the preference settings.
type CreatePreferenceCompetitionRequest struct {
	Title       string               `json:"title" input:"max=200"`
	DatasetName string               `json:"dataset_name,omitempty" input:"max=200"`
	Dataset     string               `json:"dataset,omitempty" input:"text,max=32MiB"`
	Preference  kinds.PreferenceSpec `json:"preference"`
	// Reward is paid to the miners at the epoch's close, in base units of
	// Asset, escrowed from the creator's funder account at creation.
	Reward int64  `json:"reward,omitempty"`
	Asset  string `json:"asset,omitempty" input:"max=32"`
}

// PreferenceCopies is the answer to a miner's request for copies.
type PreferenceCopies struct {
	CompetitionID string            `json:"competition_id"`
	Miner         string            `json:"miner"`
	Tasks         []preference.View `json:"tasks"`
}

// PreferenceRatingRequest is a miner's own rating of its copy of a task:
// Order (shown response ids, best first) for rank tasks, or Values (per
// shown response: rank, or score 1–10) for either criteria.
type PreferenceRatingRequest struct {
	TaskID string   `json:"task_id" input:"max=128"`
	Order  []string `json:"order,omitempty" input:"max=64"`
	Values []int    `json:"values,omitempty" input:"max=64"`
}

// CreateContributorKeyRequest is the body of POST /api/v1/contributor-keys.
type CreateContributorKeyRequest struct {
	Label string `json:"label,omitempty" input:"max=200"`
}

// PreferenceEpoch is a scored epoch of a preference competition. (The hub
// writes labeling.EpochReport.)
type PreferenceEpoch struct {
	CompetitionID string    `json:"competition_id"`
	At            time.Time `json:"at"`
	// Closed counts the tasks whose deadline passed; Open the others.
	Closed int `json:"closed"`
	Open   int `json:"open"`
	// Preview is true when open tasks were scored too.
	Preview bool `json:"preview,omitempty"`
	// Rules is the scoring configuration's description.
	Rules string           `json:"rules"`
	Epoch preference.Epoch `json:"epoch"`
}

// PreferenceClose is the once-only result of a preference competition's epoch close:
// the escrowed reward shared among the miners in proportion to their
// preference scores (preference.MinerResult.Reward; untrusted miners get 0),
// what rounding or the absence of trusted miners leaves refunded to the
// funder. (The hub writes labeling.EpochClose.)
type PreferenceClose struct {
	CompetitionID string    `json:"competition_id"`
	ClosedAt      time.Time `json:"closed_at"`
	// ClosedBy is the key that closed it explicitly; empty for the tick.
	ClosedBy string        `json:"closed_by,omitempty"`
	Asset    string        `json:"asset,omitempty"`
	Amount   int64         `json:"amount"`
	Payouts  []MinerPayout `json:"payouts"`
	Refunded int64         `json:"refunded"`
}

// MinerPayout is one miner's line in a PreferenceClose.
type MinerPayout struct {
	Miner   string  `json:"miner"`
	Account string  `json:"account"`
	Trusted bool    `json:"trusted"`
	Kappa   float64 `json:"kappa"`
	Score   float64 `json:"score"`
	Reward  float64 `json:"reward"`
	Units   int64   `json:"units"`
}

// PreferenceRating is a miner's de-obfuscated rating of a task: Values[i]
// belongs to canonical response i. Contributor is the contributor key id
// that submitted it. (The hub's row is store.PreferenceRating.)
type PreferenceRating struct {
	CompetitionID string    `json:"competition_id"`
	TaskID        string    `json:"task_id"`
	Miner         string    `json:"miner"`
	Contributor   string    `json:"contributor"`
	Values        []int     `json:"values"`
	SubmittedAt   time.Time `json:"submitted_at"`
}

// ContributorKey is a key a miner hands to a person who labels for it, as
// the API shows it: never its secret nor its hash. (The hub's row is
// store.ContributorKey.)
type ContributorKey struct {
	ID        string     `json:"id"`
	Miner     string     `json:"miner"`
	Label     string     `json:"label,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// NewContributorKey is a freshly made contributor key with its secret,
// returned once. (The hub writes labeling.NewKey.)
type NewContributorKey struct {
	ContributorKey
	Secret string `json:"key"`
}
