package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"crucible/internal/competition"
)

// Usage is what one key has put on the hub within a window: how many rows,
// and when the oldest of them was made (zero when there are none), which is
// when the window next frees a slot.
type Usage struct {
	Count  int
	Oldest time.Time
}

// CompetitionsCreatedSince counts the competitions (pools included) that key
// created after since.
func (db *DB) CompetitionsCreatedSince(ctx context.Context, key string, since time.Time) (Usage, error) {
	return db.usage(ctx, `SELECT COUNT(*), COALESCE(MIN(created_at), 0) FROM competitions WHERE created_by = ? AND created_at > ?`, key, since)
}

// SubmissionQuota counts, in one query, the submissions that submitter
// committed after since in every competition and pool, and those of them
// (of any time) that are queued or running: the two counts a new
// submission is checked against.
func (db *DB) SubmissionQuota(ctx context.Context, submitter string, since time.Time) (Usage, int, error) {
	var u Usage
	var oldest int64
	var open int
	st, err := db.readStmt(ctx, `SELECT
		(SELECT COUNT(*) FROM submissions WHERE submitter = ? AND committed_at > ?),
		(SELECT COALESCE(MIN(committed_at), 0) FROM submissions WHERE submitter = ? AND committed_at > ?),
		(SELECT COUNT(*) FROM submissions WHERE submitter = ? AND state IN (?, ?))`)
	if err == nil {
		err = st.QueryRowContext(ctx, submitter, micros(since), submitter, micros(since), submitter, string(competition.StateQueued), string(competition.StateRunning)).
			Scan(&u.Count, &oldest, &open)
	}
	if err != nil {
		return u, 0, fmt.Errorf("count the submissions of %s: %w", submitter, err)
	}
	if u.Count > 0 {
		u.Oldest = fromMicros(oldest)
	}
	return u, open, nil
}

// KeyUsage is what SubmissionQuotasTx reads of one key: its submissions
// in the window and how many of its submissions are queued or running.
type KeyUsage struct {
	Usage
	Open int
}

// SubmissionQuotasTx reads, inside tx and in one statement, SubmissionQuota's
// two counts for each of submitters (absent: none). The intake reads them
// for a whole batch under the keys' quota locks (Locks.Quotas), so that a
// key's concurrent submissions cannot all pass on one count.
func (db *DB) SubmissionQuotasTx(ctx context.Context, tx *sql.Tx, submitters []string, since time.Time) (map[string]KeyUsage, error) {
	// Two grouped reads, each on its index (submitter, committed_at) and
	// (submitter, state); rows 'd' are the window's, 'o' the open ones.
	args := appendStrings(nil, submitters)
	args = append(args, micros(since))
	args = appendStrings(args, submitters)
	args = append(args, string(competition.StateQueued), string(competition.StateRunning))
	rows, err := tx.QueryContext(ctx, db.rebind(`SELECT 'd', submitter, COUNT(*), MIN(committed_at) FROM submissions
		WHERE submitter IN (`+marks(len(submitters))+`) AND committed_at > ? GROUP BY submitter
		UNION ALL
		SELECT 'o', submitter, COUNT(*), 0 FROM submissions
		WHERE submitter IN (`+marks(len(submitters))+`) AND state IN (?, ?) GROUP BY submitter`), args...)
	if err != nil {
		return nil, fmt.Errorf("count the submissions of %d keys: %w", len(submitters), err)
	}
	defer rows.Close()
	out := map[string]KeyUsage{}
	for rows.Next() {
		var kind, key string
		var n int
		var oldest int64
		if err := rows.Scan(&kind, &key, &n, &oldest); err != nil {
			return nil, err
		}
		u := out[key]
		if kind == "o" {
			u.Open = n
		} else {
			u.Count, u.Oldest = n, fromMicros(oldest)
		}
		out[key] = u
	}
	return out, rows.Err()
}

func (db *DB) usage(ctx context.Context, query, key string, since time.Time) (Usage, error) {
	var u Usage
	var oldest int64
	if err := db.sql.QueryRowContext(ctx, db.rebind(query), key, micros(since)).Scan(&u.Count, &oldest); err != nil {
		return u, fmt.Errorf("count what %s made since %s: %w", key, since.Format(time.RFC3339), err)
	}
	if u.Count > 0 {
		u.Oldest = fromMicros(oldest)
	}
	return u, nil
}
