// Package jobs owns durable background work: a River queue on the same
// database as the store (SQLite or PostgreSQL through database/sql), so that
// a submission and the job that evaluates it commit together, a crashed worker's
// job is rescued and resumed, and several `crucible worker` processes share
// the queue on PostgreSQL. Its evaluate worker is the only place that runs
// evaluations: API submissions, pool ticks' budgeted item ranges and fresh
// roleplay epochs are all evaluate jobs, with the submit check, the
// submission lifecycle (competition.Next) and infrastructure retries on
// their own low-priority `retries` queue. Periodic tasks are one job kind
// each (see Ticks). It imports the store and eval kinds' interfaces; it
// must never import the API or the CLI.
package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"crucible/internal/clock"
	"crucible/internal/modelhost"
	"crucible/internal/store"
)

// Config configures a Queue.
type Config struct {
	DB    *store.DB
	Clock clock.Clock
	// Planner turns a submission into an evaluator; nil makes an insert-only
	// queue (it enqueues but works nothing).
	Planner Planner
	// Models serves artifact submissions' models; nil: this worker fails
	// them as an infrastructure failure (another worker may serve them).
	Models *modelhost.Host
	// Submissions is how many submissions one process evaluates at once (default 4).
	Submissions int
	// ItemConcurrency is how many items of one submission run at once (default 8).
	ItemConcurrency int
	// Slice is how long one job run evaluates before yielding and resuming, so
	// that no single run outlives RescueAfter (default 30 s).
	Slice time.Duration
	// RescueAfter is how long a job may look running before it is presumed
	// dead (its worker crashed) and run again (default 5 min).
	RescueAfter time.Duration
	// MaxAttempts bounds infrastructure retries of one evaluation (default 5).
	MaxAttempts int
	Logger      *slog.Logger
	Metrics     *Metrics
	// Ticks are the periodic tasks; each runs on its interval (and at
	// start) on one process of those sharing the queue (River's leader
	// enqueues them, uniquely).
	Ticks Ticks
}

// Ticks are the periodic tasks, each its own job kind (a nil one is not
// scheduled by this process).
type Ticks struct {
	// Pools ticks funded pools every minute (PoolTickArgs).
	Pools func(ctx context.Context) error
	// Epochs closes due model-competition epochs every minute (EpochCloseArgs).
	Epochs func(ctx context.Context) error
	// Consensus closes due validator epochs every ConsensusEvery (ConsensusCloseArgs).
	Consensus      func(ctx context.Context) error
	ConsensusEvery time.Duration
	// Preferences closes due preference labeling rounds every minute (PreferenceCloseArgs).
	Preferences func(ctx context.Context) error
	// Fresh opens fresh roleplay epochs and enqueues their evaluations
	// every minute (FreshTickArgs).
	Fresh func(ctx context.Context) error
}

// Queue is the durable job queue.
type Queue struct {
	client *river.Client[*sql.Tx]
	cfg    Config
	lock   *os.File // SQLite: held while the queue is open (see lockSQLite)
}

func driverFor(db *store.DB) riverdriver.Driver[*sql.Tx] {
	if db.Dialect() == store.Postgres {
		return riverdatabasesql.New(db.SQL())
	}
	return riversqlite.New(db.SQL())
}

// Migrate applies River's own schema migrations. On PostgreSQL a session
// advisory lock lets one of several processes starting at once migrate while
// the others wait (River runs each migration in its own transaction, as
// adding enum values requires).
func Migrate(ctx context.Context, db *store.DB) error {
	m, err := rivermigrate.New(driverFor(db), nil)
	if err != nil {
		return err
	}
	if db.Dialect() == store.Postgres {
		conn, err := db.SQL().Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(727274002)`); err != nil {
			return err
		}
		defer func() { _, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(727274002)`) }()
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate job queue: %w", err)
	}
	return nil
}

