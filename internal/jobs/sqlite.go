package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"crucible/internal/store"
)

// lockSQLite makes this process the only one using the SQLite database: it
// takes an exclusive flock on "<database file>.lock", which the kernel
// releases when the process dies, however it dies. Without it two
// processes (say `serve` and `worker`) could both run the queue on one
// file, and a job running in one would look dead to the other. It returns
// nil (and no error) for an in-memory database.
func lockSQLite(ctx context.Context, db *store.DB) (*os.File, error) {
	var file string
	if err := db.SQL().QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		return nil, fmt.Errorf("find the SQLite database file: %w", err)
	}
	if file == "" {
		return nil, nil
	}
	path := file + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("SQLite database %s is in use by another Crucible process (pid %s): on SQLite only one process may serve or work; stop it, or use PostgreSQL to run several",
				file, strings.TrimSpace(string(owner)))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// rescueAtStart puts back every job left running: on SQLite, with the
// lock held, no other process can be working one, so each was held by a
// process that died and can resume now instead of after RescueAfter. A
// job out of attempts is discarded, as River's rescuer does.
func rescueAtStart(ctx context.Context, db *store.DB, logger *slog.Logger) error {
	exec := driverFor(db).GetExecutor()
	// Every running job started before now; the margin absorbs clock steps.
	horizon := time.Now().Add(24 * time.Hour)
	var afterID int64
	for {
		stuck, err := exec.JobGetStuck(ctx, &riverdriver.JobGetStuckParams{AfterID: afterID, Max: 1000, StuckHorizon: horizon})
		if err != nil {
			return fmt.Errorf("find jobs left running: %w", err)
		}
		if len(stuck) == 0 {
			return nil
		}
		now := time.Now().UTC()
		p := &riverdriver.JobRescueManyParams{StuckHorizon: horizon}
		for _, j := range stuck {
			afterID = j.ID
			msg, _ := json.Marshal(rivertype.AttemptError{At: now, Attempt: max(j.Attempt, 0),
				Error: "its process died (SQLite lock was free at start): rescued at start"})
			state, finalized := rivertype.JobStateAvailable, (*time.Time)(nil)
			if j.Attempt >= j.MaxAttempts {
				state, finalized = rivertype.JobStateDiscarded, &now
			}
			p.ID, p.Error = append(p.ID, j.ID), append(p.Error, msg)
			p.State, p.FinalizedAt, p.ScheduledAt = append(p.State, string(state)), append(p.FinalizedAt, finalized), append(p.ScheduledAt, now)
			logger.Info("job left running by a dead process rescued at start", "component", "jobs", "job", j.ID, "kind", j.Kind, "state", state)
		}
		if _, err := exec.JobRescueMany(ctx, p); err != nil {
			return fmt.Errorf("rescue jobs left running: %w", err)
		}
	}
}
