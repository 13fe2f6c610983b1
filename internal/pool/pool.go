// Package pool owns funded benchmark pools: operators' deposits into
// funders' accounts, creating a pool (a competition whose prize moves from
// its funder's account into escrow), entrants joining it (the only way in),
// evaluation ticks that spend the hourly inference budget round-robin,
// leaderboard snapshots on the refresh schedule, and the exactly-once
// settlement after the final tick that ranks entrants on the private items
// and pays them by the allocation rule.
// Every schedule runs on the injected clock. It creates its competition and
// its entries through internal/intake, as every competition and submission
// is created, uses the store and the ledger, and enqueues its evaluations on
// the job queue (only the queue's evaluate worker evaluates); it must never
// import the evaluation engine, the API or the CLI.
package pool

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/intake"
	"crucible/internal/kind"
	"crucible/internal/ledger"
	"crucible/internal/store"
)

// Defaults and bounds of pool terms. The bounds keep every budget
// computation far inside int64 (MaxBudgetPerHour × MaxLength in nanoseconds
// fits in 128 bits with room to spare; the allowance itself stays below 10^12).
const (
	DefaultBudgetPerHour   = 1000
	DefaultRefresh         = 24 * time.Hour
	DefaultPrivateFraction = 0.5
	MaxBudgetPerHour       = 10_000_000
	MaxLength              = 10 * 365 * 24 * time.Hour
)

// Errors of Settle and Deposit, for callers that map them to statuses.
var (
	// ErrNotEnded is returned by Settle before the pool's end time.
	ErrNotEnded = errors.New("pool has not ended")
	// ErrFinalTickPending is returned by Settle, without force, after the
	// end but before the final evaluation tick has run.
	ErrFinalTickPending = errors.New("the pool's final evaluation tick has not run yet")
	// ErrForbidden is returned when a key asks for what only the funder or
	// an operator may do.
	ErrForbidden = errors.New("not allowed for this key")
)

// Evaluations is the job queue as pools use it (jobs.Queue): a tick
// enqueues each entrant's budgeted range of items and the queue's evaluate
// worker runs it, on whichever worker is free.
type Evaluations interface {
	// EnqueueItems schedules the evaluation of a submission's items.
	EnqueueItems(ctx context.Context, competitionID, submissionID string, items []int) error
	// InFlight returns how many items unfinished jobs of a competition were
	// given, by submission.
	InFlight(ctx context.Context, competitionID string) (map[string]int, error)
}

// Config configures a Service.
type Config struct {
	DB          *store.DB
	Evaluations Evaluations
	// Intake creates a pool's competition and its entrants' submissions, as
	// for any competition.
	Intake *intake.Service
	// Kind is the kind of a pool's competition on a dataset of items
	// answered by models (internal/app sets multiple choice); TaskKind is
	// its kind when the request names an lm-eval task (internal/app sets
	// the task kind; empty: no task pools).
	Kind, TaskKind competition.Kind
	Clock          clock.Clock
	Logger         *slog.Logger
	// Operators are the key ids (serve --admin-key) that may deposit money
	// into funders' accounts and force any pool's settlement.
	Operators []string
	// ExternalFunding makes Create deposit a pool's fund from external, with
	// nothing behind it, before escrowing it: for the demo only. Otherwise a
	// pool is funded from its funder's account, which an operator credits.
	ExternalFunding bool
	// MaxEntriesPerKey is how many active entries one key may have in one
	// pool (default DefaultMaxEntriesPerKey), so a key cannot flood a
	// pool's budget with entrants.
	MaxEntriesPerKey int
}

// Service runs pools.
type Service struct {
	cfg Config
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxEntriesPerKey <= 0 {
		cfg.MaxEntriesPerKey = DefaultMaxEntriesPerKey
	}
	return &Service{cfg: cfg}
}

// CreateRequest is a funder's pool.
type CreateRequest struct {
	Title           string        `json:"title"`
	DatasetName     string        `json:"dataset_name"`
	Dataset         string        `json:"dataset"`
	Mode            string        `json:"mode,omitempty"`
	Template        string        `json:"template,omitempty"`
	Fund            int64         `json:"fund"`
	Asset           string        `json:"asset"`
	Allocation      string        `json:"allocation"`
	Start           time.Time     `json:"start"`
	End             time.Time     `json:"end"`
	BudgetPerHour   int           `json:"budget_per_hour,omitempty"`
	Refresh         time.Duration `json:"refresh,omitempty"`
	PrivateFraction float64       `json:"private_fraction,omitempty"`
	// Task makes the pool's competition a task competition (Config.TaskKind)
	// on this lm-eval task, Dataset holding its rows (JSONL); the task kind
	// validates it as it does a competition's.
	Task *competition.TaskSource `json:"task,omitempty"`
}

