package jobs

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"crucible/internal/store"
)

// leaveRunning enqueues an evaluation and marks it as a worker that was
// then killed would leave it: running, attempted, never finished.
func leaveRunning(t *testing.T, q *Queue, db *store.DB, attempt, maxAttempts int) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.EnqueueEvaluationTx(ctx, tx, "sub-1"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().ExecContext(ctx, `UPDATE river_job SET state = 'running', attempt = ?, max_attempts = ?,
		attempted_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE kind = 'evaluate_submission'`, attempt, maxAttempts); err != nil {
		t.Fatal(err)
	}
}

func jobState(t *testing.T, db *store.DB) (state, errs string) {
	t.Helper()
	if err := db.SQL().QueryRowContext(context.Background(),
		`SELECT state, coalesce(json(errors), '') FROM river_job WHERE kind = 'evaluate_submission'`).Scan(&state, &errs); err != nil {
		t.Fatal(err)
	}
	return state, errs
}

func TestSQLiteJobLeftRunningIsRescuedAtStart(t *testing.T) {
	tests := []struct {
		name        string
		attempt     int
		wantState   string
		maxAttempts int
	}{
		{name: "a job with attempts left is available again at once", attempt: 1, maxAttempts: 5, wantState: "available"},
		{name: "a job out of attempts is discarded", attempt: 5, maxAttempts: 5, wantState: "discarded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, filepath.Join(t.TempDir(), "crucible.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			q, err := New(ctx, Config{DB: db})
			if err != nil {
				t.Fatal(err)
			}
			leaveRunning(t, q, db, tt.attempt, tt.maxAttempts)
			q.Close() // the process holding the job is gone

			// RescueAfter stays at its default (5 min): the rescue must not wait for it.
			q2, err := New(ctx, Config{DB: db})
			if err != nil {
				t.Fatal(err)
			}
			defer q2.Close()
			state, errs := jobState(t, db)
			if state != tt.wantState || !strings.Contains(errs, "rescued at start") {
				t.Fatalf("state %q errors %s, want %q with the rescue recorded", state, errs, tt.wantState)
			}
		})
	}
}

func TestSQLiteDatabaseHasOneOwner(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "crucible.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := New(ctx, Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	leaveRunning(t, q, db, 1, 5)

	// A second opener (as a second process would) is refused and rescues nothing.
	other, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := New(ctx, Config{DB: other}); err == nil || !strings.Contains(err.Error(), "in use by another Crucible process") {
		t.Fatalf("second owner: err %v, want refused as in use", err)
	}
	if state, _ := jobState(t, db); state != "running" {
		t.Fatalf("the refused opener changed a live owner's job to %q", state)
	}
	q.Close()
	q3, err := New(ctx, Config{DB: other})
	if err != nil {
		t.Fatalf("after the owner closed: %v", err)
	}
	q3.Close()
}
