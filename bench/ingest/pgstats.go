package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// pgStats is what -pgstats reports of the hub phase on PostgreSQL: the
// commits and inserted rows the bench database counted, and the CPU its
// backends used, per accepted submission. It tells the database's share
// of the work, which process CPU (the hub's alone) leaves out.
type pgStats struct {
	db                *sql.DB
	commits, inserted int64
	cpu               map[int]time.Duration // backend pid → CPU at the start
}

// startPGStats reads the counters at the start of the phase.
func startPGStats(ctx context.Context, db *sql.DB) (*pgStats, error) {
	s := &pgStats{db: db}
	var err error
	if s.commits, s.inserted, err = s.counters(ctx); err != nil {
		return nil, err
	}
	s.cpu, err = s.backendCPU(ctx)
	return s, err
}

// report reads the counters again, done submissions later. PostgreSQL's
// backends flush their statistics when idle, within 10 s (PGSTAT_IDLE_INTERVAL),
// hence the wait; the CPU is read first, before the wait's own queries.
func (s *pgStats) report(ctx context.Context, done int) (string, error) {
	cpu, err := s.backendCPU(ctx)
	if err != nil {
		return "", err
	}
	var used time.Duration
	for pid, t := range cpu {
		used += t - s.cpu[pid]
	}
	time.Sleep(11 * time.Second)
	commits, inserted, err := s.counters(ctx)
	if err != nil {
		return "", err
	}
	n := float64(done)
	return fmt.Sprintf("postgres   %.3f commits, %.2f rows inserted, backend CPU %s a submission",
		float64(commits-s.commits)/n, float64(inserted-s.inserted)/n, (used / time.Duration(done)).Round(time.Microsecond)), nil
}

func (s *pgStats) counters(ctx context.Context) (commits, inserted int64, err error) {
	if _, err := s.db.ExecContext(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
		return 0, 0, err
	}
	err = s.db.QueryRowContext(ctx, `SELECT xact_commit, tup_inserted FROM pg_stat_database WHERE datname = current_database()`).Scan(&commits, &inserted)
	return commits, inserted, err
}

// backendCPU reads the user and system CPU of the bench database's
// backends from /proc (the server runs on this machine).
func (s *pgStats) backendCPU(ctx context.Context) (map[int]time.Duration, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]time.Duration{}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone already
		}
		// Fields after the command's closing parenthesis: utime and stime
		// are the 12th and 13th, in clock ticks (100 a second on Linux).
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[pid] = time.Duration(ut+st) * 10 * time.Millisecond
	}
	return out, rows.Err()
}