// Create validates a pool, stores it with its competition and moves the fund
// from the funder's account into the pool's escrow, all in one transaction;
// a funder without the money is refused.
func (s *Service) Create(ctx context.Context, funder string, req CreateRequest) (competition.Pool, error) {
	if req.BudgetPerHour == 0 {
		req.BudgetPerHour = DefaultBudgetPerHour
	}
	if req.Refresh == 0 {
		req.Refresh = DefaultRefresh
	}
	if req.PrivateFraction == 0 {
		req.PrivateFraction = DefaultPrivateFraction
	}
	rule, err := ledger.ParseRule(req.Allocation)
	if err != nil {
		return competition.Pool{}, err
	}
	switch {
	case req.Fund <= 0:
		return competition.Pool{}, fmt.Errorf("fund must be a positive number of base units, got %d", req.Fund)
	case !req.End.After(req.Start):
		return competition.Pool{}, fmt.Errorf("end %s must be after start %s", req.End.Format(time.RFC3339), req.Start.Format(time.RFC3339))
	case req.End.Sub(req.Start) > MaxLength:
		return competition.Pool{}, fmt.Errorf("a pool may run at most %s (10 years); %s → %s is longer", MaxLength, req.Start.Format(time.RFC3339), req.End.Format(time.RFC3339))
	case req.BudgetPerHour < 0 || req.BudgetPerHour > MaxBudgetPerHour:
		return competition.Pool{}, fmt.Errorf("budget must be between 1 and %d items per hour, got %d/h", MaxBudgetPerHour, req.BudgetPerHour)
	case req.Refresh < time.Minute:
		return competition.Pool{}, fmt.Errorf("refresh %s is shorter than a minute", req.Refresh)
	case req.PrivateFraction <= 0 || req.PrivateFraction >= 1:
		return competition.Pool{}, fmt.Errorf("private fraction %g must be between 0 and 1 (exclusive)", req.PrivateFraction)
	}
	if req.DatasetName == "" {
		req.DatasetName = "dataset"
	}
	k, options, err := s.kindOf(req)
	if err != nil {
		return competition.Pool{}, err
	}
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return competition.Pool{}, err
	}
	var p competition.Pool
	_, err = s.cfg.Intake.CreateCompetition(ctx, intake.NewCompetition{Kind: k, CreatedBy: funder,
		Spec: kind.Spec{Title: req.Title, DatasetName: req.DatasetName, Dataset: []byte(req.Dataset), Mode: req.Mode, Template: req.Template,
			Options: options}},
		func(ctx context.Context, tx *sql.Tx, c competition.Competition) error {
			p = competition.Pool{CompetitionID: c.ID, Title: c.Title, Funder: funder, Asset: req.Asset, Amount: req.Fund, Rule: rule.Name(),
				Start: req.Start.UTC(), End: req.End.UTC(), BudgetPerHour: req.BudgetPerHour, Refresh: req.Refresh,
				PrivateFraction: req.PrivateFraction, Seed: binary.LittleEndian.Uint64(seed[:]) >> 1, State: competition.PoolOpen}
			return s.escrowTx(ctx, tx, p, c.CreatedAt)
		})
	if err != nil {
		return competition.Pool{}, err
	}
	return p, nil
}

// kindOf returns the kind of a requested pool's competition and the
// kind's options: a task pool's task, or none.
func (s *Service) kindOf(req CreateRequest) (competition.Kind, map[string]json.RawMessage, error) {
	if req.Task == nil {
		return s.cfg.Kind, nil, nil
	}
	switch {
	case s.cfg.TaskKind == "":
		return "", nil, errors.New("this hub runs no task pools")
	case req.Mode != "" || req.Template != "":
		return "", nil, errors.New("mode and template set a multiple-choice pool's prompts; a task pool's come from its task")
	}
	raw, err := json.Marshal(req.Task)
	if err != nil {
		return "", nil, fmt.Errorf("task: %w", err)
	}
	return s.cfg.TaskKind, map[string]json.RawMessage{"task": raw}, nil
}

