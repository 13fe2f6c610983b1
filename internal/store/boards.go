package store

import (
	"context"
	"database/sql"
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
