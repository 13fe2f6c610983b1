package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// PreferenceReward is what a preference competition pays at its epoch's
// close: Amount base units of Asset, escrowed from Funder at creation.
// Record is the close's result (labeling.EpochClose as JSON), set once.
type PreferenceReward struct {
	CompetitionID string          `json:"competition_id"`
	Funder        string          `json:"funder"`
	Asset         string          `json:"asset"`
	Amount        int64           `json:"amount"`
	CreatedAt     time.Time       `json:"created_at"`
	ClosedAt      *time.Time      `json:"closed_at,omitempty"`
	Record        json.RawMessage `json:"record,omitempty"`
}

const prefRewardColumns = `competition_id, funder, asset, amount, created_at, closed_at, record`

func scanPreferenceReward(row scanner) (PreferenceReward, error) {
	var r PreferenceReward
	var created int64
	var closed sql.NullInt64
	var record sql.NullString
	if err := row.Scan(&r.CompetitionID, &r.Funder, &r.Asset, &r.Amount, &created, &closed, &record); err != nil {
		return r, err
	}
	r.CreatedAt = fromMicros(created)
	if closed.Valid {
		t := fromMicros(closed.Int64)
		r.ClosedAt = &t
	}
	if record.Valid {
		r.Record = json.RawMessage(record.String)
	}
	return r, nil
}

// CreatePreferenceRewardTx records a preference competition's reward inside
// tx (the transaction that creates the competition and escrows the amount).
func (db *DB) CreatePreferenceRewardTx(ctx context.Context, tx *sql.Tx, r PreferenceReward) error {
	_, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO preference_rewards (competition_id, funder, asset, amount, created_at)
		VALUES (?, ?, ?, ?, ?)`), r.CompetitionID, r.Funder, r.Asset, r.Amount, micros(r.CreatedAt))
	if err != nil {
		return fmt.Errorf("record the reward of %s: %w", r.CompetitionID, err)
	}
	return nil
}

// PreferenceReward returns a preference competition's reward.
func (db *DB) PreferenceReward(ctx context.Context, competitionID string) (PreferenceReward, error) {
	r, err := scanPreferenceReward(db.sql.QueryRowContext(ctx,
		db.rebind(`SELECT `+prefRewardColumns+` FROM preference_rewards WHERE competition_id = ?`), competitionID))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("reward of competition %s: %w", competitionID, ErrNotFound)
	}
	return r, err
}

// OpenPreferenceRewards returns the rewards whose epoch has not closed.
func (db *DB) OpenPreferenceRewards(ctx context.Context) ([]PreferenceReward, error) {
	return queryAll(ctx, db.sql, scanPreferenceReward, `SELECT `+prefRewardColumns+` FROM preference_rewards
		WHERE closed_at IS NULL ORDER BY created_at, competition_id`)
}

// ClaimPreferenceCloseTx records the close of a preference competition's
// epoch inside tx. It returns false, changing nothing, if the epoch was
// already closed: this row update is where exactly-once is decided
// (PostgreSQL holds the row lock until tx ends; SQLite serialises writers).
func (db *DB) ClaimPreferenceCloseTx(ctx context.Context, tx *sql.Tx, competitionID string, record json.RawMessage, at time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, db.rebind(`UPDATE preference_rewards SET closed_at = ?, record = ?
		WHERE competition_id = ? AND closed_at IS NULL`), micros(at), string(record), competitionID)
	if err != nil {
		return false, fmt.Errorf("close the epoch of %s: %w", competitionID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