// escrowTx stores pool p inside tx, the transaction that stores its
// competition, and moves its fund from the funder's account into escrow.
func (s *Service) escrowTx(ctx context.Context, tx *sql.Tx, p competition.Pool, now time.Time) error {
	db := s.cfg.DB
	if err := db.CreatePoolTx(ctx, tx, p); err != nil {
		return err
	}
	id, funderAcct := p.CompetitionID, ledger.FunderAccount(p.Funder)
	if s.cfg.ExternalFunding {
		if _, err := db.PostTransferTx(ctx, tx, ledger.Move("pool:"+id+":deposit", ledger.KindDeposit, p.Asset,
			ledger.External, funderAcct, p.Amount, "demo fund of pool "+id), now); err != nil {
			return err
		}
	}
	_, err := db.PostTransferTx(ctx, tx, ledger.Move("pool:"+id+":escrow", ledger.KindEscrow, p.Asset,
		funderAcct, ledger.EscrowAccount(id), p.Amount, "escrow of pool "+id), now)
	if errors.Is(err, ledger.ErrInsufficientFunds) {
		return fmt.Errorf("fund the pool from your account: %w (an operator credits it with `crucible ledger deposit --to %s`)", err, p.Funder)
	}
	return err
}

// DepositRequest is an operator crediting a funder's account: the only way
// money enters the ledger (besides the validator network's emissions).
type DepositRequest struct {
	// To is the funder's key id, or its account funder:<key id>.
	To     string `json:"to"`
	Amount int64  `json:"amount"`
	Asset  string `json:"asset"`
	// IdempotencyKey makes retries safe: a deposit under a used key moves
	// nothing and returns the first one.
	IdempotencyKey string `json:"idempotency_key"`
}

// Deposit credits a funder's account from external, for an operator key
// only. The ledger refuses deposits that would bring the money in it above
// ledger.MaxSupply.
func (s *Service) Deposit(ctx context.Context, by string, req DepositRequest) (ledger.Posted, error) {
	if by == "" || !slices.Contains(s.cfg.Operators, by) {
		return ledger.Posted{}, fmt.Errorf("%w: only an operator key (serve --admin-key) may deposit money, not %s", ErrForbidden, by)
	}
	to := strings.TrimSpace(req.To)
	if !strings.HasPrefix(to, "funder:") {
		to = ledger.FunderAccount(to)
	}
	switch {
	case to == ledger.FunderAccount(""):
		return ledger.Posted{}, errors.New("to is required: the funder's key id (or funder:<key id>)")
	case req.Amount <= 0:
		return ledger.Posted{}, fmt.Errorf("amount must be a positive number of base units, got %d", req.Amount)
	case strings.TrimSpace(req.IdempotencyKey) == "":
		return ledger.Posted{}, errors.New("idempotency_key is required, so that a retried deposit is not paid twice")
	}
	return s.cfg.DB.PostTransfer(ctx, ledger.Move("deposit:"+req.IdempotencyKey, ledger.KindDeposit, req.Asset,
		ledger.External, to, req.Amount, "deposit by operator "+by), s.cfg.Clock.Now().UTC())
}

// JoinRequest is a model joining a pool: an endpoint (BaseURL and Model),
// or, in a task pool created to take artifacts, an Artifact.
type JoinRequest struct {
	Name    string `json:"name,omitempty"`
	BaseURL string `json:"base_url"`
	Model   string `json:"model"`
	// Artifact enters model files the workers fetch, verify and serve
	// themselves (a pool whose task takes submissions "artifacts").
	Artifact *JoinArtifact `json:"artifact,omitempty"`
	APIKey   string        `json:"api_key,omitempty" input:"max=4096"` // limits: see internal/api/input.go
}

// JoinArtifact is where an entrant's artifact files are — exactly one of a
// repository at a revision, an absolute directory or a file:// tarball the
// workers can read — and the tree digest they are committed by, as for a
// competition's artifact submission (apiv1.ArtifactSource).
type JoinArtifact struct {
	Repo     string `json:"repo,omitempty" input:"max=256"`
	Revision string `json:"revision,omitempty" input:"max=128"`
	Path     string `json:"path,omitempty" input:"max=4096"`
	URL      string `json:"url,omitempty" input:"max=4096"`
	Digest   string `json:"digest" input:"max=64"`
}

