package eval_test

import (
	"testing"

	"crucible/internal/eval"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name    string
		results []eval.Result
		want    eval.Summary
	}{
		{"no results summarise to zero", nil, eval.Summary{}},
		{"the mean is over all items", []eval.Result{{Correct: true, Score: 1}, {Score: 0}, {Score: 0.5}, {Correct: true, Score: 1}}, eval.Summary{Items: 4, Correct: 2, Mean: 0.625}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eval.Summarize(tt.results); got != tt.want {
				t.Fatalf("Summarize = %+v, want %+v", got, tt.want)
			}
		})
	}
}
