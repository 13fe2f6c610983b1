package labeling

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"crucible/internal/competition"
	"crucible/internal/ledger"
	"crucible/internal/store"
)

// ErrNotClosed is returned by CloseEpoch before every task's deadline has passed.
var ErrNotClosed = errors.New("epoch still open")

// Reward is what a new preference competition pays at its epoch's close:
// Amount base units of Asset (0: nothing).
type Reward struct {
	Asset  string
	Amount int64
}

// EpochClose is the once-only result of a preference competition's epoch close:
// the escrowed reward shared among the miners in proportion to their
// preference scores (preference.MinerResult.Reward; untrusted miners get 0),
// what rounding or the absence of trusted miners leaves refunded to the
// funder.
type EpochClose struct {
	CompetitionID string    `json:"competition_id"`
	ClosedAt      time.Time `json:"closed_at"`
	// ClosedBy is the key that closed it explicitly; empty for the tick.
	ClosedBy string        `json:"closed_by,omitempty"`
	Asset    string        `json:"asset,omitempty"`
	Amount   int64         `json:"amount"`
	Payouts  []MinerPayout `json:"payouts"`
	Refunded int64         `json:"refunded"`
}

// MinerPayout is one miner's line in an EpochClose.
type MinerPayout struct {
	Miner   string  `json:"miner"`
	Account string  `json:"account"`
	Trusted bool    `json:"trusted"`
	Kappa   float64 `json:"kappa"`
	Score   float64 `json:"score"`
	Reward  float64 `json:"reward"`
	Units   int64   `json:"units"`
}

// EscrowRewardTx records a new preference competition's reward inside tx,
// the transaction that stores the competition (intake.CreateCompetition),
// escrowing it from the creator's funder account (where an operator's
// deposit lands): a creator without the funds is refused and nothing is
// created. The tasks are materialised afterwards (see Competition).
func (s *Service) EscrowRewardTx(ctx context.Context, tx *sql.Tx, c competition.Competition, r Reward) error {
	if r.Amount < 0 || r.Amount > ledger.MaxSupply {
		return fmt.Errorf("%w: reward %d must be 0..%d base units", ErrInvalid, r.Amount, ledger.MaxSupply)
	}
	if r.Amount > 0 && r.Asset == "" {
		return fmt.Errorf("%w: a reward needs its asset", ErrInvalid)
	}
	db := s.cfg.DB
	err := db.CreatePreferenceRewardTx(ctx, tx, store.PreferenceReward{CompetitionID: c.ID, Funder: c.CreatedBy,
		Asset: r.Asset, Amount: r.Amount, CreatedAt: c.CreatedAt})
	if err != nil || r.Amount == 0 {
		return err
	}
	_, err = db.PostTransferTx(ctx, tx, ledger.Move("preference:"+c.ID+":escrow", ledger.KindEscrow, r.Asset,
		ledger.FunderAccount(c.CreatedBy), ledger.EscrowAccount(c.ID), r.Amount, "reward of preference competition "+c.ID), c.CreatedAt)
	if errors.Is(err, ledger.ErrInsufficientFunds) {
		return fmt.Errorf("%w: fund the reward from your account: %w (an operator credits it with `crucible ledger deposit --to %s`)",
			ErrInvalid, err, c.CreatedBy)
	}
	return err
}

