package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
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

// EntrantsPlan returns the database's plan of EntrantsAndQuotasTx's
// statement for these arguments. On PostgreSQL it is the plan of the
// prepared statement under plan_cache_mode (force_generic_plan: the plan
// a connection may cache for it and reuse; force_custom_plan: the plan for
// these values); SQLite has one kind of plan.
func (db *DB) EntrantsPlan(ctx context.Context, competitionID string, digests, submitters, quotaKeys []string, since time.Time,
	planCacheMode string) (string, error) {
	query, args := entrantsQuery(db.dialect, competitionID, digests, submitters, quotaKeys, since)
	var lines []string
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		var rows *sql.Rows
		var err error
		if db.dialect == SQLite {
			rows, err = tx.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
		} else {
			literals := make([]string, len(args))
			for i, a := range args {
				switch v := a.(type) {
				case string:
					literals[i] = quote(v)
				case []string:
					quoted := make([]string, len(v))
					for j, s := range v {
						quoted[j] = quote(s)
					}
					literals[i] = "ARRAY[" + strings.Join(quoted, ", ") + "]::text[]"
				default:
					literals[i] = fmt.Sprint(v)
				}
			}
			for _, stmt := range []string{"SET LOCAL plan_cache_mode = " + planCacheMode, "PREPARE entrants_plan AS " + db.rebind(query)} {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return err
				}
			}
			rows, err = tx.QueryContext(ctx, "EXPLAIN EXECUTE entrants_plan("+strings.Join(literals, ", ")+")")
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			return err
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			var line string
			for i := range vals {
				vals[i] = new(any)
			}
			vals[len(cols)-1] = &line // the plan text is the last column on both
			if err := rows.Scan(vals...); err != nil {
				return err
			}
			lines = append(lines, line)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if db.dialect == Postgres {
			_, err = tx.ExecContext(ctx, "DEALLOCATE entrants_plan")
		}
		return err
	})
	return strings.Join(lines, "\n"), err
}

// quote writes s as an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
