package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

// importBatch is how many competition items one INSERT statement carries.
// Per-row statements cost a round trip (PostgreSQL) or a driver call
// (SQLite) each, which capped imports at ~50,000 items/s on SQLite and far
// less on PostgreSQL; a batch amortises that. On SQLite a batch binds
// 3 × importBatch parameters, well under its limit of 32,766.
const importBatch = 5000

// insertItems stores a competition's items as rows idx 0..n-1 inside tx, in
// batches; a failing batch fails the whole transaction, so an import is
// still all-or-nothing. It copies at most one batch of the items at a time.
func (db *DB) insertItems(ctx context.Context, tx *sql.Tx, id string, items []json.RawMessage) error {
	if db.dialect == Postgres {
		return insertItemsPostgres(ctx, tx, id, items)
	}
	return insertItemsSQLite(ctx, tx, id, items)
}

// insertItemsPostgres sends each batch as one text array that unnest turns
// into rows: one statement and three parameters per batch, whatever its size.
func insertItemsPostgres(ctx context.Context, tx *sql.Tx, id string, items []json.RawMessage) error {
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO competition_items (competition_id, idx, payload)
		SELECT $1, $2::integer + t.o - 1, t.p FROM unnest($3::text[]) WITH ORDINALITY AS t(p, o)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	payloads := make([]string, 0, min(len(items), importBatch))
	for start := 0; start < len(items); start += importBatch {
		payloads = payloads[:0]
		for _, it := range items[start:min(start+importBatch, len(items))] {
			payloads = append(payloads, string(it))
		}
		if _, err := stmt.ExecContext(ctx, id, start, payloads); err != nil {
			return fmt.Errorf("insert items %d..%d: %w", start, start+len(payloads)-1, err)
		}
	}
	return nil
}

// insertItemsSQLite sends each batch as one multi-row INSERT; full batches
// share one prepared statement, the last (shorter) one gets its own.
func insertItemsSQLite(ctx context.Context, tx *sql.Tx, id string, items []json.RawMessage) error {
	var stmt *sql.Stmt
	defer func() {
		if stmt != nil {
			stmt.Close()
		}
	}()
	args := make([]any, 0, 3*min(len(items), importBatch))
	for start := 0; start < len(items); start += importBatch {
		batch := items[start:min(start+importBatch, len(items))]
		if stmt == nil || len(batch) < importBatch {
			if stmt != nil {
				stmt.Close()
			}
			var err error
			if stmt, err = tx.PrepareContext(ctx, multiRowInsert(len(batch))); err != nil {
				return err
			}
		}
		args = args[:0]
		for i, it := range batch {
			args = append(args, id, start+i, string(it))
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("insert items %d..%d: %w", start, start+len(batch)-1, err)
		}
	}
	return nil
}

// multiRowInsert is an INSERT of n competition item rows.
func multiRowInsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO competition_items (competition_id, idx, payload) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?)")
	}
	return b.String()
}
