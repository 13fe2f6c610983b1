// Package benchdb gives benchmarks a database of their own: a fresh SQLite
// file, or a fresh database on a PostgreSQL server, removed at the end, so a
// run never measures (or damages) anything it did not create.
package benchdb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// Fresh returns the URL of a new SQLite file (server "") or of a new
// PostgreSQL database on server, and a function that removes it. name
// tells the benchmark's files and databases apart.
func Fresh(ctx context.Context, server, name string) (string, func(), error) {
	if server == "" {
		dir, err := os.MkdirTemp("", "crucible-bench-"+name+"-")
		if err != nil {
			return "", nil, err
		}
		return filepath.Join(dir, "crucible.db"), func() { os.RemoveAll(dir) }, nil
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", nil, err
	}
	admin, err := sql.Open("pgx", server)
	if err != nil {
		return "", nil, err
	}
	db := fmt.Sprintf("crucible_bench_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+db); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create database on %s: %w", u.Redacted(), err)
	}
	u.Path = "/" + db
	return u.String(), func() {
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE "+db+" WITH (FORCE)")
		admin.Close()
	}, nil
}
