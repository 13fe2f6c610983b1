package jobs

import (
	"context"
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
}

// EvaluateArgs is the job that evaluates one submission. It is unique per
// submission: enqueuing it twice runs it once.
type EvaluateArgs struct {
	SubmissionID string `json:"submission_id"`
}

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
	case runErr != nil && job.Attempt >= job.MaxAttempts:
		_ = w.fail(ctx, sub, competition.StateInfraFailed, runErr)
		return runErr
	case runErr != nil:
		reason := fmt.Sprintf("attempt %d of %d failed, retrying: %v", job.Attempt, job.MaxAttempts, runErr)
		if _, err := db.SetSubmissionState(ctx, id, competition.StateQueued, reason, nil, w.cfg.Clock.Now()); err != nil {
			return err
		}
		return runErr
	}
	scores, correct, err := db.ItemScores(ctx, id)
	if err != nil {
		return err
	}
	if len(scores) != sub.ItemsTotal {
		return fmt.Errorf("submission %s: %d of %d items stored after a complete run", id, len(scores), sub.ItemsTotal)
	}
	card := competition.NewCard(scores, correct)
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
