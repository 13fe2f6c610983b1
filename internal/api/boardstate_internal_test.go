package api

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Readers arriving while a state query runs must not take its answer (it
// may predate a scoring they must see): they share the next query, which
// starts after they arrived. The in-flight query here is held open while
// a "scoring" commits and readers arrive; every one of them must see it.
func TestStateReadsNeverServeAQueryStartedBeforeTheReader(t *testing.T) {
	var s stateReads
	var committed atomic.Int64 // the version a query started now would read
	var queries atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{})
	query := func(context.Context) boardState {
		v := committed.Load() // a query sees what was committed when it started
		if queries.Add(1) == 1 {
			close(started)
			<-release
		}
		return boardState{version: v}
	}
	first := make(chan boardState)
	go func() { first <- s.read(context.Background(), "c-1", query) }()
	<-started
	committed.Store(1) // a scoring commits while the first query runs
	const readers = 16
	var wg sync.WaitGroup
	got := make([]boardState, readers)
	arrived := make(chan struct{}, readers)
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			arrived <- struct{}{}
			got[i] = s.read(context.Background(), "c-1", query)
		}()
	}
	for range readers {
		<-arrived
	}
	close(release)
	if st := <-first; st.version != 0 {
		t.Fatalf("the first reader saw version %d, want 0", st.version)
	}
	wg.Wait()
	for i, st := range got {
		if st.version != 1 {
			t.Fatalf("reader %d, arrived after the scoring, saw version %d: a query started before it", i, st.version)
		}
	}
	if n := queries.Load(); n < 2 || n > 1+readers {
		t.Fatalf("%d queries for 1+%d readers", n, readers)
	}
}

// A reader whose request ends stops waiting for a state query it joined
// (a hung database must not pin every reader of a competition), while the
// query's owner gets a bounded context, not its caller's cancellation.
func TestAReaderStopsWaitingWhenItsRequestEnds(t *testing.T) {
	var s stateReads
	release := make(chan struct{})
	started := make(chan struct{})
	var ownerDeadline bool
	query := func(ctx context.Context) boardState {
		_, ownerDeadline = ctx.Deadline()
		close(started)
		<-release
		return boardState{version: 1}
	}
	owner := make(chan boardState)
	go func() { owner <- s.read(context.Background(), "c-1", query) }()
	<-started
	// The next query is joined by a second reader, then waited for by a third
	// whose request ends.
	second := make(chan boardState)
	go func() {
		second <- s.read(context.Background(), "c-1", func(context.Context) boardState { return boardState{version: 2} })
	}()
	for {
		s.mu.Lock()
		_, queued := s.next["c-1"]
		s.mu.Unlock()
		if queued {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if st := s.read(ctx, "c-1", nil); !errors.Is(st.err, context.Canceled) {
		t.Fatalf("a reader whose request ended got %+v; want context.Canceled", st)
	}
	close(release)
	if st := <-owner; st.version != 1 || !ownerDeadline {
		t.Fatalf("owner got %+v (deadline %v); want version 1 under a bounded context", st, ownerDeadline)
	}
	if st := <-second; st.version != 2 {
		t.Fatalf("second reader got %+v; want the next query's version 2", st)
	}
}
