package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"crucible/internal/competition"
)

// LeaderboardVersion returns competition id's leaderboard version: a
// counter bumped in every transaction that changes what its leaderboard
// ranks (a submission reaching or leaving the scored state). It is 0 before
// the first bump. A reader that read version v before reading the
// submissions may cache what it computed under v: anything scored later
// carries a higher version.
func (db *DB) LeaderboardVersion(ctx context.Context, id string) (int64, error) {
	var v int64
	err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT version FROM leaderboard_versions WHERE competition_id = ?`), id).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("leaderboard version of %s: %w", id, err)
	}
	return v, nil
}

// BoardState is what a leaderboard read needs of a competition now.
type BoardState struct {
	Competition competition.Competition
	// Pool holds the competition's pool's sealing terms (State,
	// PrivateFraction, Seed; nothing else is read), nil when it is not a pool.
	Pool *competition.Pool
	// Version is its LeaderboardVersion.
	Version int64
}

// LeaderboardState reads competition id, its pool's sealing terms and its
// leaderboard version in one statement (one snapshot, one round trip): a
// cached leaderboard read costs this query alone. A competition that does
// not exist is ErrNotFound.
func (db *DB) LeaderboardState(ctx context.Context, id string) (BoardState, error) {
	var st BoardState
	var kind, config string
	var created int64
	var poolState sql.NullString
	var fraction sql.NullFloat64
	var seed sql.NullInt64
	stmt, err := db.readStmt(ctx, `SELECT c.id, c.kind, c.title, c.config, c.dataset_name, c.dataset_digest,
			c.items_total, c.created_by, c.created_at, COALESCE(v.version, 0), p.state, p.private_fraction, p.seed
			FROM competitions c
			LEFT JOIN leaderboard_versions v ON v.competition_id = c.id
			LEFT JOIN pools p ON p.competition_id = c.id
			WHERE c.id = ?`)
	if err != nil {
		return st, err
	}
	c := &st.Competition
	err = stmt.QueryRowContext(ctx, id).Scan(&c.ID, &kind, &c.Title, &config, &c.DatasetName, &c.DatasetDigest, &c.Items, &c.CreatedBy, &created,
		&st.Version, &poolState, &fraction, &seed)
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("competition %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("leaderboard state of %s: %w", id, err)
	}
	c.Kind, c.Config, c.CreatedAt = competition.Kind(kind), json.RawMessage(config), fromMicros(created)
	if poolState.Valid {
		st.Pool = &competition.Pool{CompetitionID: id, State: competition.PoolState(poolState.String),
			PrivateFraction: fraction.Float64, Seed: uint64(seed.Int64)}
	}
	return st, nil
}

// bumpLeaderboard increments competition id's leaderboard version inside
// tx, the transaction that changes its ranking, so no reader sees the
// change under the old version.
func (db *DB) bumpLeaderboard(ctx context.Context, tx *sql.Tx, id string) error {
	_, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO leaderboard_versions (competition_id, version) VALUES (?, 1)
		ON CONFLICT (competition_id) DO UPDATE SET version = leaderboard_versions.version + 1`), id)
	if err != nil {
		return fmt.Errorf("bump leaderboard of %s: %w", id, err)
	}
	return nil
}

// MaxSubmissionsPage bounds one page of ListSubmissionsPage.
const MaxSubmissionsPage = 1000

// ListSubmissionsPage returns up to limit (1..MaxSubmissionsPage) of a
// competition's submissions in commit order, starting after submission
// after (the previous page's last id; "" for the first page). An after that
// is not a submission of the competition is ErrNotFound: a cursor names a
// row, so a page never silently restarts.
func (db *DB) ListSubmissionsPage(ctx context.Context, competitionID, after string, limit int) ([]competition.Submission, error) {
	if limit < 1 || limit > MaxSubmissionsPage {
		return nil, fmt.Errorf("page limit %d outside 1..%d", limit, MaxSubmissionsPage)
	}
	if after == "" {
		return queryAll(ctx, db.sql, scanSubmission, db.rebind(`SELECT `+submissionColumns+` FROM submissions s
			WHERE s.competition_id = ? ORDER BY s.committed_at, s.id LIMIT ?`), competitionID, limit)
	}
	var at int64
	err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT committed_at FROM submissions WHERE id = ? AND competition_id = ?`),
		after, competitionID).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("cursor %s: submission of %s: %w", after, competitionID, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return queryAll(ctx, db.sql, scanSubmission, db.rebind(`SELECT `+submissionColumns+` FROM submissions s
		WHERE s.competition_id = ? AND (s.committed_at > ? OR (s.committed_at = ? AND s.id > ?))
		ORDER BY s.committed_at, s.id LIMIT ?`), competitionID, at, at, after, limit)
}
