// Package intake is the one way competitions and submissions come into being.
// The API, pools and preference labeling create every competition with
// CreateCompetition and enter every submission with Submit, so the kind
// registry's preparation, the entry rules and the evaluation job apply alike
// whichever door a request comes through. It is a service over the store:
// it enqueues evaluations and never runs them, and it never imports the API,
// the web UI or the CLI (callers map its typed errors to their answers).
package intake

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/groupcommit"
	"crucible/internal/kind"
	"crucible/internal/store"
)

// Errors that Service refuses requests with, for callers that map them to
// statuses; the refusal's text is the reason alone, meant for the person
// who asked.
var (
	// ErrInvalid: the request itself is wrong (400).
	ErrInvalid = errors.New("invalid request")
	// ErrConflict: the request is well formed but the competition's state
	// refuses it, e.g. a model already entered (409).
	ErrConflict = errors.New("refused by the competition's state")
)

// refusal is a request refused for reason err; it is ErrInvalid or
// ErrConflict (kind) and still unwraps to its cause, so callers may match
// the cause's sentinel (competition.ErrDuplicateEntry) too.
type refusal struct{ kind, err error }

func (r *refusal) Error() string   { return r.err.Error() }
func (r *refusal) Unwrap() []error { return []error{r.kind, r.err} }

func invalid(format string, a ...any) error {
	return &refusal{ErrInvalid, fmt.Errorf(format, a...)}
}

func conflict(err error) error { return &refusal{ErrConflict, err} }

// QuotaWindow is the rolling window of Quota.PerDay.
const QuotaWindow = 24 * time.Hour

// openRetryAfter is the Retry of a full open quota: a slot frees when an
// evaluation ends, which nothing can predict.
const openRetryAfter = time.Minute

// Quota bounds the submissions of an entry's submitter across every
// competition and pool; a zero field sets no limit.
type Quota struct {
	// PerDay bounds the submissions the key made in the last QuotaWindow.
	PerDay int
	// Open bounds the key's submissions that are queued or running.
	Open int
}

// QuotaError is an entry refused by its Quota (a 429): Retry is when a
// slot frees, as well as can be told.
type QuotaError struct {
	Retry time.Duration
	msg   string
}

func (e *QuotaError) Error() string { return e.msg }

// check refuses one more submission by key over q, given u (the key's
// usage at now, the batch-mates accepted before it included).
func (q *Quota) check(key string, u store.KeyUsage, now time.Time) error {
	if q.PerDay > 0 && u.Count >= q.PerDay {
		return &QuotaError{u.Oldest.Add(QuotaWindow).Sub(now),
			fmt.Sprintf("quota: key %s made %d submissions in the last 24 hours; the limit is %d", key, u.Count, q.PerDay)}
	}
	if q.Open > 0 && u.Open >= q.Open {
		return &QuotaError{openRetryAfter,
			fmt.Sprintf("quota: key %s has %d submissions queued or running; the limit is %d, wait until one is evaluated", key, u.Open, q.Open)}
	}
	return nil
}

// Evaluations is the job queue as the intake uses it (jobs.Queue).
type Evaluations interface {
	// EnqueueEvaluationsTx schedules the submissions' evaluations inside
	// tx, so the submissions and their jobs commit together or not at all.
	EnqueueEvaluationsTx(ctx context.Context, tx *sql.Tx, submissionIDs []string) error
}

// Config configures a Service.
type Config struct {
	DB *store.DB
	// Kinds decide everything kind-specific: preparing a dataset, the shape
	// and checks of an entry, whether entries are ranked models.
	Kinds       *kind.Registry
	Evaluations Evaluations
	Clock       clock.Clock
	// Metrics records the group commit's batches (nil: nothing).
	Metrics *Metrics
}

// Service creates competitions and submissions.
type Service struct {
	cfg   Config
	batch *groupcommit.Queue[*pending]
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	s := &Service{cfg: cfg}
	s.batch = &groupcommit.Queue[*pending]{Max: maxBatch, Linger: linger, Write: s.commitBatch}
	if cfg.DB.Dialect() == store.Postgres {
		s.batch.Writers = pgWriters
	}
	return s
}

// NewCompetition is a competition to create.
type NewCompetition struct {
	Kind      competition.Kind
	Spec      kind.Spec
	CreatedBy string
	// Bundles returns the repository bundles the prepared tasks use, stored
	// so that evaluations can resolve them (patch competitions: the spec's
	// ResolveRepo learns them while preparing, hence a function); nil: none.
	Bundles func() [][]byte
}

// CreateCompetition prepares n's dataset with its kind (a refusal is
// ErrInvalid), then stores the competition with its items in one
// transaction. A non-nil also runs inside that transaction once the
// competition is stored, for what must exist with it or not at all (a
// pool and its escrow, a preference reward); its error is returned as is
// and nothing is created. Preparing happens before the transaction: it may
// take long (reading repositories) and must not hold the database.
func (s *Service) CreateCompetition(ctx context.Context, n NewCompetition,
	also func(ctx context.Context, tx *sql.Tx, c competition.Competition) error) (competition.Competition, error) {
	prep, err := s.cfg.Kinds.Prepare(ctx, n.Kind, n.Spec)
	if err != nil {
		return competition.Competition{}, &refusal{ErrInvalid, err}
	}
	now := s.cfg.Clock.Now().UTC()
	var bundles [][]byte
	if n.Bundles != nil {
		bundles = n.Bundles()
	}
	for _, b := range bundles {
		if _, err := s.cfg.DB.PutRepoBundle(ctx, b, n.CreatedBy, now); err != nil {
			return competition.Competition{}, err
		}
	}
	c := competition.Competition{
		ID: store.NewID("c"), Kind: n.Kind, Title: strings.TrimSpace(n.Spec.Title), Config: prep.Config,
		DatasetName: n.Spec.DatasetName, DatasetDigest: prep.DatasetDigest, Items: len(prep.Items),
		CreatedBy: n.CreatedBy, CreatedAt: now,
	}
	err = s.cfg.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.cfg.DB.CreateCompetitionTx(ctx, tx, c, prep.Items); err != nil {
			return err
		}
		if also == nil {
			return nil
		}
		return also(ctx, tx, c)
	})
	if err != nil {
		return competition.Competition{}, err
	}
	return c, nil
}
