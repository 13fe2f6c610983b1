// Package runner is the evaluation engine: it drives a kind's
// eval.Evaluator over its items with bounded concurrency, skips the items
// already done (so an interrupted evaluation resumes), passes each result to
// a serialised sink as soon as it is done, and stops at a deadline so a
// long evaluation runs in time slices. Only the evaluate worker
// (internal/jobs), local evaluation (internal/app) and the validator node
// run evaluations; the import rules keep every other service away from it.
//
// It depends only on the standard library and the contract in internal/eval.
package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"crucible/internal/eval"
)

// ErrSliceExpired is returned by Run when Config.Deadline passed before
// every item was evaluated; the results produced so far were delivered to
// the sink, so the job can resume later by skipping them.
var ErrSliceExpired = errors.New("eval: time slice expired before all items were evaluated")

// Config configures Run.
type Config struct {
	// Concurrency is the number of items evaluated at once; values below 1 mean 1.
	Concurrency int
	// Skip lists indexes that are already done and must not be evaluated.
	Skip map[int]bool
	// Deadline, when non-zero, stops the dispatch of new items once it
	// passes; in-flight items finish and Run returns ErrSliceExpired.
	Deadline time.Time
	// Sink receives every eval.Result as soon as it is done. Calls are
	// serialised. A Sink error stops the run like an evaluation error.
	Sink func(eval.Result) error
	// Progress, when set, is called after each eval.Result (serialised, after
	// Sink) with done counting skipped and finished items and total = Len().
	Progress func(done, total int)
}

// Run evaluates every index in [0, ev.Len()) not in cfg.Skip with
// cfg.Concurrency workers, passing each eval.Result to cfg.Sink as soon as it is
// done. It stops at the first error, cancelling the items in flight, and
// returns that error wrapped with the item index ("eval: item 7: ..."). It
// also stops when cfg.Deadline passes, finishing the items in flight and
// returning ErrSliceExpired. Every eval.Result produced is passed to Sink before
// Run returns, whatever the outcome.
func Run(ctx context.Context, ev eval.Evaluator, cfg Config) error {
	if ev == nil {
		return errors.New("eval: nil Evaluator")
	}
	total := ev.Len()
	todo := make([]int, 0, total)
	done := 0
	for i := 0; i < total; i++ {
		if cfg.Skip[i] {
			done++
			continue
		}
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return ctx.Err()
	}
	workers := max(cfg.Concurrency, 1)
	workers = min(workers, len(todo))

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		mu         sync.Mutex
		firstErr   error
		sinkBroken bool
	)
	fail := func(err error) { // mu held
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	// Workers take the next index themselves, as a plain load generator
	// does: a dispatching goroutine handing each index over an unbuffered
	// channel cost a goroutine wake-up per item, measurable when the model
	// answers in microseconds (bench/eval-throughput).
	var next atomic.Int64
	var expired atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			// Each worker's own context: net/http derives a cancelable
			// context from each request's, and registering it with (and
			// removing it from) a parent shared by every worker takes
			// that parent's lock twice an item.
			wctx, wcancel := context.WithCancel(runCtx)
			defer wcancel()
			for wctx.Err() == nil {
				passed := !cfg.Deadline.IsZero() && !time.Now().Before(cfg.Deadline)
				n := int(next.Add(1) - 1)
				if n >= len(todo) {
					return
				}
				if passed { // the claimed item stays undone
					expired.Store(true)
					return
				}
				i := todo[n]
				r, err := ev.Evaluate(wctx, i)
				mu.Lock()
				if err != nil {
					fail(fmt.Errorf("eval: item %d: %w", i, err))
					mu.Unlock()
					continue
				}
				r.Index = i
				if !sinkBroken && cfg.Sink != nil {
					if err := cfg.Sink(r); err != nil {
						sinkBroken = true
						fail(fmt.Errorf("eval: item %d: sink: %w", i, err))
						mu.Unlock()
						continue
					}
				}
				done++
				if cfg.Progress != nil {
					cfg.Progress(done, total)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	switch {
	case firstErr != nil:
		return firstErr
	case ctx.Err() != nil:
		return fmt.Errorf("eval: %w", ctx.Err())
	case expired.Load():
		return ErrSliceExpired
	}
	return nil
}
