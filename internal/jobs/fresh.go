package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/riverqueue/river"

	"crucible/internal/eval"
	"crucible/internal/eval/runner"
	"crucible/internal/modelhost"
	"crucible/internal/store"
)

// EnqueueFresh schedules the evaluation of submissions on epoch n's fresh
// items of a competition: evaluate jobs with the epoch as their item set,
// unique per (competition, epoch, submission), so the periodic task may
// enqueue them on every run.
func (q *Queue) EnqueueFresh(ctx context.Context, competitionID string, n int64, submissionIDs []string) error {
	if len(submissionIDs) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(submissionIDs))
	for i, id := range submissionIDs {
		params[i] = river.InsertManyParams{Args: EvaluateArgs{CompetitionID: competitionID, SubmissionID: id, Epoch: &n}}
	}
	if _, err := q.client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("enqueue fresh evaluations of %s epoch %d: %w", competitionID, n, err)
	}
	return nil
}

// workEpoch evaluates a scored submission's model on an epoch's fresh
// items and stores the result once, unless the epoch ended meanwhile: its
// items are public then, and an evaluation finished after that proves
// nothing. The submission's own lifecycle is over (it is scored); an
// error is retried by River up to MaxAttempts.
func (w *evaluateWorker) workEpoch(ctx context.Context, args EvaluateArgs, n int64) error {
	db := w.cfg.DB
	done, err := db.FreshEvals(ctx, args.CompetitionID, n)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(done, func(e store.FreshEval) bool { return e.SubmissionID == args.SubmissionID }) {
		return nil
	}
	c, err := db.GetCompetition(ctx, args.CompetitionID)
	if err != nil {
		return river.JobCancel(err)
	}
	e, err := db.RoleplayEpoch(ctx, args.CompetitionID, n)
	if err != nil {
		return err
	}
	sub, err := db.GetSubmission(ctx, args.SubmissionID)
	if err != nil {
		return river.JobCancel(err)
	}
	secret, err := db.SubmissionSecret(ctx, sub.ID)
	if err != nil {
		return err
	}
	if sub.Artifact != nil {
		// An artifact's model is served here for the epoch as for its first evaluation.
		h, err := w.serve(ctx, c, sub)
		if err != nil {
			err = fmt.Errorf("serve %s for epoch %d of %s: %w", sub.ID, n, c.ID, err)
			if errors.As(err, new(modelhost.Refused)) {
				// Final, as for the first evaluation: a retry would fetch
				// the same wrong tree again (its source is the submitter's).
				return river.JobCancel(err)
			}
			return err
		}
		defer h.Release()
		sub.Model, sub.Artifact = h.Model, &h.Artifact
	}
	ev, err := w.cfg.Planner.Plan(ctx, c, sub, secret, e.Items)
	if err != nil {
		return river.JobCancel(err)
	}
	var results []eval.Result
	if err := runner.Run(ctx, ev, runner.Config{Concurrency: w.cfg.ItemConcurrency, Sink: func(r eval.Result) error {
		results = append(results, r)
		return nil
	}}); err != nil {
		return fmt.Errorf("evaluate %s on epoch %d of %s: %w", sub.ID, n, c.ID, err)
	}
	card, _, err := w.cfg.Planner.Score(c, results)
	if err != nil {
		return err
	}
	now := w.cfg.Clock.Now()
	if !now.Before(e.End) {
		return nil
	}
	slices.SortFunc(results, func(a, b eval.Result) int { return a.Index - b.Index })
	_, err = db.PutFreshEval(ctx, store.FreshEval{CompetitionID: c.ID, Epoch: n, SubmissionID: sub.ID,
		Score: card.Score, Results: results, EvaluatedAt: now})
	return err
}
