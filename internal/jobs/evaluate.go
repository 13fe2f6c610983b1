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
	"crucible/internal/eval/runner"
	"crucible/internal/inference"
	"crucible/internal/modelhost"
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

// EvaluateArgs is the job that evaluates one submission: all the items it
// still lacks, or only those of Items (a pool tick's budgeted range). It
// is unique by its arguments: enqueuing it twice runs it once. Retry marks
// the low-priority job that takes over after an infrastructure failure.
type EvaluateArgs struct {
	CompetitionID string `json:"competition_id,omitempty"`
	SubmissionID  string `json:"submission_id"`
	// Items are the item indices to evaluate; empty means every item.
	Items []int `json:"items,omitempty"`
	// Epoch, when set, evaluates a scored submission on that epoch's fresh
	// roleplay items instead (see workEpoch).
	Epoch *int64 `json:"epoch,omitempty"`
	Retry bool   `json:"retry,omitempty"`
}

// RetryQueue is the queue of infrastructure retries: one worker per
// process and River's lowest priority, so retries never hold back a
// first-time evaluation.
const RetryQueue = "retries"

// retryPriority is River's lowest priority.
const retryPriority = 4

// Kind names the job kind in the queue.
func (EvaluateArgs) Kind() string { return "evaluate_submission" }

