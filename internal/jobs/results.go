package jobs

import (
	"context"
	"sync"

	"crucible/internal/eval"
	"crucible/internal/store"
)

// resultWriter stores an evaluation's results in the background with group
// commit: while one transaction commits, the results finishing meanwhile
// queue up and go in the next one. An idle evaluation still writes each
// result as soon as it is done; a busy one pays one commit per batch
// instead of one per item, and its workers never wait on the database
// (runner.Run calls the sink under its lock, so a synchronous write held up
// every worker for a commit per item).
//
// Crash safety is unchanged: a result is in the store once its batch
// committed, and one lost in a crash before that is evaluated again by the
// rerun (DoneItems does not list it); InsertResults ignores rows already
// stored, so no item is ever written twice.
type resultWriter struct {
	ctx     context.Context
	db      *store.DB
	id      string
	written func(eval.Result) // called for each result once it is stored

	mu      sync.Mutex
	pending []eval.Result
	err     error // the first failed write; later adds report it

	wake chan struct{} // one token: there is something to write
	done chan struct{} // closed when the loop has written everything
}

func newResultWriter(ctx context.Context, db *store.DB, submissionID string, written func(eval.Result)) *resultWriter {
	w := &resultWriter{ctx: ctx, db: db, id: submissionID, written: written,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.loop()
	return w
}

// add queues r for writing. It fails once a write has failed, which stops
// the run as a failing synchronous sink did.
func (w *resultWriter) add(r eval.Result) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.pending = append(w.pending, r)
	select {
	case w.wake <- struct{}{}:
	default: // the loop is already due to write
	}
	return nil
}

// close writes what is still queued and returns the first write error.
// No add may follow it.
func (w *resultWriter) close() error {
	close(w.wake)
	<-w.done
	return w.err
}

// loop writes after every wake-up; a token sent by an add is delivered even
// after close, so nothing added is left behind.
func (w *resultWriter) loop() {
	defer close(w.done)
	for range w.wake {
		w.flush()
	}
}

func (w *resultWriter) flush() {
	w.mu.Lock()
	batch := w.pending
	w.pending = nil
	failed := w.err != nil
	w.mu.Unlock()
	if failed || len(batch) == 0 {
		return
	}
	if err := w.db.InsertResults(w.ctx, w.id, batch); err != nil {
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
		return
	}
	for _, r := range batch {
		w.written(r)
	}
}
