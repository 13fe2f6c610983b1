// Package pool owns funded benchmark pools: operators' deposits into
// funders' accounts, creating a pool (a competition whose prize moves from
// its funder's account into escrow), entrants joining it (the only way in),
// evaluation ticks that spend the hourly inference budget round-robin,
// leaderboard snapshots on the refresh schedule, and the exactly-once
// settlement after the final tick that ranks entrants on the private items
// and pays them by the allocation rule.
// Every schedule runs on the injected clock. It uses the store, the kind
// registry and the ledger; it must never import the API or the CLI.
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
	"crucible/internal/eval"
	"crucible/internal/inference"
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

// Planner prepares pools' competitions and builds evaluators for their
// entrants (the kind registry in production).
type Planner interface {
	Prepare(ctx context.Context, k competition.Kind, spec kind.Spec) (kind.Prepared, error)
	Plan(ctx context.Context, c competition.Competition, s competition.Submission, secret string, items []json.RawMessage) (eval.Evaluator, error)
}

// Config configures a Service.
type Config struct {
	DB      *store.DB
	Planner Planner
	Clock   clock.Clock
	Logger  *slog.Logger
	// ItemConcurrency is how many items of one entrant a tick evaluates at once.
	ItemConcurrency int
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
	if cfg.ItemConcurrency <= 0 {
		cfg.ItemConcurrency = 8
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
	prep, err := s.cfg.Planner.Prepare(ctx, competition.KindMCQ, kind.Spec{Title: req.Title, DatasetName: req.DatasetName,
		Dataset: []byte(req.Dataset), Mode: req.Mode, Template: req.Template})
	if err != nil {
		return competition.Pool{}, err
	}
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return competition.Pool{}, err
	}
	now := s.cfg.Clock.Now().UTC()
	c := competition.Competition{ID: store.NewID("c"), Kind: competition.KindMCQ, Title: strings.TrimSpace(req.Title), Config: prep.Config,
		DatasetName: req.DatasetName, DatasetDigest: prep.DatasetDigest, Items: len(prep.Items), CreatedBy: funder, CreatedAt: now}
	p := competition.Pool{CompetitionID: c.ID, Title: c.Title, Funder: funder, Asset: req.Asset, Amount: req.Fund, Rule: rule.Name(),
		Start: req.Start.UTC(), End: req.End.UTC(), BudgetPerHour: req.BudgetPerHour, Refresh: req.Refresh,
		PrivateFraction: req.PrivateFraction, Seed: binary.LittleEndian.Uint64(seed[:]) >> 1, State: competition.PoolOpen}
	db := s.cfg.DB
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		if err := db.CreateCompetitionTx(ctx, tx, c, prep.Items); err != nil {
			return err
		}
		if err := db.CreatePoolTx(ctx, tx, p); err != nil {
			return err
		}
		funderAcct := ledger.FunderAccount(funder)
		if s.cfg.ExternalFunding {
			if _, err := db.PostTransferTx(ctx, tx, ledger.Move("pool:"+c.ID+":deposit", ledger.KindDeposit, req.Asset,
				ledger.External, funderAcct, req.Fund, "demo fund of pool "+c.ID), now); err != nil {
				return err
			}
		}
		_, err := db.PostTransferTx(ctx, tx, ledger.Move("pool:"+c.ID+":escrow", ledger.KindEscrow, req.Asset,
			funderAcct, ledger.EscrowAccount(c.ID), req.Fund, "escrow of pool "+c.ID), now)
		if errors.Is(err, ledger.ErrInsufficientFunds) {
			return fmt.Errorf("fund the pool from your account: %w (an operator credits it with `crucible ledger deposit --to %s`)", err, funder)
		}
		return err
	})
	if err != nil {
		return competition.Pool{}, err
	}
	return p, nil
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

// JoinRequest is a model joining a pool.
type JoinRequest struct {
	Name    string `json:"name,omitempty"`
	BaseURL string `json:"base_url"`
	Model   string `json:"model"`
	APIKey  string `json:"api_key,omitempty" input:"max=4096"` // limits: see internal/api/input.go
}