// New migrates the queue's schema and builds a Queue. Call Start to work jobs.
func New(ctx context.Context, cfg Config) (*Queue, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Submissions <= 0 {
		cfg.Submissions = 4
	}
	if cfg.ItemConcurrency <= 0 {
		cfg.ItemConcurrency = 8
	}
	if cfg.Slice <= 0 {
		cfg.Slice = 30 * time.Second
	}
	if cfg.RescueAfter <= 0 {
		cfg.RescueAfter = 5 * time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Slice*2 >= cfg.RescueAfter {
		return nil, fmt.Errorf("job slice %s must be under half of rescue-after %s", cfg.Slice, cfg.RescueAfter)
	}
	var lock *os.File
	if cfg.DB.Dialect() == store.SQLite {
		var err error
		if lock, err = lockSQLite(ctx, cfg.DB); err != nil {
			return nil, err
		}
	}
	if err := Migrate(ctx, cfg.DB); err != nil {
		closeLock(lock)
		return nil, err
	}
	if lock != nil {
		if err := rescueAtStart(ctx, cfg.DB, cfg.Logger); err != nil {
			closeLock(lock)
			return nil, err
		}
	}
	rc := &river.Config{
		Logger:               cfg.Logger.With("component", "jobs"),
		MaxAttempts:          cfg.MaxAttempts,
		JobTimeout:           cfg.RescueAfter,
		RescueStuckJobsAfter: cfg.RescueAfter,
		FetchPollInterval:    200 * time.Millisecond,
		FetchCooldown:        50 * time.Millisecond,
		Middleware:           cfg.Metrics.middleware(),
	}
	if cfg.Planner != nil {
		workers := river.NewWorkers()
		if err := river.AddWorkerSafely(workers, &evaluateWorker{cfg: cfg}); err != nil {
			return nil, err
		}
		if err := addTicks(workers, rc, cfg.Ticks); err != nil {
			return nil, err
		}
		rc.Workers = workers
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Submissions}, RetryQueue: {MaxWorkers: 1}}
	}
	client, err := river.NewClient(driverFor(cfg.DB), rc)
	if err != nil {
		closeLock(lock)
		return nil, fmt.Errorf("job queue: %w", err)
	}
	return &Queue{client: client, cfg: cfg, lock: lock}, nil
}

// Close releases the queue's hold on an SQLite database, so another
// process may open it; call it after Stop, before closing the database.
func (q *Queue) Close() {
	closeLock(q.lock)
	q.lock = nil
}

func closeLock(f *os.File) {
	if f != nil {
		f.Close()
	}
}

// Start begins working jobs until ctx ends or Stop is called.
func (q *Queue) Start(ctx context.Context) error {
	if q.cfg.Planner == nil {
		return nil
	}
	return q.client.Start(ctx)
}

// Stop waits for running jobs to finish their current step, then stops.
func (q *Queue) Stop(ctx context.Context) error {
	if q.cfg.Planner == nil {
		return nil
	}
	return q.client.Stop(ctx)
}

// EnqueueEvaluationTx schedules the evaluation of a submission inside tx, so
// the submission and its job commit together or not at all.
func (q *Queue) EnqueueEvaluationTx(ctx context.Context, tx *sql.Tx, submissionID string) error {
	if _, err := q.client.InsertTx(ctx, tx, EvaluateArgs{SubmissionID: submissionID}, nil); err != nil {
		return fmt.Errorf("enqueue evaluation of %s: %w", submissionID, err)
	}
	return nil
}

// EnqueueEvaluationsTx schedules the evaluations of submissions inside tx
// with one River InsertManyTx (one statement, not one per job), so a batch
// of submissions and their jobs commit together or not at all.
func (q *Queue) EnqueueEvaluationsTx(ctx context.Context, tx *sql.Tx, submissionIDs []string) error {
	if len(submissionIDs) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(submissionIDs))
	for i, id := range submissionIDs {
		params[i] = river.InsertManyParams{Args: EvaluateArgs{SubmissionID: id}}
	}
	if _, err := q.client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("enqueue evaluations of %d submissions: %w", len(submissionIDs), err)
	}
	return nil
}
