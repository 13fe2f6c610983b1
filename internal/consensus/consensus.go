// Package consensus owns the hub side of independent validators and Yuma
// consensus: miner registration (a UID per key, a limit, an immunity period
// and pruning by the lowest last incentive), operator-set validator stakes,
// the signed weight vectors validators post once per epoch, and closing an
// epoch exactly once: Yuma consensus (internal/incentive) over the latest
// vector each staked validator posted inside the epoch, a record of
// consensus, incentive, trust, dividends and emissions per UID, and one
// emission transfer on the ledger. The pure simulation behind `crucible
// consensus` is internal/incentive's Simulate, the same Yuma without a hub.
//
// The network is hub-wide: one set of UIDs, stakes and epochs per hub,
// whatever competition validators evaluate. Epochs are a clock unit, not a
// chain, numbered as in internal/weights: epoch n covers [n·L, (n+1)·L) in unix
// seconds, L defaulting to 72 minutes (360 "blocks" of 12 s).
//
// Replays: every vector is a signed request, and the signature layer refuses
// a reused nonce; a vector is accepted only for the epoch that is open on the
// hub's clock (the epoch is part of the signed path), only from a key with
// stake, and only on registered UIDs. A validator may post again inside an
// epoch (say, after evaluating a new submission); the latest vector it posted
// inside the epoch is the one that counts.
//
// It uses the store, the ledger and incentive; it must never import the API,
// the CLI or the client. The validator process is internal/validator/node.
package consensus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"crucible/internal/clock"
	"crucible/internal/identity"
	"crucible/internal/incentive"
	"crucible/internal/ledger"
	"crucible/internal/store"
)

// Defaults, Bittensor's conventions.
const (
	// DefaultEpochLength is a tempo: 360 blocks of 12 s.
	DefaultEpochLength = 72 * time.Minute
	// DefaultMaxUIDs is the registration limit.
	DefaultMaxUIDs = 256
	// DefaultImmunity is 4,096 blocks of 12 s after registration during
	// which a miner cannot be replaced.
	DefaultImmunity = 4096 * 12 * time.Second
	// DefaultEmission is what one epoch emits, in base units of the asset.
	DefaultEmission = 1_000_000_000
	// MaxEmission bounds Emission so that splitting it in float64 is exact (2^53).
	MaxEmission = 1 << 53
	// DefaultAsset names the emitted asset.
	DefaultAsset = "CRU"
)

// The stored shapes, named here so that clients need not import the store.
type (
	// MinerUID is a miner's registration.
	MinerUID = store.MinerUID
	// ValidatorStake is a validator's operator-set stake.
	ValidatorStake = store.ValidatorStake
	// WeightVector is a posted weight vector.
	WeightVector = store.WeightVector
)

// Errors the API turns into status codes; each is wrapped with a reason.
var (
	// ErrForbidden: the signer may not do this (not an admin, no stake).
	ErrForbidden = errors.New("forbidden")
	// ErrInvalid: the request is malformed or names unknown things.
	ErrInvalid = errors.New("invalid request")
	// ErrConflict: the request cannot be honoured now (registration full,
	// epoch not ended, nothing to close).
	ErrConflict = errors.New("conflict")
)

// Config configures a Service. Zero values mean the defaults above (and
// incentive's defaults for the Yuma parameters).
type Config struct {
	DB    *store.DB
	Clock clock.Clock
	// EpochLength is rounded down to whole seconds (at least 1 s).
	EpochLength time.Duration
	MaxUIDs     int
	Immunity    time.Duration
	// Emission is emitted per closed epoch in base units of Asset (at most
	// MaxEmission); negative means none (record only).
	Emission int64
	Asset    string
	// RegistrationFee is burned from the registrant's participant account
	// (ledger.ParticipantAccount) on every new registration, in base units
	// of Asset; 0 (the default) makes registration free. A fee makes UID
	// churn cost something: each new UID burns it again.
	RegistrationFee int64
	// Yuma holds the epochs' Yuma parameters: variant (default yuma1, as
	// subtensor), κ, α, bonds penalty β, liquid alpha, quantisation,
	// MaxValidators and MinerShare; zero values (a nil BondsPenalty) mean
	// incentive's defaults. Its weights, stakes, bonds and masks are
	// filled in per epoch.
	Yuma incentive.YumaInput
	// Admins are the key ids allowed to set stakes and close epochs.
	Admins []string
}