// Join enters a model into an open pool. Its items are evaluated by ticks,
// within the pool's budget, not all at once. An endpoint already entered, or
// a key at its entry limit (Config.MaxEntriesPerKey), is refused: intake.Submit
// applies competition.CheckEntry holding the pool's lock. An artifact tree
// already entered is not refused: the later entry is a copy (see board),
// ranked and paid nothing, as in a competition. quota, when not nil, is
// the submitter's submission quota, which the intake checks in the
// entry's transaction under a lock on the key (a *intake.QuotaError).
func (s *Service) Join(ctx context.Context, poolID, submitter string, quota *intake.Quota, req JoinRequest) (competition.Submission, error) {
	p, err := s.cfg.DB.GetPool(ctx, poolID)
	if err != nil {
		return competition.Submission{}, err
	}
	now := s.cfg.Clock.Now().UTC()
	if p.State != competition.PoolOpen || !now.Before(p.End) {
		return competition.Submission{}, fmt.Errorf("pool %s closed at %s; it takes no more entrants", poolID, p.End.Format(time.RFC3339))
	}
	var art *intake.ArtifactEntry
	if a := req.Artifact; a != nil {
		art = &intake.ArtifactEntry{Repo: a.Repo, Revision: a.Revision, Path: a.Path, URL: a.URL, Digest: a.Digest}
	}
	sub, err := s.cfg.Intake.Submit(ctx, intake.Entry{CompetitionID: poolID, Submitter: submitter, Name: req.Name,
		BaseURL: req.BaseURL, Model: req.Model, APIKey: req.APIKey, Artifact: art, Limit: s.cfg.MaxEntriesPerKey, Quota: quota, Pool: true})
	if errors.Is(err, intake.ErrConflict) {
		return competition.Submission{}, fmt.Errorf("pool %s: %w", poolID, err)
	}
	return sub, err
}

