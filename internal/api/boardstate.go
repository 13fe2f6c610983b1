package api

import (
	"context"
	"sync"
	"time"

	"crucible/internal/competition"
	"crucible/internal/seal"
)

// boardState is what a leaderboard read learns from its one query.
type boardState struct {
	c       competition.Competition
	pol     seal.Policy
	version int64
	err     error
}

// stateReads coalesces concurrent leaderboard state reads of one
// competition without serving anything stale: a reader never takes the
// answer of a query that started before it arrived (that query may predate
// a scoring the reader must see), but joins the next one, which starts
// after it did. So at most one query per competition is in flight and one
// waits to start, however many readers there are; each reader waits for at
// most two queries.
type stateReads struct {
	mu sync.Mutex
	// next is the query not yet started that arriving readers join;
	// running is the one in flight (closed when it ends).
	next    map[string]*stateRead
	running map[string]chan struct{}
}

// stateQueryTimeout bounds a shared state query: it runs without any one
// reader's cancellation, so a hung database would otherwise hold it, and
// the competition's next query, for as long as the database lets it. The
// query is one primary-key lookup.
const stateQueryTimeout = 10 * time.Second

type stateRead struct {
	done chan struct{}
	st   boardState
}

// read returns competition id's state from a query started after read was
// called; query runs it (without the caller's cancellation, since other
// readers may share it, but within stateQueryTimeout). A reader that joined
// another's query stops waiting when its own ctx ends.
func (s *stateReads) read(ctx context.Context, id string, query func(context.Context) boardState) boardState {
	s.mu.Lock()
	if r, ok := s.next[id]; ok {
		s.mu.Unlock()
		select {
		case <-r.done:
			return r.st
		case <-ctx.Done():
			return boardState{err: ctx.Err()}
		}
	}
	if s.next == nil {
		s.next, s.running = map[string]*stateRead{}, map[string]chan struct{}{}
	}
	r := &stateRead{done: make(chan struct{})}
	s.next[id] = r
	prev := s.running[id]
	s.mu.Unlock()
	if prev != nil {
		<-prev
	}
	s.mu.Lock()
	delete(s.next, id) // readers from now on join a later query
	s.running[id] = r.done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.running[id] == r.done {
			delete(s.running, id)
		}
		s.mu.Unlock()
		close(r.done)
	}()
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stateQueryTimeout)
	defer cancel()
	r.st = query(qctx)
	return r.st
}
