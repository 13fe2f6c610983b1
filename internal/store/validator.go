package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"crucible/internal/ledger"
)

// MinerUID is a miner's registration: one UID per key.
type MinerUID struct {
	UID          int64     `json:"uid"`
	Key          string    `json:"key_id"`
	RegisteredAt time.Time `json:"registered_at"`
	// PruningScore is the miner's incentive in the last closed epoch; the
	// lowest non-immune score is replaced when registration is full.
	PruningScore float64 `json:"pruning_score"`
}

// ValidatorStake is the stake an operator set for a validator key.
type ValidatorStake struct {
	Key       string    `json:"key_id"`
	Stake     int64     `json:"stake"`
	SetBy     string    `json:"set_by"`
	UpdatedAt time.Time `json:"updated_at"`
}

// WeightVector is one signed weight vector a validator posted in an epoch:
// weights on miner UIDs, as sent (not normalised).
type WeightVector struct {
	ID          string            `json:"id"`
	Epoch       int64             `json:"epoch"`
	Validator   string            `json:"validator"`
	Competition string            `json:"competition_id,omitempty"`
	Weights     map[int64]float64 `json:"weights"`
	PostedAt    time.Time         `json:"posted_at"`
}

// RegisterMiner registers key under a UID in one transaction. If the key is
// registered already its registration is returned with created false.
// Otherwise choose picks the UID from the current registrations (ordered by
// UID): a new UID, or an existing one whose miner is then replaced (and
// returned as replaced). Registrations are serialised, so two miners never
// get the same UID. A new registration posts fee (when not nil) in the same
// transaction: if the ledger refuses it (say, insufficient funds), no UID is
// given. A key already registered pays nothing.
func (db *DB) RegisterMiner(ctx context.Context, key string, now time.Time, fee *ledger.Transfer, choose func(existing []MinerUID) (int64, error)) (reg MinerUID, replaced *MinerUID, created bool, err error) {
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		if db.dialect == Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(727274002)`); err != nil {
				return fmt.Errorf("lock registrations: %w", err)
			}
		}
		all, err := db.minerUIDs(ctx, tx)
		if err != nil {
			return err
		}
		for _, m := range all {
			if m.Key == key {
				reg = m
				return nil
			}
		}
		uid, err := choose(all)
		if err != nil {
			return err
		}
		reg, created = MinerUID{UID: uid, Key: key, RegisteredAt: now.UTC()}, true
		for _, m := range all {
			if m.UID == uid {
				old := m
				replaced = &old
			}
		}
		if replaced != nil {
			_, err = tx.ExecContext(ctx, db.rebind(`UPDATE miner_uids SET key_id = ?, registered_at = ?, pruning_score = 0 WHERE uid = ?`),
				key, micros(now), uid)
		} else {
			_, err = tx.ExecContext(ctx, db.rebind(`INSERT INTO miner_uids (uid, key_id, registered_at, pruning_score) VALUES (?, ?, ?, 0)`),
				uid, key, micros(now))
		}
		if err != nil {
			return fmt.Errorf("register uid %d: %w", uid, err)
		}
		if fee != nil {
			if _, err := db.PostTransferTx(ctx, tx, *fee, now); err != nil {
				return fmt.Errorf("registration fee: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return MinerUID{}, nil, false, err
	}
	return reg, replaced, created, nil
}

// MinerUIDs lists the registrations, ordered by UID.
func (db *DB) MinerUIDs(ctx context.Context) ([]MinerUID, error) { return db.minerUIDs(ctx, db.sql) }

func (db *DB) minerUIDs(ctx context.Context, q querier) ([]MinerUID, error) {
	return queryAll(ctx, q, func(rows scanner) (MinerUID, error) {
		var m MinerUID
		var at int64
		if err := rows.Scan(&m.UID, &m.Key, &at, &m.PruningScore); err != nil {
			return m, err
		}
		m.RegisteredAt = fromMicros(at)
		return m, nil
	}, `SELECT uid, key_id, registered_at, pruning_score FROM miner_uids ORDER BY uid`)
}

// SetValidatorStake sets (or replaces) a validator's stake.
func (db *DB) SetValidatorStake(ctx context.Context, s ValidatorStake) error {
	_, err := db.sql.ExecContext(ctx, db.rebind(`INSERT INTO validator_stakes (key_id, stake, set_by, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (key_id) DO UPDATE SET stake = excluded.stake, set_by = excluded.set_by, updated_at = excluded.updated_at`),
		s.Key, s.Stake, s.SetBy, micros(s.UpdatedAt))
	if err != nil {
		return fmt.Errorf("set stake of %s: %w", s.Key, err)
	}
	return nil
}

// ValidatorStakes lists every validator with a stake record, ordered by key.
func (db *DB) ValidatorStakes(ctx context.Context) ([]ValidatorStake, error) {
	return queryAll(ctx, db.sql, func(rows scanner) (ValidatorStake, error) {
		var s ValidatorStake
		var at int64
		if err := rows.Scan(&s.Key, &s.Stake, &s.SetBy, &at); err != nil {
			return s, err
		}
		s.UpdatedAt = fromMicros(at)
		return s, nil
	}, `SELECT key_id, stake, set_by, updated_at FROM validator_stakes ORDER BY key_id`)
}

// GetValidatorStake returns one validator's stake record, or ErrNotFound.
func (db *DB) GetValidatorStake(ctx context.Context, key string) (ValidatorStake, error) {
	s := ValidatorStake{Key: key}
	var at int64
	err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT stake, set_by, updated_at FROM validator_stakes WHERE key_id = ?`), key).
		Scan(&s.Stake, &s.SetBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("validator %s has no stake: %w", key, ErrNotFound)
	}
	s.UpdatedAt = fromMicros(at)
	return s, err
}

