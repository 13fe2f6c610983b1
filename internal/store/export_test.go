package store

import "database/sql"

// ImportBatch lets the tests size an import to span several batches.
const ImportBatch = importBatch

// ResponseHash lets the tests hash responses as CompetitionResponseHashes does.
var ResponseHash = responseHash

// ReadPool is the pool the hot path's reads use (db.sql on PostgreSQL).
func ReadPool(db *DB) *sql.DB { return db.read }
