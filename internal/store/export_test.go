package store

import (
	"context"
	"database/sql"
	"fmt"
)

// ImportBatch lets the tests size an import to span several batches.
const ImportBatch = importBatch

// ResponseHash lets the tests hash responses as CompetitionResponseHashes does.
var ResponseHash = responseHash

// ReadPool is the pool the hot path's reads use (db.sql on PostgreSQL).
func ReadPool(db *DB) *sql.DB { return db.read }

// CompetitionResponses returns the raw responses of a competition's
// submissions by submission id and item index: the tests' reference for
// CompetitionResponseHashes (production marks copies from the hashes).
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
