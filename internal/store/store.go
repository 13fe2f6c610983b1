// Package store owns all persistence: competitions, their items, submissions,
// per-item results and request nonces, on embedded SQLite (the default) or
// PostgreSQL. Both run the same SQL (a common subset; see migrations/) through
// database/sql and pass the same test suite. The job queue shares the
// database (see internal/jobs) so that a write and the job it starts commit
// together. The store must never import the API, the job queue or eval kinds.
package store

import (
	"context"
	"crucible/internal/groupcommit"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrNotFound is returned when a requested row does not exist.
var ErrNotFound = errors.New("not found")

// Dialect names the database behind a DB.
type Dialect string

// The supported databases.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is the store. It is safe for concurrent use.
type DB struct {
	sql *sql.DB
	// read serves the hot path's reads outside any transaction. On SQLite
	// it is a pool of its own read-only connections: sql is one connection,
	// so a read there waits for whatever write holds it (a whole batch of
	// submissions), while WAL lets readers run beside the writer and see
	// every committed transaction. On PostgreSQL it is sql.
	read *sql.DB
	// stmts holds statements prepared on read, by query (readStmt).
	stmts   sync.Map
	dialect Dialect
	nonces  *groupcommit.Queue[*nonceUse]
	toEnter enterCache
	// path is the SQLite file, for opening read.
	path string
}

// Open connects to the database named by url — a postgres:// URL, or else a
// SQLite file path (optionally prefixed with sqlite:) — and applies pending
// migrations.
func Open(ctx context.Context, url string) (*DB, error) {
	db, err := connect(url)
	if err != nil {
		return nil, err
	}
	if err := db.sql.PingContext(ctx); err != nil {
		db.sql.Close()
		return nil, fmt.Errorf("connect to %s database: %w", db.dialect, err)
	}
	if err := db.migrate(ctx); err != nil {
		db.sql.Close()
		return nil, err
	}
	if err := db.openReaders(); err != nil {
		db.sql.Close()
		return nil, err
	}
	return db, nil
}

// readConns is how many read-only connections a SQLite DB keeps beside its
// writer: enough for the concurrent requests' reads on a few cores.
const readConns = 4

// openReaders opens db.read, once the schema is migrated (a read-only
// connection cannot create the WAL files or tables).
func (db *DB) openReaders() error {
	if db.dialect != SQLite {
		db.read = db.sql
		return nil
	}
	dsn := "file:" + db.path + "?mode=ro&_pragma=busy_timeout(10000)&_pragma=query_only(1)"
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("open sqlite %s for reading: %w", db.path, err)
	}
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	db.read = r
	return nil
}

// IsPostgres reports whether url names a PostgreSQL database.
func IsPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

func connect(url string) (*DB, error) {
	if IsPostgres(url) {
		s, err := sql.Open("pgx", url)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		// Idle connections are kept up to the open limit: database/sql's
		// default keeps 2, so under load every other query would close its
		// connection and the next would dial and authenticate a new one
		// (the leaderboard benchmark's p99 of a second at a p50 of 3 ms).
		s.SetMaxOpenConns(32)
		s.SetMaxIdleConns(32)
		return newDB(&DB{sql: s, dialect: Postgres}), nil
	}
	path := strings.TrimPrefix(url, "sqlite:")
	if path == "" {
		return nil, errors.New("empty database path")
	}
	// WAL lets readers run beside the writer; IMMEDIATE transactions take the
	// write lock up front so two writers never deadlock on lock upgrades. One
	// connection, as the River SQLite driver recommends: SQLite serialises
	// writes anyway, and a single connection cannot return SQLITE_BUSY.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	s, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s.SetMaxOpenConns(1)
	return newDB(&DB{sql: s, dialect: SQLite, path: path}), nil
}

// SQL returns the underlying pool (the job queue uses it).
func (db *DB) SQL() *sql.DB { return db.sql }

// Dialect tells which database this is.
func (db *DB) Dialect() Dialect { return db.dialect }

// readStmt returns query (with ? placeholders) prepared on db.read, once
// per process: SQLite otherwise parses a statement each time it runs,
// about a third of a small query's time, and the hot path's reads run
// on every request. database/sql prepares it on each connection it uses.
func (db *DB) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := db.stmts.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.read.PrepareContext(ctx, db.rebind(query))
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.stmts.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// Close closes the pools.
func (db *DB) Close() error {
	db.stmts.Range(func(_, s any) bool {
		s.(*sql.Stmt).Close()
		return true
	})
	if db.read != nil && db.read != db.sql {
		if err := db.read.Close(); err != nil {
			db.sql.Close()
			return err
		}
	}
	return db.sql.Close()
}

// rebind turns ? placeholders into $n for PostgreSQL.
func (db *DB) rebind(q string) string {
	if db.dialect != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// InTx runs fn in a transaction, committing if it returns nil.
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (db *DB) migrate(ctx context.Context) error {
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		if err := db.lockMigrations(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`CREATE TABLE IF NOT EXISTS crucible_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("create migrations table: %w", err)
	}
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	seen := map[int]string{}
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number", name)
		}
		// Versions are the applied-migration keys: a second file with a used
		// number would be skipped silently (two branches both adding 0007).
		if other, ok := seen[version]; ok {
			return fmt.Errorf("migrations %s and %s share version %d", other, name, version)
		}
		seen[version] = name
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			return err
		}
		err = db.InTx(ctx, func(tx *sql.Tx) error {
			if err := db.lockMigrations(ctx, tx); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, db.rebind(`SELECT COUNT(*) FROM crucible_migrations WHERE version = ?`), version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range splitStatements(string(body)) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", base, err)
				}
			}
			_, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO crucible_migrations (version, applied_at) VALUES (?, ?)`),
				version, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration: %w", err)
		}
	}
	return nil
}

// lockMigrations serialises migrations of several processes starting at once
// on PostgreSQL (SQLite's IMMEDIATE transactions already do).
func (db *DB) lockMigrations(ctx context.Context, tx *sql.Tx) error {
	if db.dialect != Postgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(727274001)`)
	return err
}

// splitStatements splits a migration on semicolons at line ends, dropping
// comment-only chunks. Migrations hold no semicolons inside literals.
func splitStatements(body string) []string {
	var out []string
	for _, chunk := range strings.Split(body, ";\n") {
		var lines []string
		for _, l := range strings.Split(chunk, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
				lines = append(lines, l)
			}
		}
		if stmt := strings.TrimSuffix(strings.TrimSpace(strings.Join(lines, "\n")), ";"); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// scanner is a row to scan: *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// queryAll runs a query and scans every row into a slice (empty, not nil,
// when there are none).
func queryAll[T any](ctx context.Context, q querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
