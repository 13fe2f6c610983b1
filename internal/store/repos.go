package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// PutRepoBundle stores a git bundle under the hex sha256 of its bytes and
// returns that digest. Storing the same bytes again is harmless: the first
// uploader stays recorded.
func (db *DB) PutRepoBundle(ctx context.Context, data []byte, by string, now time.Time) (string, error) {
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	_, err := db.sql.ExecContext(ctx, db.rebind(`INSERT INTO repo_bundles (digest, size, data, created_by, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING`), digest, len(data), data, by, micros(now))
	if err != nil {
		return "", fmt.Errorf("store repository bundle %s: %w", digest, err)
	}
	return digest, nil
}

// RepoBundle returns the bundle stored under digest.
func (db *DB) RepoBundle(ctx context.Context, digest string) ([]byte, error) {
	var data []byte
	err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT data FROM repo_bundles WHERE digest = ?`), digest).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("repository bundle %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("repository bundle %s: %w", digest, err)
	}
	return data, nil
}