// Join enters a model into an open pool. Its items are evaluated by ticks,
// within the pool's budget, not all at once. A model already entered, or a
// key at its entry limit, is refused (see checkEntry).
func (s *Service) Join(ctx context.Context, poolID, submitter string, req JoinRequest) (competition.Submission, error) {
	p, err := s.cfg.DB.GetPool(ctx, poolID)
	if err != nil {
		return competition.Submission{}, err
	}
	now := s.cfg.Clock.Now().UTC()
	if p.State != competition.PoolOpen || !now.Before(p.End) {
		return competition.Submission{}, fmt.Errorf("pool %s closed at %s; it takes no more entrants", poolID, p.End.Format(time.RFC3339))
	}
	base, err := inference.NormalizeBaseURL(req.BaseURL)
	if err != nil {
		return competition.Submission{}, fmt.Errorf("base_url: %w", err)
	}
	if strings.TrimSpace(req.Model) == "" {
		return competition.Submission{}, errors.New("model is required")
	}
	if req.Name == "" {
		req.Name = req.Model
	}
	c, err := s.cfg.DB.GetCompetition(ctx, poolID)
	if err != nil {
		return competition.Submission{}, err
	}
	spec := competition.ModelSpec{BaseURL: base, Model: strings.TrimSpace(req.Model)}
	digest := competition.ModelDigest(spec)
	sub := competition.Submission{ID: store.NewID("s"), CompetitionID: poolID, Name: req.Name, Submitter: submitter, Model: spec,
		Digest: digest, CommittedAt: now, State: competition.StateQueued, ItemsTotal: c.Items, UpdatedAt: now}
	// The entry rules are checked and the entry made in one transaction
	// holding the pool's lock, so simultaneous joins of one model cannot
	// both get in.
	err = s.cfg.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.cfg.DB.LockPoolTx(ctx, tx, poolID); err != nil {
			return err
		}
		if err := s.checkEntry(ctx, tx, poolID, submitter, digest); err != nil {
			return err
		}
		return s.cfg.DB.CreateSubmissionTx(ctx, tx, sub, req.APIKey)
	})
	if err != nil {
		return competition.Submission{}, err
	}
	return sub, nil
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

// Tick brings a pool up to date at the clock's now: it spends the budget
// accrued since the start and not yet used on the entrants' next items,
// takes a leaderboard snapshot when one is due, and settles the pool once its
// end has passed. Ticks are idempotent: a tick that finds nothing to do does
// nothing.
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
	if err := s.snapshotIfDue(ctx, p, now); err != nil {
		return err
	}
	if !now.Before(p.End) { // the final tick: the budget up to the end is spent
		if err := s.cfg.DB.MarkFinalTick(ctx, poolID, now); err != nil {
			return err
		}
		_, err := s.settle(ctx, p, now, "")
		return err
	}
	return nil
}

// evaluate spends the unused budget round-robin over the entrants.
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
	used := 0
	var entrants []Entrant
	for _, sub := range subs {
		used += sub.ItemsDone
		if sub.State != competition.StateFailed {
			entrants = append(entrants, Entrant{ID: sub.ID, Done: sub.ItemsDone, Remaining: sub.ItemsTotal - sub.ItemsDone})
		}
	}
	quota := Share(Allowed(p.BudgetPerHour, p.Start, p.End, now)-used, entrants)
	if len(quota) == 0 {
		return nil
	}
	items, err := db.CompetitionItems(ctx, c.ID)
	if err != nil {
		return err
	}
	order := NewSplit(c.Items, p.PrivateFraction, p.Seed).Order
	for _, sub := range subs {
		if quota[sub.ID] > 0 {
			if err := s.evaluateEntrant(ctx, c, sub, items, order, quota[sub.ID], now); err != nil {
				s.cfg.Logger.Warn("pool tick: entrant not evaluated this tick", "pool", c.ID, "submission", sub.ID, "err", err)
			}
		}
	}
	return nil
}

// evaluateEntrant evaluates the next n items (in the pool's order) that the
// entrant lacks. A deterministic failure fails the entrant; any other error
// leaves its items for the next tick.
func (s *Service) evaluateEntrant(ctx context.Context, c competition.Competition, sub competition.Submission, items []json.RawMessage, order []int, n int, now time.Time) error {
	db := s.cfg.DB
	secret, err := db.SubmissionSecret(ctx, sub.ID)
	if err != nil {
		return err
	}
	ev, err := s.cfg.Planner.Plan(ctx, c, sub, secret, items)
	if err != nil {
		_, serr := db.SetSubmissionState(ctx, sub.ID, competition.StateFailed, err.Error(), nil, now)
		return errors.Join(err, serr)
	}
	done, err := db.DoneItems(ctx, sub.ID)
	if err != nil {
		return err
	}
	skip := map[int]bool{}
	picked := 0
	for _, i := range order {
		if done[i] || picked == n {
			skip[i] = true
			continue
		}
		picked++
	}
	if _, err := db.SetSubmissionState(ctx, sub.ID, competition.StateRunning, "", nil, now); err != nil {
		return err
	}
	err = eval.Run(ctx, ev, eval.RunConfig{Concurrency: s.cfg.ItemConcurrency, Skip: skip,
		Sink: func(r eval.Result) error { return db.InsertResult(ctx, sub.ID, r) }})
	if err != nil {
		if inference.IsPermanent(err) {
			_, serr := db.SetSubmissionState(ctx, sub.ID, competition.StateFailed, err.Error(), nil, now)
			return errors.Join(err, serr)
		}
		return err
	}
	if len(done)+picked == sub.ItemsTotal {
		scores, correct, err := db.ItemScores(ctx, sub.ID)
		if err != nil {
			return err
		}
		card := competition.NewCard(scores, correct)
		_, err = db.SetSubmissionState(ctx, sub.ID, competition.StateScored, "", &card, now)
		return err
	}
	return nil
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
