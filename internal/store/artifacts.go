package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// SetArtifactFacts records what a worker read from an artifact
// submission's verified files: its parameter count and total bytes. The
// rest of the committed spec is unchanged.
func (db *DB) SetArtifactFacts(ctx context.Context, id string, parameters, bytes int64) error {
	return db.InTx(ctx, func(tx *sql.Tx) error {
		q := `SELECT spec FROM submissions WHERE id = ?`
		if db.dialect == Postgres {
			q += ` FOR UPDATE`
		}
		var spec string
		err := tx.QueryRowContext(ctx, db.rebind(q), id).Scan(&spec)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("submission %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		var st storedSpec
		if err := json.Unmarshal([]byte(spec), &st); err != nil {
			return fmt.Errorf("submission %s spec: %w", id, err)
		}
		if st.Artifact == nil {
			return fmt.Errorf("submission %s is not an artifact submission", id)
		}
		st.Artifact.Parameters, st.Artifact.Bytes = parameters, bytes
		b, err := json.Marshal(st)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.rebind(`UPDATE submissions SET spec = ? WHERE id = ?`), string(b), id)
		return err
	})
}