// CloseEpoch closes a preference competition's epoch once every task's deadline
// has passed: it scores the epoch (Score, not a preview), records the
// result and pays the escrowed reward out to the miners' participant
// accounts, refunding the remainder to the funder — the record and every
// transfer in one transaction, so a crash leaves all or none. A second or
// concurrent close pays nothing more and returns the stored record. by is
// the key that asked (empty: the periodic tick).
func (s *Service) CloseEpoch(ctx context.Context, competitionID, by string) (EpochClose, error) {
	db := s.cfg.DB
	reward, err := db.PreferenceReward(ctx, competitionID)
	if err != nil {
		return EpochClose{}, err
	}
	if reward.ClosedAt != nil {
		return storedClose(reward)
	}
	_, _, tasks, err := s.Competition(ctx, competitionID)
	if err != nil {
		return EpochClose{}, err
	}
	now := s.Now()
	for _, t := range tasks {
		if t.Open(now) {
			return EpochClose{}, fmt.Errorf("%w: task %s of %s is open until %s", ErrNotClosed, t.ID, competitionID, t.Deadline.UTC().Format(time.RFC3339))
		}
	}
	rep, _, err := s.Score(ctx, competitionID, false)
	if err != nil {
		return EpochClose{}, err
	}
	var entrants []ledger.Entrant
	for _, m := range rep.Epoch.Miners {
		entrants = append(entrants, ledger.Entrant{Name: m.Miner, Score: m.Score, Failed: !m.Trusted})
	}
	// Proportional shares are Score over the trusted miners' total: the
	// miners' preference rewards, allocated in exact integer units.
	alloc, err := ledger.Allocate(ledger.Proportional{}, reward.Amount, entrants)
	if err != nil {
		return EpochClose{}, err
	}
	rec := EpochClose{CompetitionID: competitionID, ClosedAt: now, ClosedBy: by, Asset: reward.Asset, Amount: reward.Amount, Refunded: alloc.Unassigned}
	for _, m := range rep.Epoch.Miners {
		rec.Payouts = append(rec.Payouts, MinerPayout{Miner: m.Miner, Account: ledger.ParticipantAccount(m.Miner), Trusted: m.Trusted,
			Kappa: m.Kappa, Score: m.Score, Reward: m.Reward, Units: alloc.Payouts[m.Miner]})
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return EpochClose{}, err
	}
	escrow := ledger.EscrowAccount(competitionID)
	var claimed bool
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		if claimed, err = db.ClaimPreferenceCloseTx(ctx, tx, competitionID, b, now); err != nil || !claimed {
			return err
		}
		for _, p := range rec.Payouts {
			if p.Units > 0 {
				if _, err := db.PostTransferTx(ctx, tx, ledger.Move("preference:"+competitionID+":payout:"+p.Miner, ledger.KindPayout, reward.Asset,
					escrow, p.Account, p.Units, "preference reward of "+competitionID), now); err != nil {
					return err
				}
			}
		}
		if rec.Refunded > 0 {
			_, err := db.PostTransferTx(ctx, tx, ledger.Move("preference:"+competitionID+":refund", ledger.KindRefund, reward.Asset,
				escrow, ledger.FunderAccount(reward.Funder), rec.Refunded, "unassigned reward of "+competitionID), now)
			return err
		}
		return nil
	})
	if err != nil {
		return EpochClose{}, fmt.Errorf("close the epoch of %s: %w", competitionID, err)
	}
	if !claimed { // another closer won the race: return its record
		if reward, err = db.PreferenceReward(ctx, competitionID); err != nil {
			return EpochClose{}, err
		}
		return storedClose(reward)
	}
	return rec, nil
}

func storedClose(r store.PreferenceReward) (EpochClose, error) {
	var rec EpochClose
	if err := json.Unmarshal(r.Record, &rec); err != nil {
		return EpochClose{}, fmt.Errorf("the stored close of %s: %w", r.CompetitionID, err)
	}
	return rec, nil
}

// CloseDue closes every preference epoch whose tasks' deadlines have all
// passed (the periodic tick); one competition's failure does not stop the
// others.
func (s *Service) CloseDue(ctx context.Context) error {
	open, err := s.cfg.DB.OpenPreferenceRewards(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range open {
		if _, err := s.CloseEpoch(ctx, r.CompetitionID, ""); err != nil && !errors.Is(err, ErrNotClosed) {
			errs = append(errs, fmt.Errorf("preference competition %s: %w", r.CompetitionID, err))
		}
	}
	return errors.Join(errs...)
}
