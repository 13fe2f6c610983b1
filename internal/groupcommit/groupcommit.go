// Package groupcommit gathers concurrent callers' writes into batches: what
// arrives while one batch is being written goes into the next, so under
// load the database sees one commit per batch instead of one per caller,
// and an idle caller is written at once.
package groupcommit

import (
	"slices"
	"sync"
	"time"
)

// Queue batches values of T for Write. Up to Writers goroutines drain it
// while any value waits and exit when none does, so an idle Queue holds
// none and needs no closing. The zero Queue is not usable: set Max and
// Write.
type Queue[T any] struct {
	// Max bounds a batch, so one batch's locks and latency stay small
	// however many wait.
	Max int
	// Linger is how long the drainer waits for more values before a batch
	// when some arrived while it wrote the last one (it is under load; a
	// lone value never waits). Zero: no wait.
	Linger time.Duration
	// Writers bounds how many batches are written at once (0: one). More
	// than one lets a database that runs transactions side by side
	// (PostgreSQL) overlap one batch's round trips and commit with the
	// next's, where one writer would leave it idle between them; Write
	// must then be safe for concurrent use.
	Writers int
	// Write writes a batch and tells each value's caller its outcome
	// (callers wait on something of their own inside T).
	Write func(batch []T)

	mu      sync.Mutex
	pending []T
	running int // drainers
}

// Add queues v for the next batch. It returns at once; the caller waits
// for Write to report on v.
func (q *Queue[T]) Add(v T) {
	q.mu.Lock()
	q.pending = append(q.pending, v)
	if q.running < max(q.Writers, 1) {
		q.running++
		go q.drain()
	}
	q.mu.Unlock()
}

// drain writes batches until none is waiting.
func (q *Queue[T]) drain() {
	for first := true; ; first = false {
		q.mu.Lock()
		if !first && q.Linger > 0 && len(q.pending) > 0 && len(q.pending) < q.Max {
			q.mu.Unlock()
			time.Sleep(q.Linger)
			q.mu.Lock()
		}
		n := min(len(q.pending), q.Max)
		if n == 0 {
			q.running--
			q.mu.Unlock()
			return
		}
		batch := slices.Clone(q.pending[:n])
		q.pending = slices.Delete(q.pending, 0, n)
		q.mu.Unlock()
		q.Write(batch)
	}
}
