package store

import (
	"context"
	"time"
)

// ScrapeTimeout bounds each query a metrics scrape makes, so a slow
// database delays a scrape rather than hanging it.
const ScrapeTimeout = 5 * time.Second

// Count is one row of a grouped count: the group's labels and its size.
type Count struct {
	Labels [2]string
	N      int64
}

// CountBy runs query, a constant GROUP BY over two text columns followed
// by a count, and returns its rows.
func (db *DB) CountBy(ctx context.Context, query string) ([]Count, error) {
	rows, err := db.sql.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Count
	for rows.Next() {
		var c Count
		if err := rows.Scan(&c.Labels[0], &c.Labels[1], &c.N); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SubmissionStates counts submissions by their competition's kind and
// their state.
func (db *DB) SubmissionStates(ctx context.Context) ([]Count, error) {
	return db.CountBy(ctx, `SELECT c.kind, s.state, COUNT(*) FROM submissions s
		JOIN competitions c ON c.id = s.competition_id GROUP BY c.kind, s.state`)
}

// TransferCounts counts ledger transfers by kind and asset. Transfers are
// never deleted, so each count only grows.
func (db *DB) TransferCounts(ctx context.Context) ([]Count, error) {
	return db.CountBy(ctx, `SELECT kind, asset, COUNT(*) FROM ledger_transfers GROUP BY kind, asset`)
}