// TickAll ticks every open pool; one pool's failure does not stop the others.
func (s *Service) TickAll(ctx context.Context) error {
	pools, err := s.cfg.DB.ListPools(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pools {
		if p.State == competition.PoolOpen {
			if err := s.Tick(ctx, p.CompetitionID); err != nil {
				errs = append(errs, fmt.Errorf("pool %s: %w", p.CompetitionID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Tick brings a pool up to date at the clock's now: it enqueues the
// evaluation of the budget accrued since the start and not yet spent on
// the entrants' next items; once no evaluation of the pool is in flight it
// takes a leaderboard snapshot when one is due, and settles the pool when
// its end has passed (the final tick). Ticks are idempotent: a tick that
// finds nothing to do does nothing.
func (s *Service) Tick(ctx context.Context, poolID string) error {
	p, err := s.cfg.DB.GetPool(ctx, poolID)
	if err != nil || p.State != competition.PoolOpen {
		return err
	}
	now := s.cfg.Clock.Now().UTC()
	if now.Before(p.Start) {
		return nil
	}
	if err := s.evaluate(ctx, p, now); err != nil {
		return err
	}
	// Snapshots and the settlement see finished evaluations only: they wait
	// for a tick that finds none in flight.
	if busy, err := s.evaluating(ctx, poolID); err != nil || busy {
		return err
	}
	if err := s.snapshotIfDue(ctx, p, now); err != nil {
		return err
	}
	if now.Before(p.End) {
		return nil
	}
	if err := s.cfg.DB.MarkFinalTick(ctx, poolID, now); err != nil {
		return err
	}
	_, err = s.settle(ctx, p, now, "")
	return err
}

// evaluating reports whether evaluations of the pool are still queued or running.
func (s *Service) evaluating(ctx context.Context, poolID string) (bool, error) {
	inFlight, err := s.cfg.Evaluations.InFlight(ctx, poolID)
	return len(inFlight) > 0, err
}

// evaluate enqueues the unused budget, shared round-robin over the
// entrants, as one range of items per entrant. Items already enqueued
// count as spent, so a slow or retried evaluation is never paid for twice;
// an entrant with a range in flight gets no new one until it finishes.
func (s *Service) evaluate(ctx context.Context, p competition.Pool, now time.Time) error {
	db := s.cfg.DB
	c, err := db.GetCompetition(ctx, p.CompetitionID)
	if err != nil {
		return err
	}
	subs, err := db.ListSubmissions(ctx, p.CompetitionID)
	if err != nil {
		return err
	}
	inFlight, err := s.cfg.Evaluations.InFlight(ctx, p.CompetitionID)
	if err != nil {
		return err
	}
	used := 0
	var entrants []Entrant
	for _, sub := range subs {
		used += sub.ItemsDone + inFlight[sub.ID]
		if !sub.State.Final() && inFlight[sub.ID] == 0 {
			entrants = append(entrants, Entrant{ID: sub.ID, Done: sub.ItemsDone, Remaining: sub.ItemsTotal - sub.ItemsDone})
		}
	}
	quota := Share(Allowed(p.BudgetPerHour, p.Start, p.End, now)-used, entrants)
	if len(quota) == 0 {
		return nil
	}
	order := NewSplit(c.Items, p.PrivateFraction, p.Seed).Order
	var errs []error
	for _, sub := range subs {
		if quota[sub.ID] == 0 {
			continue
		}
		items, err := nextItems(ctx, db, sub.ID, order, quota[sub.ID])
		if err == nil {
			err = s.cfg.Evaluations.EnqueueItems(ctx, c.ID, sub.ID, items)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("entrant %s: %w", sub.ID, err))
		}
	}
	return errors.Join(errs...)
}

// nextItems returns the next n items, in the pool's order, that the
// entrant lacks.
func nextItems(ctx context.Context, db *store.DB, submissionID string, order []int, n int) ([]int, error) {
	done, err := db.DoneItems(ctx, submissionID)
	if err != nil {
		return nil, err
	}
	var items []int
	for _, i := range order {
		if len(items) == n {
			break
		}
		if !done[i] {
			items = append(items, i)
		}
	}
	return items, nil
}

// board ranks the entrants on one side of the split (private or public)
// over the items evaluated so far, marking each copy (by its raw responses
// on that side's items) with the entrant it copies.
func (s *Service) board(ctx context.Context, p competition.Pool, private bool) ([]competition.Row, map[string]competition.Submission, error) {
	c, err := s.cfg.DB.GetCompetition(ctx, p.CompetitionID)
	if err != nil {
		return nil, nil, err
	}
	subs, err := s.cfg.DB.ListSubmissions(ctx, p.CompetitionID)
	if err != nil {
		return nil, nil, err
	}
	split := NewSplit(c.Items, p.PrivateFraction, p.Seed)
	byID := map[string]competition.Submission{}
	var entries []competition.Entry
	for _, sub := range subs {
		byID[sub.ID] = sub
		if sub.State == competition.StateFailed {
			continue
		}
		scores, err := s.cfg.DB.ItemScoresByIndex(ctx, sub.ID)
		if err != nil {
			return nil, nil, err
		}
		var side []float64
		correct := 0
		for i := 0; i < c.Items; i++ { // item order, so intervals are reproducible
			if v, ok := scores[i]; ok && split.Private[i] == private {
				side = append(side, v)
				if v == 1 {
					correct++
				}
			}
		}
		if len(side) > 0 {
			entries = append(entries, competition.Entry{SubmissionID: sub.ID, Name: sub.Name, CommittedAt: sub.CommittedAt, Card: competition.NewCard(side, correct)})
		}
	}
	side := make([]bool, c.Items)
	for i := range side {
		side[i] = split.Private[i] == private
	}
	copies, err := s.copies(ctx, subs, side)
	if err != nil {
		return nil, nil, err
	}
	rows := competition.Rank(entries)
	for i := range rows {
		rows[i].CopyOf = copies[rows[i].SubmissionID]
	}
	return rows, byID, nil
}

func (s *Service) snapshotIfDue(ctx context.Context, p competition.Pool, now time.Time) error {
	taken, err := s.cfg.DB.Snapshots(ctx, p.CompetitionID)
	if err != nil {
		return err
	}
	if len(taken) > 0 && now.Sub(taken[len(taken)-1]) < p.Refresh {
		return nil
	}
	rows, _, err := s.board(ctx, p, false)
	if err != nil {
		return err
	}
	return s.cfg.DB.InsertSnapshot(ctx, p.CompetitionID, competition.Snapshot{TakenAt: now, Rows: rows})
}

// Leaderboard returns the public snapshot in force at t (the latest if t is zero).
func (s *Service) Leaderboard(ctx context.Context, poolID string, t time.Time) (competition.Snapshot, error) {
	if t.IsZero() {
		t = s.cfg.Clock.Now()
	}
	return s.cfg.DB.SnapshotAt(ctx, poolID, t)
}
