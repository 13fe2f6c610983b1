package groupcommit

import (
	"sync"
	"testing"
	"time"
)

// call is a queued value: its number and a channel the writer closes.
type call struct {
	n    int
	done chan struct{}
}

// addAll adds callers values from as many goroutines, waits until each is
// written, and checks that each was written exactly once (written counts
// the writes by value; the writer updates it).
func addAll(t *testing.T, q *Queue[call], callers int, written map[int]int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := call{n: i, done: make(chan struct{})}
			q.Add(c)
			<-c.done
		}()
	}
	wg.Wait()
	for i := range callers {
		if written[i] != 1 {
			t.Fatalf("value %d written %d times", i, written[i])
		}
	}
}

// Concurrent callers are each written exactly once, in batches no larger
// than Max, and callers arriving while a batch is written share the next.
func TestEveryValueIsWrittenOnceInBoundedBatches(t *testing.T) {
	const callers, maxBatch = 500, 16
	var mu sync.Mutex
	written := map[int]int{}
	largest, batches := 0, 0
	q := &Queue[call]{Max: maxBatch, Linger: time.Millisecond, Write: func(batch []call) {
		time.Sleep(time.Millisecond) // a commit's latency, so callers pile up
		mu.Lock()
		batches++
		largest = max(largest, len(batch))
		for _, c := range batch {
			written[c.n]++
		}
		mu.Unlock()
		for _, c := range batch {
			close(c.done)
		}
	}}
	addAll(t, q, callers, written)
	if largest > maxBatch {
		t.Fatalf("a batch of %d, Max %d", largest, maxBatch)
	}
	if batches >= callers {
		t.Fatalf("%d batches for %d callers: nothing was grouped", batches, callers)
	}
	q.mu.Lock()
	running := q.running
	q.mu.Unlock()
	if running != 0 {
		t.Fatal("the drainer is still running with nothing queued")
	}
}

// A lone value is written without waiting for company, and the queue
// starts a drainer again after going idle.
func TestALoneValueIsWrittenAndTheQueueRestarts(t *testing.T) {
	got := make(chan int, 2)
	q := &Queue[int]{Max: 8, Linger: time.Hour, Write: func(batch []int) {
		for _, v := range batch {
			got <- v
		}
	}}
	for want := range 2 {
		q.Add(want)
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("wrote %d, want %d", v, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a lone value waited for company (Linger applies only under load)")
		}
		for { // wait for the drainer to exit before the next Add
			q.mu.Lock()
			running := q.running
			q.mu.Unlock()
			if running == 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// With Writers, batches are written side by side, never more at once than
// Writers, and still every value exactly once.
func TestWritersBoundConcurrentBatches(t *testing.T) {
	const callers, writers = 200, 3
	var mu sync.Mutex
	written := map[int]int{}
	inFlight, most := 0, 0
	q := &Queue[call]{Max: 4, Writers: writers, Write: func(batch []call) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // a commit's latency, so batches overlap
		mu.Lock()
		inFlight--
		for _, c := range batch {
			written[c.n]++
		}
		mu.Unlock()
		for _, c := range batch {
			close(c.done)
		}
	}}
	addAll(t, q, callers, written)
	if most > writers || most < 2 {
		t.Fatalf("at most %d batches written at once, want 2..%d", most, writers)
	}
}
