package jobs

import (
	"context"
	"sync"

	"crucible/internal/eval"
	"crucible/internal/store"
)

// maxResultBatch bounds the results one write of a resultWriter commits.
const maxResultBatch = 256

// resultWriter stores one job's item results as they finish, off the
// evaluation's path: the runner's sink is serialised, so writing each
// result there in its own commit made every item of a job wait for the
// commits of the items before it (the database's commit latency capped a
// job's rate, whatever the model's). The writer commits, in one statement,
// every result that finished while its previous write was committing, so
// under load one commit carries many items and when idle each result is
// written at once. A result counts as stored (stored is called) only once
// committed; a crash loses the queued ones, which a rerun evaluates again
// (InsertResults keeps a row already stored, so none is written twice).
type resultWriter struct {
	ctx    context.Context
	db     *store.DB
	id     string
	stored func(eval.Result)
	in     chan eval.Result
	done   chan struct{}

	mu  sync.Mutex
	err error // the first failed write's
}

// newResultWriter starts the writer of submission id's results; queue is
// how many results may wait for a write before Write blocks.
func newResultWriter(ctx context.Context, db *store.DB, id string, queue int, stored func(eval.Result)) *resultWriter {
	w := &resultWriter{ctx: ctx, db: db, id: id, stored: stored, in: make(chan eval.Result, queue), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *resultWriter) loop() {
	defer close(w.done)
	batch := make([]eval.Result, 0, maxResultBatch)
	for r := range w.in {
		batch = append(batch[:0], r)
	fill:
		for len(batch) < maxResultBatch {
			select {
			case r, ok := <-w.in:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if w.failed() != nil {
			continue // drain: the run is stopping
		}
		if err := w.db.InsertResults(w.ctx, w.id, batch); err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			continue
		}
		for _, r := range batch {
			w.stored(r)
		}
	}
}

func (w *resultWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Write queues r for storing; it blocks while the queue is full, and
// returns the error of an earlier failed write, which stops the run.
func (w *resultWriter) Write(r eval.Result) error {
	if err := w.failed(); err != nil {
		return err
	}
	w.in <- r
	return nil
}

// Close waits until every queued result is stored and returns the first
// failed write's error. Call it once, after the run.
func (w *resultWriter) Close() error {
	close(w.in)
	<-w.done
	return w.failed()
}
