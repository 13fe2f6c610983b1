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
	// Linger bounds how long a drainer waits, while another batch is
	// being written, for as many values as the last batch held before it
	// takes the next (it wakes as soon as they are there). Without it,
	// several writers split what waits into small batches, each paying a
	// transaction's fixed cost: bench/ingest on PostgreSQL measured 5.8
	// submissions a batch with 4 writers and a plain sleep, 11.6–11.8
	// with 2 writers waiting this way (2,077–2,440/s → 3,323–3,698/s,
	// bench/README.md's ingest, sixth round). A drainer
	// never waits when no other batch is being written: a lone value is
	// written at once, and one writer (SQLite) never idles, since what
	// arrives while it writes is the next batch anyway. Zero: no wait.
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
	writing int // drainers inside Write
	last    int // the size of the batch taken last
	// arrived is closed when len(pending) reaches want, for the drainers
	// lingering (nil: none is).
	arrived chan struct{}
	want    int
}

// Add queues v for the next batch. It returns at once; the caller waits
// for Write to report on v.
func (q *Queue[T]) Add(v T) {
	q.mu.Lock()
	q.pending = append(q.pending, v)
	if q.arrived != nil && len(q.pending) >= q.want {
		close(q.arrived)
		q.arrived = nil
	}
	if q.running < max(q.Writers, 1) {
		q.running++
		go q.drain()
	}
	q.mu.Unlock()
}

// drain writes batches until none is waiting.
func (q *Queue[T]) drain() {
	q.mu.Lock()
	for {
		q.linger()
		n := min(len(q.pending), q.Max)
		if n == 0 {
			q.running--
			q.mu.Unlock()
			return
		}
		batch := slices.Clone(q.pending[:n])
		q.pending = slices.Delete(q.pending, 0, n)
		q.last = n
		q.writing++
		q.mu.Unlock()
		q.Write(batch)
		q.mu.Lock()
		q.writing--
	}
}

// linger waits, with q.mu held, up to Linger for as many values as the
// last batch held, while another batch is being written (see Linger).
func (q *Queue[T]) linger() {
	want := q.last
	if q.Linger <= 0 || q.writing == 0 || len(q.pending) == 0 || len(q.pending) >= want {
		return
	}
	timer := time.NewTimer(q.Linger)
	defer timer.Stop()
	for len(q.pending) > 0 && len(q.pending) < want {
		if q.arrived == nil {
			q.arrived, q.want = make(chan struct{}), want
		}
		// Lingering drainers share arrived: it closes at the smallest
		// want, and each checks its own again.
		q.want = min(q.want, want)
		arrived := q.arrived
		q.mu.Unlock()
		select {
		case <-arrived:
			q.mu.Lock()
		case <-timer.C:
			q.mu.Lock()
			return
		}
	}
}
