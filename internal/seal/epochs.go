package seal

import (
	"context"
	"encoding/json"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/kinds"
	"crucible/internal/store"
)

// Fresh roleplay epochs: while an epoch runs, its items (prompts,
// reference replies), its seed and every result or score on its items are
// hidden: a competitor who saw them could tune a model to them before the
// epoch compares. Only the seed's commitment is public. Once the epoch has
// ended — the clock decides, so that the seed is public before anyone could
// still be evaluated on it — everything is shown, and the seed can be
// checked against the commitment and the items planned again from it.

// Revealed reports whether an epoch's items may be shown at now.
func Revealed(e store.RoleplayEpoch, now time.Time) bool { return !now.Before(e.End) }

// EpochView is what the public may see of one epoch's fresh items.
type EpochView struct {
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

func view(e store.RoleplayEpoch, now time.Time) EpochView {
	v := EpochView{Epoch: e.Epoch, Start: e.Start, End: e.End, SeedSHA256: e.SeedSHA256, Revealed: Revealed(e, now)}
	if v.Revealed {
		seed := e.Seed
		v.Seed, v.ItemsDigest = &seed, e.ItemsDigest
	}
	return v
}

// maxEpochs bounds a listing of epochs.
const maxEpochs = 100

// RoleplayEpochs lists a competition's latest epochs (commitments, and the
// seeds and digests of ended ones) as the public may see them at now.
func (s Public) RoleplayEpochs(ctx context.Context, competitionID string, now time.Time) ([]EpochView, error) {
	list, err := s.DB.RoleplayEpochs(ctx, competitionID, maxEpochs)
	if err != nil {
		return nil, err
	}
	out := make([]EpochView, len(list))
	for i, e := range list {
		out[i] = view(e, now)
	}
	return out, nil
}

// RoleplayEpoch returns one epoch as the public may see it at now: with its
// items and every model's results once it has ended.
func (s Public) RoleplayEpoch(ctx context.Context, competitionID string, n int64, now time.Time) (EpochView, error) {
	e, err := s.DB.RoleplayEpoch(ctx, competitionID, n)
	if err != nil {
		return EpochView{}, err
	}
	v := view(e, now)
	if !v.Revealed {
		return v, nil
	}
	v.Items = e.Items
	scores, err := s.freshScores(ctx, competitionID, n)
	v.Evaluations = scores
	return v, err
}

func (s Public) freshScores(ctx context.Context, competitionID string, n int64) ([]FreshScore, error) {
	evals, err := s.DB.FreshEvals(ctx, competitionID, n)
	if err != nil {
		return nil, err
	}
	out := make([]FreshScore, len(evals))
	for i, ev := range evals {
		sub, err := s.DB.GetSubmission(ctx, ev.SubmissionID)
		if err != nil {
			return nil, err
		}
		out[i] = FreshScore{SubmissionID: ev.SubmissionID, Name: sub.Name, Score: ev.Score, Results: ev.Results}
	}
	return out, nil
}

// Contamination is a model's score on the public practice items beside its
// score on the latest ended epoch's fresh items. A model tuned to the
// public items scores much higher on them: a gap above the competition's
// threshold is flagged.
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

// Contamination returns the contamination check of every scored submission
// of a fresh-items competition, as the public may see it at now: fresh
// scores come from ended epochs only.
func (s Public) Contamination(ctx context.Context, c competition.Competition, now time.Time) ([]Contamination, error) {
	cfg, err := kinds.RoleplayConfig(c)
	if err != nil {
		return nil, err
	}
	epochs, err := s.DB.RoleplayEpochs(ctx, c.ID, maxEpochs)
	if err != nil {
		return nil, err
	}
	type fresh struct {
		epoch int64
		score float64
	}
	latest := map[string]fresh{}
	for _, e := range epochs { // latest first
		if !Revealed(e, now) {
			continue
		}
		evals, err := s.DB.FreshEvals(ctx, c.ID, e.Epoch)
		if err != nil {
			return nil, err
		}
		for _, ev := range evals {
			if _, ok := latest[ev.SubmissionID]; !ok {
				latest[ev.SubmissionID] = fresh{e.Epoch, ev.Score}
			}
		}
	}
	subs, err := s.ListSubmissions(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	var out []Contamination
	for _, sub := range subs {
		if sub.Card == nil {
			continue
		}
		row := Contamination{SubmissionID: sub.ID, Name: sub.Name, PracticeScore: sub.Card.Score, Threshold: cfg.GapThreshold()}
		if f, ok := latest[sub.ID]; ok {
			gap := sub.Card.Score - f.score
			row.FreshScore, row.Epoch, row.ContaminationGap = &f.score, &f.epoch, &gap
			row.Flagged = gap > row.Threshold
		}
		out = append(out, row)
	}
	return out, nil
}
