package groupcommit

import (
	"slices"
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

// gatedWriter is a Write that reports each batch on started and returns
// only when the test sends on its gate.
type gatedWriter struct {
	started chan []int
	gate    chan struct{}
}

func newGatedWriter() *gatedWriter {
	return &gatedWriter{started: make(chan []int, 8), gate: make(chan struct{})}
}

func (w *gatedWriter) write(batch []int) {
	w.started <- batch
	<-w.gate
}

// next returns the next batch Write starts, failing if none does within
// a generous bound.
func (w *gatedWriter) next(t *testing.T) []int {
	t.Helper()
	select {
	case b := <-w.started:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no batch was written")
		return nil
	}
}

// waitRunning waits until q has n drainers.
func waitRunning[T any](q *Queue[T], n int) {
	for {
		q.mu.Lock()
		running := q.running
		q.mu.Unlock()
		if running == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// One writer never lingers: what arrived while it wrote is the next
// batch, and waiting for more would only leave the database idle (a plain
// sleep before each batch cost SQLite ingest a quarter of its rate).
func TestOneWriterNeverLingers(t *testing.T) {
	w := newGatedWriter()
	q := &Queue[int]{Max: 8, Linger: time.Hour, Write: w.write}
	q.Add(1)
	w.next(t)
	q.Add(2)
	q.Add(3)
	w.gate <- struct{}{}
	if b := w.next(t); len(b) != 2 {
		t.Fatalf("second batch %v, want the two values that arrived during the first", b)
	}
	q.Add(4) // fewer than the last batch held, under load
	w.gate <- struct{}{}
	if b := w.next(t); len(b) != 1 || b[0] != 4 {
		t.Fatalf("third batch %v, want [4] at once", b)
	}
	w.gate <- struct{}{}
}

// With several writers, a drainer that finds fewer values than the last
// batch held while another batch is being written waits for as many (or
// Linger), rather than splitting them into small batches.
func TestWritersLingerForAFullBatchWhileAnotherWrites(t *testing.T) {
	for _, c := range []struct {
		name   string
		linger time.Duration
		fill   bool // add the value that completes the batch
		want   []int
	}{
		{"woken when the batch fills", time.Hour, true, []int{5, 6}},
		{"until Linger ends", 20 * time.Millisecond, false, []int{5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newGatedWriter()
			q := &Queue[int]{Max: 8, Writers: 2, Linger: c.linger, Write: w.write}
			q.Add(1)
			w.next(t) // [1], held
			q.Add(2)
			w.next(t) // [2] by the second drainer, held
			q.Add(3)
			q.Add(4)
			w.gate <- struct{}{} // [1] done: its drainer takes [3 4]
			if b := w.next(t); len(b) != 2 {
				t.Fatalf("batch %v, want [3 4]", b)
			}
			w.gate <- struct{}{} // [2] done: nothing waits, its drainer exits
			waitRunning(q, 1)
			q.Add(5) // one value, the last batch held two, [3 4] is being written
			if c.fill {
				select {
				case b := <-w.started:
					t.Fatalf("batch %v written at once; want it to wait for a second value", b)
				case <-time.After(50 * time.Millisecond):
				}
				q.Add(6)
			}
			if b := w.next(t); !slices.Equal(b, c.want) {
				t.Fatalf("batch %v, want %v", b, c.want)
			}
			w.gate <- struct{}{}
			w.gate <- struct{}{}
		})
	}
}