// InsertWeightVector stores a posted weight vector.
func (db *DB) InsertWeightVector(ctx context.Context, v WeightVector) error {
	b, err := json.Marshal(v.Weights)
	if err != nil {
		return err
	}
	_, err = db.sql.ExecContext(ctx, db.rebind(`INSERT INTO validator_weights (id, epoch, validator, competition_id, weights, posted_at)
		VALUES (?, ?, ?, ?, ?, ?)`), v.ID, v.Epoch, v.Validator, v.Competition, string(b), micros(v.PostedAt))
	if err != nil {
		return fmt.Errorf("store weights of %s for epoch %d: %w", v.Validator, v.Epoch, err)
	}
	return nil
}

// WeightVectors lists the vectors posted in an epoch, oldest first.
func (db *DB) WeightVectors(ctx context.Context, epoch int64) ([]WeightVector, error) {
	return queryAll(ctx, db.sql, func(rows scanner) (WeightVector, error) {
		v := WeightVector{Epoch: epoch}
		var w string
		var at int64
		if err := rows.Scan(&v.ID, &v.Validator, &v.Competition, &w, &at); err != nil {
			return v, err
		}
		if err := json.Unmarshal([]byte(w), &v.Weights); err != nil {
			return v, fmt.Errorf("weights %s: %w", v.ID, err)
		}
		v.PostedAt = fromMicros(at)
		return v, nil
	}, db.rebind(`SELECT id, validator, competition_id, weights, posted_at FROM validator_weights
		WHERE epoch = ? ORDER BY posted_at, id`), epoch)
}

// PendingConsensusEpochs lists the epochs before `before` that have weight
// vectors but no closed record, oldest first.
func (db *DB) PendingConsensusEpochs(ctx context.Context, before int64) ([]int64, error) {
	return queryAll(ctx, db.sql, func(rows scanner) (int64, error) {
		var e int64
		if err := rows.Scan(&e); err != nil {
			return e, err
		}
		return e, nil
	}, db.rebind(`SELECT DISTINCT w.epoch FROM validator_weights w WHERE w.epoch < ?
		AND NOT EXISTS (SELECT 1 FROM consensus_epochs c WHERE c.epoch = w.epoch) ORDER BY w.epoch`), before)
}

// CloseConsensusEpoch records a closed epoch once, in one transaction with
// its emission transfer (if any) and the miners' new pruning scores (a
// score is written only while the UID still belongs to the same key). It
// returns false and changes nothing if the epoch was closed already.
func (db *DB) CloseConsensusEpoch(ctx context.Context, epoch int64, closedAt time.Time, record any, pruning []MinerUID, transfer *ledger.Transfer) (bool, error) {
	b, err := json.Marshal(record)
	if err != nil {
		return false, err
	}
	inserted := false
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO consensus_epochs (epoch, closed_at, record) VALUES (?, ?, ?)
			ON CONFLICT (epoch) DO NOTHING`), epoch, micros(closedAt), string(b))
		if err != nil {
			return fmt.Errorf("record consensus epoch %d: %w", epoch, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		inserted = true
		for _, m := range pruning {
			if _, err := tx.ExecContext(ctx, db.rebind(`UPDATE miner_uids SET pruning_score = ? WHERE uid = ? AND key_id = ?`),
				m.PruningScore, m.UID, m.Key); err != nil {
				return err
			}
		}
		if transfer != nil {
			if _, err := db.PostTransferTx(ctx, tx, *transfer, closedAt); err != nil {
				return fmt.Errorf("emission of epoch %d: %w", epoch, err)
			}
		}
		return nil
	})
	return inserted, err
}

// ConsensusEpoch decodes the record of a closed epoch into out, or returns
// ErrNotFound.
func (db *DB) ConsensusEpoch(ctx context.Context, epoch int64, out any) error {
	var rec string
	err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT record FROM consensus_epochs WHERE epoch = ?`), epoch).Scan(&rec)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("consensus epoch %d has not closed: %w", epoch, ErrNotFound)
	}
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(rec), out)
}

// LatestConsensusEpoch returns the last closed epoch before `before`, or -1.
func (db *DB) LatestConsensusEpoch(ctx context.Context, before int64) (int64, error) {
	var e sql.NullInt64
	err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT MAX(epoch) FROM consensus_epochs WHERE epoch < ?`), before).Scan(&e)
	if err != nil || !e.Valid {
		return -1, err
	}
	return e.Int64, nil
}
