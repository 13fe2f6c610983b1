package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// LockCompetitionTx serialises the transactions that enter one competition,
// so that a check of its entrants and the insert that follows cannot
// interleave with another submission's (PostgreSQL row lock; SQLite runs
// one write transaction at a time).
func (db *DB) LockCompetitionTx(ctx context.Context, tx *sql.Tx, id string) error {
	if db.dialect != Postgres {
		return nil
	}
	var got string
	err := tx.QueryRowContext(ctx, db.rebind(`SELECT id FROM competitions WHERE id = ? FOR UPDATE`), id).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("competition %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("lock competition %s: %w", id, err)
	}
	return nil
}

// CompetitionResponses returns the raw responses of a competition's
// submissions by submission id and item index, for copy detection.
func (db *DB) CompetitionResponses(ctx context.Context, competitionID string) (map[string]map[int]string, error) {
	rows, err := db.sql.QueryContext(ctx, db.rebind(`SELECT r.submission_id, r.idx, r.response FROM item_results r
		JOIN submissions s ON s.id = r.submission_id WHERE s.competition_id = ?`), competitionID)
	if err != nil {
		return nil, fmt.Errorf("responses of competition %s: %w", competitionID, err)
	}
	defer rows.Close()
	out := map[string]map[int]string{}
	for rows.Next() {
		var sub, resp string
		var i int
		if err := rows.Scan(&sub, &i, &resp); err != nil {
			return nil, err
		}
		if out[sub] == nil {
			out[sub] = map[int]string{}
		}
		out[sub][i] = resp
	}
	return out, rows.Err()
}
