package apiv1

import (
	"encoding/json"
	"time"

	"crucible/internal/eval"
)

// RoleplayEpoch is what the public may see of one epoch's fresh items.
// (The hub writes seal.EpochView.)
type RoleplayEpoch struct {
	Epoch int64     `json:"epoch"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// SeedSHA256 is the commitment, public from the start.
	SeedSHA256 string `json:"seed_sha256"`
	Revealed   bool   `json:"revealed"`
	// The rest is set once the epoch has ended.
	Seed        *int64            `json:"seed,omitempty"`
	ItemsDigest string            `json:"items_digest,omitempty"`
	Items       []json.RawMessage `json:"items,omitempty"`
	Evaluations []FreshScore      `json:"evaluations,omitempty"`
}

// FreshScore is one model's evaluation on an ended epoch's items.
type FreshScore struct {
	SubmissionID string        `json:"submission_id"`
	Name         string        `json:"name"`
	Score        float64       `json:"score"`
	Results      []eval.Result `json:"results,omitempty"`
}

// Contamination is a model's score on the public practice items beside its
// score on the latest ended epoch's fresh items. A model tuned to the
// public items scores much higher on them: a gap above the competition's
// threshold is flagged. (The hub writes seal.Contamination.)
type Contamination struct {
	SubmissionID  string  `json:"submission_id"`
	Name          string  `json:"name"`
	PracticeScore float64 `json:"practice_score"`
	// FreshScore and Epoch are absent until an epoch that evaluated the
	// model has ended.
	FreshScore       *float64 `json:"fresh_score,omitempty"`
	Epoch            *int64   `json:"epoch,omitempty"`
	ContaminationGap *float64 `json:"contamination_gap,omitempty"`
	Threshold        float64  `json:"threshold"`
	Flagged          bool     `json:"flagged"`
}
