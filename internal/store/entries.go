package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"crucible/internal/competition"
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

// EntrantsTx reads, inside tx, what competition.CheckEntry needs of a
// competition's active entries for an entry of digest by submitter
// (competition.EntrantsOf over ListSubmissionsTx gives the same): the
// first active non-artifact entry with the digest and the submitter's
// count, by two indexed queries rather than every submission.
func (db *DB) EntrantsTx(ctx context.Context, tx *sql.Tx, competitionID, submitter, digest string) (competition.Entrants, error) {
	e := competition.Entrants{}
	rows, err := tx.QueryContext(ctx, db.rebind(`SELECT id, spec FROM submissions
		WHERE competition_id = ? AND digest = ? AND state NOT IN (?, ?) ORDER BY committed_at, id`),
		competitionID, digest, string(competition.StateFailed), string(competition.StateInfraFailed))
	if err != nil {
		return e, fmt.Errorf("entries of %s with digest %s: %w", competitionID, digest, err)
	}
	// Read to the end (a handful of rows): the count below runs on the
	// same connection, which must not have a result still open.
	defer rows.Close()
	for rows.Next() {
		var id, spec string
		if err := rows.Scan(&id, &spec); err != nil {
			return e, err
		}
		if e.Copy != "" {
			continue
		}
		var st storedSpec
		if err := json.Unmarshal([]byte(spec), &st); err != nil {
			return e, fmt.Errorf("submission %s spec: %w", id, err)
		}
		if st.Artifact == nil {
			e.Copy, e.CompetitionID = id, competitionID
		}
	}
	if err := rows.Err(); err != nil {
		return e, err
	}
	if err := rows.Close(); err != nil {
		return e, err
	}
	err = tx.QueryRowContext(ctx, db.rebind(`SELECT COUNT(*) FROM submissions
		WHERE competition_id = ? AND submitter = ? AND state NOT IN (?, ?)`),
		competitionID, submitter, string(competition.StateFailed), string(competition.StateInfraFailed)).Scan(&e.ByKey)
	if err != nil {
		return e, fmt.Errorf("entries of %s by %s: %w", competitionID, submitter, err)
	}
	return e, nil
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