// InsertOpts makes the job unique by its arguments.
func (EvaluateArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type evaluateWorker struct {
	river.WorkerDefaults[EvaluateArgs]
	cfg Config
}

// Work evaluates the items a job's submission still lacks for at most one
// slice, then reports the outcome to the submission's lifecycle
// (competition.Next). Results are written as they finish (batched by
// resultWriter), idempotently, so a crash loses at most the items in flight
// or not yet committed, and a rerun never duplicates a row.
func (w *evaluateWorker) Work(ctx context.Context, job *river.Job[EvaluateArgs]) error {
	if job.Args.Epoch != nil {
		return w.workEpoch(ctx, job.Args, *job.Args.Epoch)
	}
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
	var served *competition.Served
	if sub.Artifact != nil {
		h, err := w.serve(ctx, comp, sub)
		if errors.As(err, new(modelhost.Refused)) {
			return w.reject(ctx, comp, sub, err)
		}
		if err != nil {
			if _, err := w.advance(ctx, comp, sub, competition.EventStart, nil, nil); err != nil {
				return err
			}
			return w.infra(ctx, job, comp, sub, err)
		}
		defer h.Release()
		// The facts the worker measured reach the kind (roleplay's size component) from the first run.
		sub.Model, sub.Artifact, served = h.Model, &h.Artifact, h.Served
	}
	if sub.State == competition.StateQueued && sub.ItemsDone == 0 && !job.Args.Retry {
		if err := w.cfg.Planner.SubmitCheck(ctx, comp, sub, secret); err != nil {
			w.cfg.Metrics.modelError(string(comp.Kind), "check")
			return w.reject(ctx, comp, sub, err)
		}
	}
	ev, err := w.cfg.Planner.Plan(ctx, comp, sub, secret, items)
	if err != nil {
		return w.reject(ctx, comp, sub, err)
	}
	if _, err := w.advance(ctx, comp, sub, competition.EventStart, nil, nil); err != nil {
		return err
	}
	skip, err := db.DoneItems(ctx, id)
	if err != nil {
		return err
	}
	if len(job.Args.Items) > 0 {
		wanted := make(map[int]bool, len(job.Args.Items))
		for _, i := range job.Args.Items {
			wanted[i] = true
		}
		for i := range sub.ItemsTotal {
			if !wanted[i] {
				skip[i] = true
			}
		}
	}
	results := newResultWriter(ctx, db, id, 2*w.cfg.ItemConcurrency, func(r eval.Result) {
		w.cfg.Metrics.itemEvaluated(string(comp.Kind), r.Correct)
	})
	runErr := runner.Run(ctx, ev, runner.Config{
		Concurrency: w.cfg.ItemConcurrency,
		Skip:        skip,
		Deadline:    time.Now().Add(w.cfg.Slice),
		Sink:        results.Write,
	})
	// Every result is stored (or its write failed) before the outcome is
	// reported: finish counts the stored results.
	if err := results.Close(); err != nil && (runErr == nil || errors.Is(runErr, runner.ErrSliceExpired)) {
		runErr = fmt.Errorf("store results: %w", err)
	}
	switch {
	case errors.Is(runErr, runner.ErrSliceExpired):
		// Progress is saved; continue in a fresh run so no run outlives RescueAfter.
		if _, err := w.advance(ctx, comp, sub, competition.EventSliceExpired, nil, nil); err != nil {
			return err
		}
		return river.JobSnooze(0)
	case runErr != nil && inference.IsPermanent(runErr):
		w.cfg.Metrics.modelError(string(comp.Kind), "permanent")
		return w.reject(ctx, comp, sub, runErr)
	case runErr != nil:
		w.cfg.Metrics.modelError(string(comp.Kind), "infrastructure")
		return w.infra(ctx, job, comp, sub, runErr)
	}
	return w.finish(ctx, comp, sub, served)
}

// infra reports an infrastructure failure (judge, model server, launcher,
// network) of a running submission: the first hands the job to the
// low-priority retries queue, the last retry fails the submission.
func (w *evaluateWorker) infra(ctx context.Context, job *river.Job[EvaluateArgs], comp competition.Competition, sub competition.Submission, runErr error) error {
	switch {
	case !job.Args.Retry:
		// An infrastructure failure (judge, model server, network): hand the
		// job to the low-priority retries queue, which runs only when no
		// fresh evaluation waits, at most MaxAttempts times.
		if _, err := w.advance(ctx, comp, sub, competition.EventInfraError, runErr, nil); err != nil {
			return err
		}
		retry := job.Args
		retry.Retry = true
		client := river.ClientFromContext[*sql.Tx](ctx)
		_, err := client.Insert(ctx, retry, &river.InsertOpts{Queue: RetryQueue, Priority: retryPriority, MaxAttempts: w.cfg.MaxAttempts})
		return err
	case job.Attempt >= job.MaxAttempts:
		if _, err := w.advance(ctx, comp, sub, competition.EventInfraExhausted, runErr, nil); err != nil {
			return errors.Join(runErr, err)
		}
		w.cfg.Logger.Warn("submission failed", "submission", sub.ID, "state", competition.StateInfraFailed, "reason", runErr)
		return runErr
	default:
		cause := fmt.Errorf("retry %d of %d failed: %w", job.Attempt, job.MaxAttempts, runErr)
		if _, err := w.advance(ctx, comp, sub, competition.EventInfraError, cause, nil); err != nil {
			return errors.Join(runErr, err)
		}
		return runErr
	}
}

// finish scores the submission once every item has a result; a job that
// evaluated only a range (a pool tick's) leaves it running otherwise.
// served, for an artifact submission, is where its model ran.
func (w *evaluateWorker) finish(ctx context.Context, comp competition.Competition, sub competition.Submission, served *competition.Served) error {
	results, err := w.cfg.DB.Results(ctx, sub.ID, 0, sub.ItemsTotal+1)
	if err != nil {
		return err
	}
	if len(results) < sub.ItemsTotal {
		_, err := w.advance(ctx, comp, sub, competition.EventProgress, nil, nil)
		return err
	}
	if len(results) != sub.ItemsTotal {
		return fmt.Errorf("submission %s: %d of %d items stored after a complete run", sub.ID, len(results), sub.ItemsTotal)
	}
	card, _, err := w.cfg.Planner.Score(comp, results)
	if err != nil {
		return w.reject(ctx, comp, sub, err)
	}
	card.Served = served
	_, err = w.advance(ctx, comp, sub, competition.EventComplete, nil, &card)
	return err
}

// advance reports ev (with its cause) to the submission's lifecycle. A
// submission it makes final has its evaluation latency, from commitment to
// now, recorded under its competition's kind and final state.
func (w *evaluateWorker) advance(ctx context.Context, comp competition.Competition, sub competition.Submission, ev competition.Event, cause error, card *competition.Card) (competition.State, error) {
	reason := ""
	if cause != nil {
		reason = cause.Error()
	}
	now := w.cfg.Clock.Now()
	state, err := w.cfg.DB.AdvanceSubmission(ctx, sub.ID, ev, reason, card, now)
	if err == nil && state.Final() {
		w.cfg.Metrics.evaluationEnded(string(comp.Kind), string(state), now.Sub(sub.CommittedAt))
	}
	return state, err
}

// reject fails the submission for good and cancels the job: running it
// again would give the same answer.
func (w *evaluateWorker) reject(ctx context.Context, comp competition.Competition, sub competition.Submission, cause error) error {
	if _, err := w.advance(ctx, comp, sub, competition.EventReject, cause, nil); err != nil {
		return errors.Join(cause, err)
	}
	w.cfg.Logger.Warn("submission failed", "submission", sub.ID, "state", competition.StateFailed, "reason", cause)
	return river.JobCancel(cause)
}
