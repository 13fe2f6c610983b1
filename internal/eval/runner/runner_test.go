package runner_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"crucible/internal/eval"
	"crucible/internal/eval/runner"
)

// fakeEvaluator scores item i correct when i is even; fail lists indexes that
// error; block lists indexes that wait for release.
type fakeEvaluator struct {
	n       int
	fail    map[int]error
	block   map[int]bool
	started chan int
	release chan struct{}
}

func (f *fakeEvaluator) Len() int { return f.n }

func (f *fakeEvaluator) Evaluate(ctx context.Context, i int) (eval.Result, error) {
	if f.started != nil {
		f.started <- i
	}
	if f.block[i] {
		select {
		case <-f.release:
		case <-ctx.Done():
			return eval.Result{}, ctx.Err()
		}
	}
	if err := f.fail[i]; err != nil {
		return eval.Result{}, err
	}
	r := eval.Result{Index: i, Prediction: "A"}
	if i%2 == 0 {
		r.Correct, r.Score = true, 1
	}
	return r, nil
}

type collector struct {
	mu       sync.Mutex
	got      []int
	calls    int
	lastDone int
}

func (c *collector) sink(r eval.Result) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, r.Index)
	return nil
}

func (c *collector) progress(done, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.lastDone = done
}

func (c *collector) sorted() []int {
	s := slices.Clone(c.got)
	slices.Sort(s)
	return s
}

func TestRunEvaluatesEveryItemNotSkipped(t *testing.T) {
	tests := []struct {
		name       string
		n, workers int
		skip       map[int]bool
		want       []int
	}{
		{"all items are evaluated with one worker", 5, 1, nil, []int{0, 1, 2, 3, 4}},
		{"all items are evaluated with many workers", 5, 32, nil, []int{0, 1, 2, 3, 4}},
		{"zero concurrency still evaluates", 3, 0, nil, []int{0, 1, 2}},
		{"skipped items are not evaluated", 5, 2, map[int]bool{1: true, 3: true}, []int{0, 2, 4}},
		{"everything skipped evaluates nothing", 2, 2, map[int]bool{0: true, 1: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c collector
			err := runner.Run(context.Background(), &fakeEvaluator{n: tt.n}, runner.Config{
				Concurrency: tt.workers, Skip: tt.skip, Sink: c.sink, Progress: c.progress,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.sorted(); !slices.Equal(got, tt.want) {
				t.Fatalf("sunk %v, want %v", got, tt.want)
			}
			if c.calls != len(tt.want) || (len(tt.want) > 0 && c.lastDone != tt.n) {
				t.Fatalf("progress called %d times ending at %d, want %d ending at %d", c.calls, c.lastDone, len(tt.want), tt.n)
			}
		})
	}
}

func TestRunStopsAtTheFirstErrorAndKeepsFinishedResults(t *testing.T) {
	boom := errors.New("boom")
	var c collector
	ev := &fakeEvaluator{n: 100, fail: map[int]error{3: boom}}
	err := runner.Run(context.Background(), ev, runner.Config{Concurrency: 1, Sink: c.sink})
	if !errors.Is(err, boom) || err.Error() != "eval: item 3: boom" {
		t.Fatalf("err = %v, want item 3 wrapping boom", err)
	}
	if got := c.sorted(); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("sunk %v, want the three items done before the failure", got)
	}
}

func TestRunCancelsInFlightItemsOnError(t *testing.T) {
	boom := errors.New("boom")
	ev := &fakeEvaluator{n: 2, fail: map[int]error{1: boom}, block: map[int]bool{0: true}, release: make(chan struct{})}
	err := runner.Run(context.Background(), ev, runner.Config{Concurrency: 2})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom (the blocked item must be cancelled, not waited for)", err)
	}
}

func TestRunStopsWhenTheSinkFails(t *testing.T) {
	full := errors.New("disk full")
	calls := 0
	err := runner.Run(context.Background(), &fakeEvaluator{n: 10}, runner.Config{Concurrency: 1, Sink: func(eval.Result) error {
		calls++
		return full
	}})
	if !errors.Is(err, full) || calls != 1 {
		t.Fatalf("err = %v after %d sink calls, want disk full after 1", err, calls)
	}
}

func TestRunWithAPassedDeadlineExpiresWithoutWork(t *testing.T) {
	var c collector
	err := runner.Run(context.Background(), &fakeEvaluator{n: 3}, runner.Config{Deadline: time.Now().Add(-time.Second), Sink: c.sink})
	if !errors.Is(err, runner.ErrSliceExpired) || len(c.got) != 0 {
		t.Fatalf("err = %v, sunk %v; want ErrSliceExpired and nothing", err, c.got)
	}
}

func TestRunFinishesInFlightItemsWhenTheDeadlinePasses(t *testing.T) {
	deadline := time.Now().Add(20 * time.Millisecond)
	ev := &fakeEvaluator{n: 10, block: map[int]bool{0: true, 1: true}, started: make(chan int, 10), release: make(chan struct{})}
	var c collector
	errc := make(chan error, 1)
	go func() {
		errc <- runner.Run(context.Background(), ev, runner.Config{Concurrency: 2, Deadline: deadline, Sink: c.sink})
	}()
	<-ev.started
	<-ev.started
	time.Sleep(time.Until(deadline) + 5*time.Millisecond) // let the slice expire while both workers are busy
	close(ev.release)
	if err := <-errc; !errors.Is(err, runner.ErrSliceExpired) {
		t.Fatalf("err = %v, want ErrSliceExpired", err)
	}
	if got := c.sorted(); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("sunk %v, want the two in-flight items", got)
	}
}

func TestRunReturnsTheCallersCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := runner.Run(ctx, &fakeEvaluator{n: 3}, runner.Config{Concurrency: 2})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
