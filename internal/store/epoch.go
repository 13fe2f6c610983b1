package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// InsertEpochRecord stores an epoch's record once: it returns false and
// changes nothing if the epoch was already recorded.
func (db *DB) InsertEpochRecord(ctx context.Context, competitionID string, epoch int64, closedAt time.Time, record any) (bool, error) {
	b, err := json.Marshal(record)
	if err != nil {
		return false, err
	}
	res, err := db.sql.ExecContext(ctx, db.rebind(`INSERT INTO epoch_weights (competition_id, epoch, closed_at, record) VALUES (?, ?, ?, ?)
		ON CONFLICT (competition_id, epoch) DO NOTHING`), competitionID, epoch, micros(closedAt), string(b))
	if err != nil {
		return false, fmt.Errorf("record epoch %d of %s: %w", epoch, competitionID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// EpochRecord decodes the stored record of an epoch into out.
func (db *DB) EpochRecord(ctx context.Context, competitionID string, epoch int64, out any) error {
	var rec string
	err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT record FROM epoch_weights WHERE competition_id = ? AND epoch = ?`),
		competitionID, epoch).Scan(&rec)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("epoch %d of %s has not closed: %w", epoch, competitionID, ErrNotFound)
	}
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(rec), out)
}

// LatestEpoch returns the last closed epoch of a competition, or -1.
func (db *DB) LatestEpoch(ctx context.Context, competitionID string) (int64, error) {
	var e sql.NullInt64
	err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT MAX(epoch) FROM epoch_weights WHERE competition_id = ?`), competitionID).Scan(&e)
	if err != nil || !e.Valid {
		return -1, err
	}
	return e.Int64, nil
}
