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

// KeyUsage is what SubmissionQuotasTx reads of one key: its submissions
// in the window and how many of its submissions are queued or running.
type KeyUsage struct {
	Usage
	Open int
}

// SubmissionQuotasTx reads, inside tx and in one statement, for each of
// submitters (absent: none) the submissions it committed after since in
// every competition and pool, and those of them (of any time) that are
// queued or running: the two counts a new submission is checked against. The intake reads them
// for a whole batch under the keys' quota locks (Locks.Quotas), so that a
// key's concurrent submissions cannot all pass on one count;
// EntrantsAndQuotasTx reads them with a competition's entrants.
func (db *DB) SubmissionQuotasTx(ctx context.Context, tx *sql.Tx, submitters []string, since time.Time) (map[string]KeyUsage, error) {
	if len(submitters) == 0 {
		return map[string]KeyUsage{}, nil
	}
	query, args := quotaQuery(db.dialect, submitters, since)
	rows, err := tx.QueryContext(ctx, db.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("count the submissions of %d keys: %w", len(submitters), err)
	}
	defer rows.Close()
	out := map[string]KeyUsage{}
	for rows.Next() {
		var kind, id, spec, key string
		var n int64
		if err := rows.Scan(&kind, &id, &spec, &key, &n); err != nil {
			return nil, err
		}
		addQuotaRow(out, kind, key, n)
	}
	return out, rows.Err()
}

// quotaQuery reads SubmissionQuotasTx's counts as rows shaped as
// EntrantsAndQuotasTx's (kind, ”, ”, submitter, n), so the two may go in one
// statement (entrantsQuery): 'q' a key's submissions since, 'm' the
// oldest of them, 'o' its queued or running ones, each a read on its
// index, (submitter, committed_at) and (submitter, state). On PostgreSQL
// each key is its own lookup, driven from an array, as in entrantsQuery:
// grouped over an IN list, statistics from before a burst of submissions
// (few in the window) led it to walk the whole window through the
// (competition_id, committed_at) index instead.
func quotaQuery(dialect Dialect, submitters []string, since time.Time) (string, []any) {
	queued, running := string(competition.StateQueued), string(competition.StateRunning)
	if dialect == Postgres {
		return `SELECT 'q', '', '', k.v, (SELECT COUNT(*) FROM submissions WHERE submitter = k.v AND committed_at > ?) FROM unnest(?::text[]) AS k(v)
		UNION ALL
		SELECT 'm', '', '', k.v, (SELECT COALESCE(MIN(committed_at), 0) FROM submissions WHERE submitter = k.v AND committed_at > ?)
			FROM unnest(?::text[]) AS k(v)
		UNION ALL
		SELECT 'o', '', '', k.v, (SELECT COUNT(*) FROM submissions WHERE submitter = k.v AND state IN (?, ?)) FROM unnest(?::text[]) AS k(v)`,
			[]any{micros(since), submitters, micros(since), submitters, queued, running, submitters}
	}
	in := `submitter IN (` + marks(len(submitters)) + `)`
	var args []any
	for range 3 {
		for _, k := range submitters {
			args = append(args, k)
		}
		args = append(args, micros(since))
	}
	args = append(args[:len(args)-1], queued, running)
	return `SELECT 'q', '', '', submitter, COUNT(*) FROM submissions WHERE ` + in + ` AND committed_at > ? GROUP BY submitter
		UNION ALL
		SELECT 'm', '', '', submitter, MIN(committed_at) FROM submissions WHERE ` + in + ` AND committed_at > ? GROUP BY submitter
		UNION ALL
		SELECT 'o', '', '', submitter, COUNT(*) FROM submissions WHERE ` + in + ` AND state IN (?, ?) GROUP BY submitter`, args
}

// addQuotaRow adds one row of quotaQuery to out; a zero (no submissions)
// adds nothing, so a key without any is absent.
func addQuotaRow(out map[string]KeyUsage, kind, key string, n int64) {
	if n == 0 {
		return
	}
	u := out[key]
	switch kind {
	case "q":
		u.Count = int(n)
	case "m":
		u.Oldest = fromMicros(n)
	case "o":
		u.Open = int(n)
	}
	out[key] = u
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