// Service runs registration, stakes, weights and epoch closes on a hub.
type Service struct{ cfg Config }

// New returns a Service with defaults filled in.
func New(cfg Config) *Service {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	cfg.EpochLength = cfg.EpochLength.Truncate(time.Second)
	if cfg.EpochLength <= 0 {
		cfg.EpochLength = DefaultEpochLength
	}
	if cfg.MaxUIDs <= 0 {
		cfg.MaxUIDs = DefaultMaxUIDs
	}
	if cfg.Immunity == 0 {
		cfg.Immunity = DefaultImmunity
	}
	if cfg.Emission == 0 {
		cfg.Emission = DefaultEmission
	}
	if cfg.Emission < 0 {
		cfg.Emission = 0
	}
	// Emissions are split in float64; keep them exact.
	cfg.Emission = min(cfg.Emission, MaxEmission)
	if cfg.Asset == "" {
		cfg.Asset = DefaultAsset
	}
	return &Service{cfg: cfg}
}

// EpochInfo describes one epoch on the hub's clock.
type EpochInfo struct {
	Epoch int64     `json:"epoch"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// LengthSeconds is the epoch length.
	LengthSeconds int64     `json:"length_seconds"`
	Now           time.Time `json:"now"`
}

// Of returns the epoch number of t.
func (s *Service) Of(t time.Time) int64 { return clock.Epochs{Length: s.cfg.EpochLength}.Of(t) }

// Bounds returns the start and end of epoch n.
func (s *Service) Bounds(n int64) (time.Time, time.Time) {
	return clock.Epochs{Length: s.cfg.EpochLength}.Bounds(n)
}

// Current returns the epoch open now.
func (s *Service) Current() EpochInfo {
	now := s.cfg.Clock.Now()
	n := s.Of(now)
	start, end := s.Bounds(n)
	return EpochInfo{Epoch: n, Start: start, End: end, LengthSeconds: s.lengthSeconds(), Now: now.UTC()}
}

// EpochLength returns the epoch length in force.
func (s *Service) EpochLength() time.Duration { return s.cfg.EpochLength }

func (s *Service) lengthSeconds() int64 { return int64(s.cfg.EpochLength / time.Second) }

// IsAdmin reports whether key may set stakes and close epochs.
func (s *Service) IsAdmin(key string) bool { return key != "" && slices.Contains(s.cfg.Admins, key) }

func (s *Service) requireAdmin(key, what string) error {
	if s.IsAdmin(key) {
		return nil
	}
	if len(s.cfg.Admins) == 0 {
		return fmt.Errorf("%w: only an admin may %s, and this hub has none (start it with --admin-key KEYID or CRUCIBLE_ADMIN_KEY)", ErrForbidden, what)
	}
	return fmt.Errorf("%w: only an admin may %s; %s is not one of this hub's --admin-key ids", ErrForbidden, what, key)
}

// Registration is the outcome of a miner's registration.
type Registration struct {
	store.MinerUID
	// Created is false when the key was registered already.
	Created bool `json:"created"`
	// Replaced is the miner that lost its UID to this registration.
	Replaced *store.MinerUID `json:"replaced,omitempty"`
}

// Register gives key a UID, burning the registration fee if there is one
// (in the same transaction; without the funds there is no UID): the next free one while fewer than MaxUIDs are
// registered, otherwise the UID of the miner chosen by PruneCandidate. A
// registered key keeps its UID.
func (s *Service) Register(ctx context.Context, key string) (Registration, error) {
	if _, err := identity.ParseKeyID(key); err != nil {
		return Registration{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	now := s.cfg.Clock.Now()
	var fee *ledger.Transfer
	if s.cfg.RegistrationFee > 0 {
		// One key per registration: a key registered again after losing its
		// UID pays again, a retry of a registration that stands pays nothing.
		t := ledger.Move(fmt.Sprintf("registration:%s:%d", key, now.UnixMicro()), ledger.KindBurn, s.cfg.Asset,
			ledger.ParticipantAccount(key), ledger.BurnAccount, s.cfg.RegistrationFee, "miner registration fee")
		fee = &t
	}
	reg, replaced, created, err := s.cfg.DB.RegisterMiner(ctx, key, now, fee, func(all []store.MinerUID) (int64, error) {
		if len(all) < s.cfg.MaxUIDs {
			return freeUID(all), nil
		}
		m, ok := PruneCandidate(all, now, s.cfg.Immunity)
		if !ok {
			return 0, fmt.Errorf("%w: all %d UIDs are taken and every miner is still immune (immunity %s after registration); try later",
				ErrConflict, len(all), s.cfg.Immunity)
		}
		return m.UID, nil
	})
	if errors.Is(err, ledger.ErrInsufficientFunds) {
		return Registration{}, fmt.Errorf("%w: registration costs %d %s, burned from %s: %v",
			ErrConflict, s.cfg.RegistrationFee, s.cfg.Asset, ledger.ParticipantAccount(key), err)
	}
	return Registration{MinerUID: reg, Created: created, Replaced: replaced}, err
}

// freeUID returns the smallest UID not in use.
func freeUID(all []store.MinerUID) int64 {
	used := make(map[int64]bool, len(all))
	for _, m := range all {
		used[m.UID] = true
	}
	var uid int64
	for used[uid] {
		uid++
	}
	return uid
}

// PruneCandidate picks the miner a new registration replaces when
// registration is full: among those registered at least immunity before
// now, the lowest pruning score, ties broken by the earliest registration
// and then the lowest UID. ok is false when every miner is immune.
func PruneCandidate(all []store.MinerUID, now time.Time, immunity time.Duration) (store.MinerUID, bool) {
	var best store.MinerUID
	found := false
	for _, m := range all {
		if now.Sub(m.RegisteredAt) < immunity {
			continue
		}
		if !found || m.PruningScore < best.PruningScore ||
			(m.PruningScore == best.PruningScore && (m.RegisteredAt.Before(best.RegisteredAt) ||
				(m.RegisteredAt.Equal(best.RegisteredAt) && m.UID < best.UID))) {
			best, found = m, true
		}
	}
	return best, found
}

// UIDs lists the registrations.
func (s *Service) UIDs(ctx context.Context) ([]store.MinerUID, error) { return s.cfg.DB.MinerUIDs(ctx) }

// SetStake sets a validator's stake (base units; 0 removes its vote). Only
// an admin may.
func (s *Service) SetStake(ctx context.Context, admin, validator string, stake int64) (store.ValidatorStake, error) {
	if err := s.requireAdmin(admin, "set validator stakes"); err != nil {
		return store.ValidatorStake{}, err
	}
	if _, err := identity.ParseKeyID(validator); err != nil {
		return store.ValidatorStake{}, fmt.Errorf("%w: validator: %v", ErrInvalid, err)
	}
	if stake < 0 {
		return store.ValidatorStake{}, fmt.Errorf("%w: stake %d must be ≥ 0", ErrInvalid, stake)
	}
	st := store.ValidatorStake{Key: validator, Stake: stake, SetBy: admin, UpdatedAt: s.cfg.Clock.Now().UTC()}
	return st, s.cfg.DB.SetValidatorStake(ctx, st)
}

// Stakes lists validators and their stakes.
func (s *Service) Stakes(ctx context.Context) ([]store.ValidatorStake, error) {
	return s.cfg.DB.ValidatorStakes(ctx)
}

// RequireStake returns ErrForbidden unless key is a validator with a
// positive stake.
func (s *Service) RequireStake(ctx context.Context, key string) error {
	st, err := s.cfg.DB.GetValidatorStake(ctx, key)
	if errors.Is(err, store.ErrNotFound) || (err == nil && st.Stake <= 0) {
		return fmt.Errorf("%w: %s is not a validator with stake on this hub (an admin sets stakes with `crucible validator stake`)",
			ErrForbidden, key)
	}
	return err
}

// PostWeights accepts a validator's weight vector for epoch n, which must be
// the epoch open now. The validator needs a positive stake; every UID must
// be registered; weights must be finite, ≥ 0 and not all zero.
func (s *Service) PostWeights(ctx context.Context, validator string, n int64, competitionID string, weights map[int64]float64) (store.WeightVector, error) {
	if err := s.RequireStake(ctx, validator); err != nil {
		return store.WeightVector{}, err
	}
	now := s.cfg.Clock.Now()
	if cur := s.Of(now); n != cur {
		return store.WeightVector{}, fmt.Errorf("%w: weights are accepted only for the open epoch %d, not %d", ErrInvalid, cur, n)
	}
	if len(weights) == 0 {
		return store.WeightVector{}, fmt.Errorf("%w: the weight vector is empty", ErrInvalid)
	}
	var sum float64
	for uid, w := range weights {
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return store.WeightVector{}, fmt.Errorf("%w: weight %v on UID %d must be finite and ≥ 0", ErrInvalid, w, uid)
		}
		sum += w
	}
	if sum == 0 {
		return store.WeightVector{}, fmt.Errorf("%w: every weight is zero", ErrInvalid)
	}
	uids, err := s.cfg.DB.MinerUIDs(ctx)
	if err != nil {
		return store.WeightVector{}, err
	}
	known := map[int64]bool{}
	for _, m := range uids {
		known[m.UID] = true
	}
	var unknown []string
	for uid := range weights {
		if !known[uid] {
			unknown = append(unknown, fmt.Sprint(uid))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return store.WeightVector{}, fmt.Errorf("%w: UIDs %s are not registered", ErrInvalid, strings.Join(unknown, ", "))
	}
	v := store.WeightVector{ID: store.NewID("w"), Epoch: n, Validator: validator, Competition: competitionID, Weights: weights, PostedAt: now.UTC()}
	return v, s.cfg.DB.InsertWeightVector(ctx, v)
}

// WeightVectors lists the vectors posted in epoch n, oldest first.
func (s *Service) WeightVectors(ctx context.Context, n int64) ([]store.WeightVector, error) {
	return s.cfg.DB.WeightVectors(ctx, n)
}

// CloseAs closes epoch n on an admin's request (see Close).
func (s *Service) CloseAs(ctx context.Context, admin string, n int64) (Record, error) {
	if err := s.requireAdmin(admin, "close epochs"); err != nil {
		return Record{}, err
	}
	return s.Close(ctx, n)
}

// CloseDue closes every ended epoch that has weight vectors and no record
// yet (the periodic task).
func (s *Service) CloseDue(ctx context.Context) error {
	pending, err := s.cfg.DB.PendingConsensusEpochs(ctx, s.Of(s.cfg.Clock.Now()))
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range pending {
		if _, err := s.Close(ctx, n); err != nil && !errors.Is(err, ErrConflict) {
			errs = append(errs, fmt.Errorf("close epoch %d: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// Get returns a closed epoch's record; n < 0 means the latest.
func (s *Service) Get(ctx context.Context, n int64) (Record, error) {
	if n < 0 {
		latest, err := s.cfg.DB.LatestConsensusEpoch(ctx, math.MaxInt64)
		if err != nil {
			return Record{}, err
		}
		if latest < 0 {
			return Record{}, fmt.Errorf("no consensus epoch has closed yet: %w", store.ErrNotFound)
		}
		n = latest
	}
	var rec Record
	return rec, s.cfg.DB.ConsensusEpoch(ctx, n, &rec)
}
