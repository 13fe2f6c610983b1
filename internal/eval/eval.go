// Package eval owns the small contract every evaluation kind implements
// (Evaluator: how many items, evaluate one) and the engine that drives it
// (Run: bounded concurrency, skip-already-done items for resumption,
// serialised result sink, deadline-bounded slices). Kinds live in
// sub-packages such as internal/eval/mcq.
//
// This package must never import the store, the job queue or any eval kind;
// it depends only on the standard library.
package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Result is one evaluated item (one row per (submission, item) in the store).
type Result struct {
	// Index is the item's position in the planned evaluation, [0, Len).
	Index int `json:"index"`
	// Prompt is the exact text sent to the model.
	Prompt string `json:"prompt"`
	// Response is the model's raw answer (kind-specific for non-generative modes).
	Response string `json:"response"`
	// Prediction is the parsed answer, "" when it could not be parsed.
	Prediction string `json:"prediction"`
	// Correct reports whether Prediction matches the reference.
	Correct bool `json:"correct"`
	// Score is the item's score in [0,1].
	Score float64 `json:"score"`
	// Started and Ended bracket the item's evaluation.
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	// LatencyMS is Ended-Started in milliseconds.
	LatencyMS int64 `json:"latency_ms"`
	// PromptTokens and CompletionTokens are the usage reported by the server.
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	// Detail holds optional kind-specific data explaining the verdict.
	Detail json.RawMessage `json:"detail,omitempty"`
}

// Evaluator evaluates one item of a planned evaluation. An error is an
// infrastructure or deterministic failure, never a wrong answer: a wrong
// answer is a Result with Correct=false. Evaluate must be safe for
// concurrent use with distinct indexes.
type Evaluator interface {
	// Len returns the number of items in the plan.
	Len() int
	// Evaluate evaluates item index, 0 <= index < Len().
	Evaluate(ctx context.Context, index int) (Result, error)
}

// ErrSliceExpired is returned by Run when RunConfig.Deadline passed before
// every item was evaluated; the results produced so far were delivered to
// the sink, so the job can resume later by skipping them.
var ErrSliceExpired = errors.New("eval: time slice expired before all items were evaluated")

// RunConfig configures Run.
type RunConfig struct {
	// Concurrency is the number of items evaluated at once; values below 1 mean 1.
	Concurrency int
	// Skip lists indexes that are already done and must not be evaluated.
	Skip map[int]bool
	// Deadline, when non-zero, stops the dispatch of new items once it
	// passes; in-flight items finish and Run returns ErrSliceExpired.
	Deadline time.Time
	// Sink receives every Result as soon as it is done. Calls are
	// serialised. A Sink error stops the run like an evaluation error.
	Sink func(Result) error
	// Progress, when set, is called after each Result (serialised, after
	// Sink) with done counting skipped and finished items and total = Len().
	Progress func(done, total int)
}

// Run evaluates every index in [0, ev.Len()) not in cfg.Skip with
// cfg.Concurrency workers, passing each Result to cfg.Sink as soon as it is
// done. It stops at the first error, cancelling the items in flight, and
// returns that error wrapped with the item index ("eval: item 7: ..."). It
// also stops when cfg.Deadline passes, finishing the items in flight and
// returning ErrSliceExpired. Every Result produced is passed to Sink before
// Run returns, whatever the outcome.
func Run(ctx context.Context, ev Evaluator, cfg RunConfig) error {
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
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				if runCtx.Err() != nil {
					continue // stopping: drain without evaluating
				}
				r, err := ev.Evaluate(runCtx, i)
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

	var deadline <-chan time.Time
	if !cfg.Deadline.IsZero() {
		t := time.NewTimer(time.Until(cfg.Deadline))
		defer t.Stop()
		deadline = t.C
	}
	expired := false
dispatch:
	for _, i := range todo {
		if runCtx.Err() != nil {
			break
		}
		if !cfg.Deadline.IsZero() && !time.Now().Before(cfg.Deadline) {
			expired = true
			break
		}
		select {
		case jobs <- i:
		case <-runCtx.Done():
			break dispatch
		case <-deadline:
			expired = true
			break dispatch
		}
	}
	close(jobs)
	wg.Wait()

	switch {
	case firstErr != nil:
		return firstErr
	case ctx.Err() != nil:
		return fmt.Errorf("eval: %w", ctx.Err())
	case expired:
		return ErrSliceExpired
	}
	return nil
}

// Summary aggregates the results of an evaluation.
type Summary struct {
	// Items is the number of results.
	Items int `json:"items"`
	// Correct is the number of results with Correct set.
	Correct int `json:"correct"`
	// Mean is the mean Score, 0 when there are no results.
	Mean float64 `json:"mean"`
}

// Summarize returns the mean score and correct count of results.
func Summarize(results []Result) Summary {
	s := Summary{Items: len(results)}
	sum := 0.0
	for _, r := range results {
		sum += r.Score
		if r.Correct {
			s.Correct++
		}
	}
	if s.Items > 0 {
		s.Mean = sum / float64(s.Items)
	}
	return s
}
