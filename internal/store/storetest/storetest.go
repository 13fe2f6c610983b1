// Package storetest gives tests a fresh database of each kind: a SQLite file
// always, and a PostgreSQL database when CRUCIBLE_TEST_POSTGRES holds a URL
// of a server where the test may create databases.
package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crucible/internal/store"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx database/sql driver
)

// EnvPostgres names the variable holding the PostgreSQL server URL for tests.
const EnvPostgres = "CRUCIBLE_TEST_POSTGRES"

// Database is one fresh database for a test.
type Database struct {
	Name string // "sqlite" or "postgres"
	URL  string
}

// Databases returns a fresh SQLite database and, when CRUCIBLE_TEST_POSTGRES
// is set, a fresh PostgreSQL database that is dropped when the test ends.
// It logs that PostgreSQL is skipped when the variable is unset.
func Databases(t testing.TB) []Database {
	t.Helper()
	dbs := []Database{{Name: "sqlite", URL: filepath.Join(t.TempDir(), "crucible.db")}}
	if pg := Postgres(t); pg != "" {
		dbs = append(dbs, Database{Name: "postgres", URL: pg})
	}
	return dbs
}

// Postgres creates a fresh PostgreSQL database and returns its URL, or ""
// (with a log line saying so) when CRUCIBLE_TEST_POSTGRES is not set.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Logf("PostgreSQL part skipped: set %s=postgres://user@host:5432/db to run it", EnvPostgres)
		return ""
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", EnvPostgres, err)
	}
	defer admin.Close()
	name := fmt.Sprintf("crucible_test_%d", time.Now().UnixNano())
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database on %s: %v", base, err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	u.Path = "/" + strings.TrimPrefix(name, "/")
	return u.String()
}

// Open opens (and migrates) the store on d, closed when the test ends.
func Open(t testing.TB, d Database) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), d.URL)
	if err != nil {
		t.Fatalf("open %s: %v", d.Name, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
