package jobs

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"
)

// FreshEvaluator evaluates one model on one epoch's fresh roleplay items
// and stores the result once (epoch.Service implements it).
type FreshEvaluator interface {
	EvaluateOnEpoch(ctx context.Context, competitionID string, epoch int64, submissionID string) error
}

// FreshArgs is the job that evaluates one submission's model on one
// epoch's fresh items: unique per (competition, epoch, submission), so the
// periodic task may enqueue it on every run.
type FreshArgs struct {
	CompetitionID string `json:"competition_id"`
	Epoch         int64  `json:"epoch"`
	SubmissionID  string `json:"submission_id"`
}

// Kind names the job kind in the queue.
func (FreshArgs) Kind() string { return "evaluate_fresh" }

// InsertOpts makes the job unique by its arguments.
func (FreshArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type freshWorker struct {
	river.WorkerDefaults[FreshArgs]
	fresh FreshEvaluator
}

// Work evaluates; an error is retried by River up to MaxAttempts (an
// evaluation finished after the epoch ended is dropped by the evaluator).
func (w *freshWorker) Work(ctx context.Context, job *river.Job[FreshArgs]) error {
	return w.fresh.EvaluateOnEpoch(ctx, job.Args.CompetitionID, job.Args.Epoch, job.Args.SubmissionID)
}

// EnqueueFresh schedules the evaluation of submissions on epoch n's fresh
// items of a competition.
func (q *Queue) EnqueueFresh(ctx context.Context, competitionID string, n int64, submissionIDs []string) error {
	if len(submissionIDs) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(submissionIDs))
	for i, id := range submissionIDs {
		params[i] = river.InsertManyParams{Args: FreshArgs{CompetitionID: competitionID, Epoch: n, SubmissionID: id}}
	}
	if _, err := q.client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("enqueue fresh evaluations of %s epoch %d: %w", competitionID, n, err)
	}
	return nil
}
