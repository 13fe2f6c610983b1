package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"crucible/internal/eval"
)

// RoleplayEpoch is one epoch's fresh roleplay items, planned from a secret
// seed. The store holds the seed; what the public may see of it and of the
// items is internal/seal's decision.
type RoleplayEpoch struct {
	CompetitionID string
	Epoch         int64
	Seed          int64
	SeedSHA256    string
	Items         []json.RawMessage
	ItemsDigest   string
	Start, End    time.Time
}

// FreshEval is one evaluation of a submission's model on an epoch's items.
type FreshEval struct {
	CompetitionID string
	Epoch         int64
	SubmissionID  string
	Score         float64
	Results       []eval.Result
	EvaluatedAt   time.Time
}

// PutRoleplayEpoch stores an epoch's items unless the epoch already has
// some, and returns the stored ones: of several workers planning the same
// epoch at once, the first to commit wins and all use its items.
func (db *DB) PutRoleplayEpoch(ctx context.Context, e RoleplayEpoch) (RoleplayEpoch, error) {
	items, err := json.Marshal(e.Items)
	if err != nil {
		return e, err
	}
	if _, err := db.sql.ExecContext(ctx, db.rebind(`INSERT INTO roleplay_epochs
		(competition_id, epoch, seed, seed_sha256, items, items_digest, starts_at, ends_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (competition_id, epoch) DO NOTHING`),
		e.CompetitionID, e.Epoch, e.Seed, e.SeedSHA256, string(items), e.ItemsDigest, micros(e.Start), micros(e.End)); err != nil {
		return e, fmt.Errorf("store roleplay epoch %d of %s: %w", e.Epoch, e.CompetitionID, err)
	}
	return db.RoleplayEpoch(ctx, e.CompetitionID, e.Epoch)
}

const roleplayEpochColumns = `competition_id, epoch, seed, seed_sha256, items, items_digest, starts_at, ends_at`

func scanRoleplayEpoch(row interface{ Scan(...any) error }) (RoleplayEpoch, error) {
	var (
		e          RoleplayEpoch
		items      string
		start, end int64
	)
	if err := row.Scan(&e.CompetitionID, &e.Epoch, &e.Seed, &e.SeedSHA256, &items, &e.ItemsDigest, &start, &end); err != nil {
		return e, err
	}
	e.Start, e.End = fromMicros(start), fromMicros(end)
	return e, json.Unmarshal([]byte(items), &e.Items)
}

// RoleplayEpoch returns an epoch's stored items.
func (db *DB) RoleplayEpoch(ctx context.Context, competitionID string, epoch int64) (RoleplayEpoch, error) {
	e, err := scanRoleplayEpoch(db.sql.QueryRowContext(ctx, db.rebind(`SELECT `+roleplayEpochColumns+`
		FROM roleplay_epochs WHERE competition_id = ? AND epoch = ?`), competitionID, epoch))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("epoch %d of %s has no fresh items: %w", epoch, competitionID, ErrNotFound)
	}
	return e, err
}

// RoleplayEpochs returns a competition's epochs with fresh items, latest
// first, at most limit of them.
func (db *DB) RoleplayEpochs(ctx context.Context, competitionID string, limit int) ([]RoleplayEpoch, error) {
	rows, err := db.sql.QueryContext(ctx, db.rebind(`SELECT `+roleplayEpochColumns+`
		FROM roleplay_epochs WHERE competition_id = ? ORDER BY epoch DESC LIMIT ?`), competitionID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RoleplayEpoch
	for rows.Next() {
		e, err := scanRoleplayEpoch(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// PutFreshEval stores a submission's evaluation on an epoch's items once:
// it returns false and changes nothing if one is stored already.
func (db *DB) PutFreshEval(ctx context.Context, e FreshEval) (bool, error) {
	results, err := json.Marshal(e.Results)
	if err != nil {
		return false, err
	}
	res, err := db.sql.ExecContext(ctx, db.rebind(`INSERT INTO roleplay_epoch_evals
		(competition_id, epoch, submission_id, score, results, evaluated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (competition_id, epoch, submission_id) DO NOTHING`),
		e.CompetitionID, e.Epoch, e.SubmissionID, e.Score, string(results), micros(e.EvaluatedAt))
	if err != nil {
		return false, fmt.Errorf("store the evaluation of %s on epoch %d: %w", e.SubmissionID, e.Epoch, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// FreshEvals returns the evaluations on an epoch's items, by submission id.
func (db *DB) FreshEvals(ctx context.Context, competitionID string, epoch int64) ([]FreshEval, error) {
	rows, err := db.sql.QueryContext(ctx, db.rebind(`SELECT competition_id, epoch, submission_id, score, results, evaluated_at
		FROM roleplay_epoch_evals WHERE competition_id = ? AND epoch = ? ORDER BY submission_id`), competitionID, epoch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FreshEval
	for rows.Next() {
		var (
			e       FreshEval
			results string
			at      int64
		)
		if err := rows.Scan(&e.CompetitionID, &e.Epoch, &e.SubmissionID, &e.Score, &results, &at); err != nil {
			return nil, err
		}
		e.EvaluatedAt = fromMicros(at)
		if err := json.Unmarshal([]byte(results), &e.Results); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
