package jobs

import (
	"context"
	"crucible/internal/eval/mcq"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"

	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/kinds"
	"crucible/internal/inference"
	"crucible/internal/modelhost"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// fakeEval answers every item with outcome: nil scores it correct.
type fakeEval struct {
	n       int
	outcome error
	// failFrom makes items from this index on fail with outcome (0: all).
	failFrom int
}

func (f fakeEval) Len() int { return f.n }

func (f fakeEval) Evaluate(_ context.Context, i int) (eval.Result, error) {
	if f.outcome != nil && i >= f.failFrom {
		return eval.Result{}, f.outcome
	}
	return eval.Result{Index: i, Response: "A", Prediction: "A", Correct: true, Score: 1}, nil
}

type fakePlanner struct {
	ev       fakeEval
	checkErr error
	checks   *int
}

func (p fakePlanner) Plan(context.Context, competition.Competition, competition.Submission, string, []json.RawMessage) (eval.Evaluator, error) {
	return p.ev, nil
}

func (p fakePlanner) SubmitCheck(context.Context, competition.Competition, competition.Submission, string) error {
	*p.checks++
	return p.checkErr
}

// Score is the mcq kind's scoring: the worker's tests are about the
// lifecycle, not about how a kind scores.
func (p fakePlanner) Score(c competition.Competition, results []eval.Result) (competition.Card, []float64, error) {
	return kinds.MCQ{}.Score(c, results)
}

const items = 4

// workerFixture is a PostgreSQL database with one mcq competition of
// four items and one queued submission, and the evaluate worker under
// rivertest. River runs each test job inside a transaction that the test
// rolls back; the worker writes results through the store, so the
// submission is read back from the store.
type workerFixture struct {
	db          *store.DB
	sub         competition.Submission
	checks      int
	newWorker   func(p fakePlanner, slice time.Duration) *rivertest.Worker[EvaluateArgs, *sql.Tx]
	jobTx       *sql.Tx
	maxAttempts int
	// models is the worker's model host (nil: it serves no artifacts).
	models *modelhost.Host
}

func newWorkerFixture(t *testing.T) *workerFixture {
	t.Helper()
	url := storetest.Postgres(t)
	if url == "" {
		t.Skip("the rivertest worker tests need PostgreSQL: River's test transaction and the store's writes are concurrent, which one SQLite connection cannot serve")
	}
	ctx := context.Background()
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c := competition.Competition{ID: store.NewID("c"), Kind: mcq.Name, Title: "t", Config: json.RawMessage(`{}`),
		DatasetName: "d", DatasetDigest: "x", Items: items, CreatedBy: "k", CreatedAt: now}
	raw := make([]json.RawMessage, items)
	for i := range raw {
		raw[i] = json.RawMessage(`{}`)
	}
	if err := db.CreateCompetition(ctx, c, raw); err != nil {
		t.Fatal(err)
	}
	sub := competition.Submission{ID: store.NewID("s"), CompetitionID: c.ID, Name: "m", Submitter: "k",
		Model: competition.ModelSpec{BaseURL: "http://127.0.0.1:1/v1", Model: "m"}, Digest: "d", CommittedAt: now,
		State: competition.StateQueued, ItemsTotal: items, UpdatedAt: now}
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, sub, "") }); err != nil {
		t.Fatal(err)
	}
	f := &workerFixture{db: db, sub: sub, maxAttempts: 3}
	f.newWorker = func(p fakePlanner, slice time.Duration) *rivertest.Worker[EvaluateArgs, *sql.Tx] {
		p.checks = &f.checks
		w := &evaluateWorker{cfg: Config{DB: db, Clock: clock.Real{}, Planner: p, ItemConcurrency: 2, Slice: slice,
			MaxAttempts: f.maxAttempts, Models: f.models, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
		return rivertest.NewWorker(t, riverdatabasesql.New(db.SQL()), &river.Config{}, river.Worker[EvaluateArgs](w))
	}
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	f.jobTx = tx
	return f
}

func (f *workerFixture) work(t *testing.T, p fakePlanner, slice time.Duration, args EvaluateArgs, opts *river.InsertOpts) *rivertest.WorkResult {
	t.Helper()
	res, err := f.newWorker(p, slice).Work(context.Background(), t, f.jobTx, args, opts)
	if err != nil && res == nil {
		t.Fatal(err)
	}
	return res
}

func (f *workerFixture) submission(t *testing.T) competition.Submission {
	t.Helper()
	s, err := f.db.GetSubmission(context.Background(), f.sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// retryJobs returns the jobs inserted on the retries queue.
func (f *workerFixture) retryJobs(t *testing.T) []EvaluateArgs {
	t.Helper()
	rows, err := f.db.SQL().Query(`SELECT args::text FROM river_job WHERE queue = $1 AND priority = $2`, RetryQueue, retryPriority)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []EvaluateArgs
	for rows.Next() {
		var raw string
		var a EvaluateArgs
		if err := rows.Scan(&raw); err != nil || json.Unmarshal([]byte(raw), &a) != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

const slice = time.Minute

var errServerDown = errors.New("connection refused")

func TestEvaluateWorkerSuccessScores(t *testing.T) {
	f := newWorkerFixture(t)
	res := f.work(t, fakePlanner{ev: fakeEval{n: items}}, slice, EvaluateArgs{SubmissionID: f.sub.ID}, nil)
	if res.EventKind != river.EventKindJobCompleted {
		t.Fatalf("job %s, want completed", res.EventKind)
	}
	s := f.submission(t)
	if s.State != competition.StateScored || s.ItemsDone != items || s.Card == nil || s.Card.Score != 1 {
		t.Fatalf("submission %s with %d items, card %+v; want scored 1.0 on %d", s.State, s.ItemsDone, s.Card, items)
	}
	if f.checks != 1 {
		t.Fatalf("submit check ran %d times, want once before the first evaluation", f.checks)
	}
}

func TestEvaluateWorkerRangeLeavesTheRestForLaterJobs(t *testing.T) {
	f := newWorkerFixture(t)
	p := fakePlanner{ev: fakeEval{n: items}}
	res := f.work(t, p, slice, EvaluateArgs{CompetitionID: f.sub.CompetitionID, SubmissionID: f.sub.ID, Items: []int{3, 1}}, nil)
	if s := f.submission(t); res.EventKind != river.EventKindJobCompleted || s.State != competition.StateRunning || s.ItemsDone != 2 {
		t.Fatalf("after a range of 2: job %s, submission %s with %d items; want completed, running, 2", res.EventKind, s.State, s.ItemsDone)
	}
	done, _ := f.db.DoneItems(context.Background(), f.sub.ID)
	if !done[1] || !done[3] || done[0] || done[2] {
		t.Fatalf("evaluated %v, want exactly the range's items 1 and 3", done)
	}
	f.work(t, p, slice, EvaluateArgs{CompetitionID: f.sub.CompetitionID, SubmissionID: f.sub.ID, Items: []int{0, 2}}, nil)
	if s := f.submission(t); s.State != competition.StateScored || f.checks != 1 {
		t.Fatalf("after the last range: %s, %d submit checks; want scored after one check", s.State, f.checks)
	}
}

func TestEvaluateWorkerSliceExpirySnoozes(t *testing.T) {
	f := newWorkerFixture(t)
	res := f.work(t, fakePlanner{ev: fakeEval{n: items}}, time.Nanosecond, EvaluateArgs{SubmissionID: f.sub.ID}, nil)
	if res.EventKind != river.EventKindJobSnoozed {
		t.Fatalf("job %s after its slice expired, want snoozed", res.EventKind)
	}
	if s := f.submission(t); s.State != competition.StateRunning || s.Reason != "" {
		t.Fatalf("submission %s (%q) after a slice, want running", s.State, s.Reason)
	}
}

func TestEvaluateWorkerPermanentFailureCancels(t *testing.T) {
	f := newWorkerFixture(t)
	unknown := &inference.StatusError{StatusCode: http.StatusNotFound, Message: "no such model"}
	res := f.work(t, fakePlanner{ev: fakeEval{n: items, outcome: unknown}}, slice, EvaluateArgs{SubmissionID: f.sub.ID}, nil)
	if res.EventKind != river.EventKindJobCancelled {
		t.Fatalf("job %s after a permanent error, want cancelled", res.EventKind)
	}
	if s := f.submission(t); s.State != competition.StateFailed || !strings.Contains(s.Reason, "no such model") {
		t.Fatalf("submission %s (%q), want failed with the model's error", s.State, s.Reason)
	}
	if r := f.retryJobs(t); len(r) != 0 {
		t.Fatalf("a permanent failure was queued for retry: %+v", r)
	}
}

func TestEvaluateWorkerFailedSubmitCheckCancels(t *testing.T) {
	f := newWorkerFixture(t)
	p := fakePlanner{ev: fakeEval{n: items}, checkErr: errors.New("submit check: the model server does not answer")}
	res := f.work(t, p, slice, EvaluateArgs{SubmissionID: f.sub.ID}, nil)
	if s := f.submission(t); res.EventKind != river.EventKindJobCancelled || s.State != competition.StateFailed || s.ItemsDone != 0 {
		t.Fatalf("job %s, submission %s with %d items; want cancelled, failed, nothing evaluated", res.EventKind, s.State, s.ItemsDone)
	}
}

func TestEvaluateWorkerInfrastructureFailureMovesToTheRetryQueue(t *testing.T) {
	f := newWorkerFixture(t)
	args := EvaluateArgs{CompetitionID: f.sub.CompetitionID, SubmissionID: f.sub.ID, Items: []int{0, 1, 2}}
	res := f.work(t, fakePlanner{ev: fakeEval{n: items, outcome: errServerDown, failFrom: 2}}, slice, args, nil)
	if res.EventKind != river.EventKindJobCompleted {
		t.Fatalf("job %s, want completed (its work handed to a retry job)", res.EventKind)
	}
	s := f.submission(t)
	if s.State != competition.StateQueued || !strings.Contains(s.Reason, "low-priority retry") || !strings.Contains(s.Reason, "connection refused") {
		t.Fatalf("submission %s (%q), want queued for a low-priority retry with the cause", s.State, s.Reason)
	}
	retries := f.retryJobs(t)
	want := args
	want.Retry = true
	if len(retries) != 1 || retries[0].SubmissionID != want.SubmissionID || !retries[0].Retry || len(retries[0].Items) != 3 {
		t.Fatalf("retry jobs %+v, want one copy of %+v on the %s queue", retries, want, RetryQueue)
	}
	var maxAttempts int
	if err := f.db.SQL().QueryRow(`SELECT max_attempts FROM river_job WHERE queue = $1`, RetryQueue).Scan(&maxAttempts); err != nil || maxAttempts != f.maxAttempts {
		t.Fatalf("retry job max attempts %d (%v), want %d", maxAttempts, err, f.maxAttempts)
	}
	// A retry job does not run the submit check again and, failing before
	// its last attempt, is retried by River with the submission queued.
	res = f.work(t, fakePlanner{ev: fakeEval{n: items, outcome: errServerDown}}, slice, retries[0],
		&river.InsertOpts{Queue: RetryQueue, Priority: retryPriority, MaxAttempts: f.maxAttempts})
	// River makes a job with a short backoff available again at once.
	if st := res.Job.State; res.EventKind != river.EventKindJobFailed || (st != rivertype.JobStateRetryable && st != rivertype.JobStateAvailable) {
		t.Fatalf("retry job %s (%s), want failed and to be run again", res.EventKind, st)
	}
	if s := f.submission(t); s.State != competition.StateQueued || !strings.Contains(s.Reason, "retry 1 of 3 failed") || f.checks != 1 {
		t.Fatalf("submission %s (%q) with %d submit checks; want queued, 'retry 1 of 3 failed', one check", s.State, s.Reason, f.checks)
	}
}

func TestEvaluateWorkerLastAttemptIsAnInfrastructureFailure(t *testing.T) {
	f := newWorkerFixture(t)
	tx := f.jobTx
	ctx := context.Background()
	// A retry job on its last attempt: River has run it maxAttempts-1 times.
	w := f.newWorker(fakePlanner{ev: fakeEval{n: items, outcome: errServerDown}}, slice)
	client, err := river.NewClient(riverdatabasesql.New(f.db.SQL()), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	args := EvaluateArgs{SubmissionID: f.sub.ID, Retry: true}
	ins, err := client.InsertTx(ctx, tx, args, &river.InsertOpts{Queue: RetryQueue, Priority: retryPriority, MaxAttempts: f.maxAttempts})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE river_job SET attempt = $1 WHERE id = $2`, f.maxAttempts-1, ins.Job.ID); err != nil {
		t.Fatal(err)
	}
	ins.Job.Attempt = f.maxAttempts - 1
	res, err := w.WorkJob(ctx, t, tx, ins.Job)
	if !errors.Is(err, errServerDown) {
		t.Fatalf("last attempt returned %v, want the infrastructure error", err)
	}
	if res.EventKind != river.EventKindJobFailed || res.Job.State != rivertype.JobStateDiscarded {
		t.Fatalf("last attempt: job %s (%s), want failed and discarded", res.EventKind, res.Job.State)
	}
	if s := f.submission(t); s.State != competition.StateInfraFailed || !strings.Contains(s.Reason, "connection refused") || s.Card != nil {
		t.Fatalf("submission %s (%q) card %v, want infra_failed with the cause and no score", s.State, s.Reason, s.Card)
	}
}

// TestEvaluateWorkerFreshEpochStoresOnceAndNotAfterTheEnd: an evaluate
// job with an epoch evaluates on that epoch's items and stores one fresh
// evaluation, leaves the submission's own state alone, does nothing when
// run again, and drops an evaluation that finishes after the epoch ended
// (its items are public by then).
func TestEvaluateWorkerFreshEpochStoresOnceAndNotAfterTheEnd(t *testing.T) {
	f := newWorkerFixture(t)
	ctx := context.Background()
	now := time.Now().UTC()
	raw := []json.RawMessage{json.RawMessage(`{}`), json.RawMessage(`{}`)}
	for n, end := range map[int64]time.Time{1: now.Add(time.Hour), 2: now.Add(-time.Minute)} {
		if _, err := f.db.PutRoleplayEpoch(ctx, store.RoleplayEpoch{CompetitionID: f.sub.CompetitionID, Epoch: n, Seed: n,
			SeedSHA256: "x", Items: raw, ItemsDigest: "d", Start: end.Add(-2 * time.Hour), End: end}); err != nil {
			t.Fatal(err)
		}
	}
	p := fakePlanner{ev: fakeEval{n: len(raw)}}
	for _, n := range []int64{1, 1, 2} {
		res := f.work(t, p, slice, EvaluateArgs{CompetitionID: f.sub.CompetitionID, SubmissionID: f.sub.ID, Epoch: &n}, nil)
		if res.EventKind != river.EventKindJobCompleted {
			t.Fatalf("epoch %d job %s, want completed", n, res.EventKind)
		}
	}
	open, _ := f.db.FreshEvals(ctx, f.sub.CompetitionID, 1)
	if len(open) != 1 || open[0].Score != 1 || len(open[0].Results) != len(raw) {
		t.Fatalf("open epoch evaluations %+v, want one scoring 1 on %d items", open, len(raw))
	}
	if ended, _ := f.db.FreshEvals(ctx, f.sub.CompetitionID, 2); len(ended) != 0 {
		t.Fatalf("an evaluation finished after its epoch ended was stored: %+v", ended)
	}
	if s := f.submission(t); s.State != competition.StateQueued || s.ItemsDone != 0 || f.checks != 0 {
		t.Fatalf("fresh evaluations touched the submission: %s, %d items, %d submit checks", s.State, s.ItemsDone, f.checks)
	}
}
