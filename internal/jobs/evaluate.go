package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/inference"
)

// Planner builds the evaluator of one submission from its competition, the
// competition's stored items and the submission's model secret. An error
// from Plan is deterministic (bad configuration, unknown kind): the
// submission fails with it and is not retried.
type Planner interface {
	Plan(ctx context.Context, c competition.Competition, s competition.Submission, secret string, items []json.RawMessage) (eval.Evaluator, error)
	// SubmitCheck runs once before the first evaluation; its error is final.
	SubmitCheck(ctx context.Context, c competition.Competition, s competition.Submission, secret string) error
	// Score turns a complete run's results into the submission's card.
	Score(c competition.Competition, results []eval.Result) (competition.Card, []float64, error)
}

// EvaluateArgs is the job that evaluates one submission. It is unique per
// submission: enqueuing it twice runs it once. Retry marks the
// low-priority job that takes over after an infrastructure failure.
type EvaluateArgs struct {
	SubmissionID string `json:"submission_id"`
	Retry        bool   `json:"retry,omitempty"`
}

// retryPriority is River's lowest priority: such jobs run only when no
// first-time evaluation is waiting.
const retryPriority = 4

// Kind names the job kind in the queue.
func (EvaluateArgs) Kind() string { return "evaluate_submission" }

// InsertOpts makes the job unique by submission.
func (EvaluateArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type evaluateWorker struct {
	river.WorkerDefaults[EvaluateArgs]
	cfg Config
}

// Work evaluates the items a submission still lacks for at most one slice.
// Results are written one by one as they finish, idempotently, so a crash
// loses at most the items in flight and a rerun never duplicates a row.
func (w *evaluateWorker) Work(ctx context.Context, job *river.Job[EvaluateArgs]) error {
	db, id := w.cfg.DB, job.Args.SubmissionID
	sub, err := db.GetSubmission(ctx, id)
	if err != nil {
		return river.JobCancel(err)
	}
	if sub.State.Final() {
		return nil
	}
	comp, err := db.GetCompetition(ctx, sub.CompetitionID)
	if err != nil {
		return err
	}
	items, err := db.CompetitionItems(ctx, comp.ID)
	if err != nil {
		return err
	}
	secret, err := db.SubmissionSecret(ctx, id)
	if err != nil {
		return err
	}
	if sub.State == competition.StateQueued && sub.ItemsDone == 0 && !job.Args.Retry {
		if err := w.cfg.Planner.SubmitCheck(ctx, comp, sub, secret); err != nil {
			return w.fail(ctx, sub, competition.StateFailed, err)
		}
	}
	ev, err := w.cfg.Planner.Plan(ctx, comp, sub, secret, items)
	if err != nil {
		return w.fail(ctx, sub, competition.StateFailed, err)
	}
	if _, err := db.SetSubmissionState(ctx, id, competition.StateRunning, "", nil, w.cfg.Clock.Now()); err != nil {
		return err
	}
	done, err := db.DoneItems(ctx, id)
	if err != nil {
		return err
	}
	runErr := eval.Run(ctx, ev, eval.RunConfig{
		Concurrency: w.cfg.ItemConcurrency,
		Skip:        done,
		Deadline:    time.Now().Add(w.cfg.Slice),
		Sink: func(r eval.Result) error {
			if err := db.InsertResult(ctx, id, r); err != nil {
				return err
			}
			w.cfg.Metrics.itemEvaluated(string(comp.Kind), r.Correct)
			return nil
		},
	})
	switch {
	case errors.Is(runErr, eval.ErrSliceExpired):
		// Progress is saved; continue in a fresh run so no run outlives RescueAfter.
		return river.JobSnooze(0)
	case runErr != nil && inference.IsPermanent(runErr):
		return w.fail(ctx, sub, competition.StateFailed, runErr)
	case runErr != nil && !job.Args.Retry:
		// An infrastructure failure (judge, model server, network): hand the
		// submission to the low-priority retry queue, which runs only when no
		// fresh evaluation waits, at most MaxAttempts times.
		reason := fmt.Sprintf("infrastructure failure, queued for a low-priority retry: %v", runErr)
		if _, err := db.SetSubmissionState(ctx, id, competition.StateQueued, reason, nil, w.cfg.Clock.Now()); err != nil {
			return err
		}
		client := river.ClientFromContext[*sql.Tx](ctx)
		_, err := client.Insert(ctx, EvaluateArgs{SubmissionID: id, Retry: true},
			&river.InsertOpts{Priority: retryPriority, MaxAttempts: w.cfg.MaxAttempts})
		return err
	case runErr != nil && job.Attempt >= job.MaxAttempts:
		_ = w.fail(ctx, sub, competition.StateInfraFailed, runErr)
		return runErr
	case runErr != nil:
		reason := fmt.Sprintf("retry %d of %d failed, retrying: %v", job.Attempt, job.MaxAttempts, runErr)
		if _, err := db.SetSubmissionState(ctx, id, competition.StateQueued, reason, nil, w.cfg.Clock.Now()); err != nil {
			return err
		}
		return runErr
	}
	results, err := db.Results(ctx, id, 0, sub.ItemsTotal+1)
	if err != nil {
		return err
	}
	if len(results) != sub.ItemsTotal {
		return fmt.Errorf("submission %s: %d of %d items stored after a complete run", id, len(results), sub.ItemsTotal)
	}
	card, _, err := w.cfg.Planner.Score(comp, results)
	if err != nil {
		return w.fail(ctx, sub, competition.StateFailed, err)
	}
	_, err = db.SetSubmissionState(ctx, id, competition.StateScored, "", &card, w.cfg.Clock.Now())
	return err
}

// fail records a final failure with its reason. Deterministic failures
// cancel the job: running it again would give the same answer.
func (w *evaluateWorker) fail(ctx context.Context, sub competition.Submission, state competition.State, cause error) error {
	if _, err := w.cfg.DB.SetSubmissionState(ctx, sub.ID, state, cause.Error(), nil, w.cfg.Clock.Now()); err != nil {
		return err
	}
	w.cfg.Logger.Warn("submission failed", "submission", sub.ID, "state", state, "reason", cause)
	if state == competition.StateFailed {
		return river.JobCancel(cause)
	}
	return cause
}
