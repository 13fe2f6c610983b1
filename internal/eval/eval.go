// Package eval owns the small contract every evaluation kind implements
// (Evaluator: how many items, evaluate one; Result: one evaluated item).
// The engine that drives an Evaluator is internal/eval/runner, kept apart so
// that packages which only describe or enqueue evaluations (pools, epochs,
// the API) never reach the code that runs them. Kinds live in sub-packages
// such as internal/eval/mcq.
//
// This package must never import the store, the job queue or any eval kind;
// it depends only on the standard library.
package eval

import (
	"context"
	"encoding/json"
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
