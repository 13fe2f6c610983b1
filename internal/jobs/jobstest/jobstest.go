// Package jobstest runs the job queue in tests: a started queue whose
// evaluate worker runs what services enqueue, and a way to wait for it.
package jobstest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"crucible/internal/clock"
	"crucible/internal/jobs"
	"crucible/internal/store"
)

// Start starts a queue on db that works evaluations with planner, as
// `crucible worker` does; it is stopped when the test ends.
func Start(t testing.TB, db *store.DB, clk clock.Clock, planner jobs.Planner) *jobs.Queue {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	q, err := jobs.New(ctx, jobs.Config{DB: db, Clock: clk, Planner: planner, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := q.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = q.Stop(context.Background())
		q.Close()
	})
	return q
}

// Drain waits until no evaluation of competition competitionID is queued
// or running (the bound only stops a hung test).
func Drain(t testing.TB, q *jobs.Queue, competitionID string) {
	t.Helper()
	for range 6000 {
		inFlight, err := q.InFlight(context.Background(), competitionID)
		if err != nil {
			t.Fatal(err)
		}
		if len(inFlight) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the evaluations of %s did not finish in a minute", competitionID)
}

// Tick runs tick (a pool's Tick, or TickAll), lets the workers finish
// the evaluations it enqueued for competitionIDs and runs it again at the
// same instant (which snapshots and settles); it returns the second run's error.
func Tick(t testing.TB, q *jobs.Queue, tick func(ctx context.Context) error, competitionIDs ...string) error {
	t.Helper()
	if err := tick(context.Background()); err != nil {
		return err
	}
	for _, id := range competitionIDs {
		Drain(t, q, id)
	}
	return tick(context.Background())
}
