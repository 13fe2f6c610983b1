package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"crucible/internal/baseline"
	"crucible/internal/eval"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/eval/task"
	"crucible/internal/eval/task/presets"
	"crucible/internal/eval/task/tasktest"
	"crucible/internal/inference"
)

// model is the baseline policy both phases ask.
const model = "baseline-oracle"

// workload is what one mode measures: the baseline server answering it,
// the Evaluator of the eval phase, and the identical request bodies the
// plain phase posts to path.
type workload struct {
	describe  string
	server    http.Handler
	evaluator func(*inference.Client) (eval.Evaluator, error)
	path      string
	bodies    [][]byte
}

// mcqWorkload is Social IQa's chat requests through the mcq Evaluator.
func mcqWorkload(dataset string, n int, delay time.Duration) (*workload, error) {
	path := dataset
	if path == "" {
		root, err := repoRoot()
		if err != nil {
			return nil, err
		}
		path = filepath.Join(root, "..", "shared", "data", "siqa", "dev.jsonl")
	}
	ds, err := mcq.ParseFile(path)
	if err != nil {
		return nil, err
	}
	h, err := mcqtest.New(mcqtest.Config{Policies: []string{mcqtest.PolicyOracle}, Key: ds, Delay: delay})
	if err != nil {
		return nil, err
	}
	// The workload: dataset items repeated to reach n.
	work := &mcq.Dataset{Name: ds.Name + "-repeated", Items: make([]mcq.Item, n)}
	for i := range work.Items {
		work.Items[i] = ds.Items[i%len(ds.Items)]
	}
	tmpl := mcq.MustDefaultTemplate()
	zero := 0.0
	bodies := make([][]byte, n)
	for i, it := range work.Items {
		p, err := mcq.Render(tmpl, it)
		if err != nil {
			return nil, err
		}
		bodies[i], err = json.Marshal(inference.ChatRequest{
			Model: model, Messages: []inference.ChatMessage{{Role: "user", Content: p}},
			MaxTokens: mcq.DefaultMaxTokens, Temperature: &zero,
		})
		if err != nil {
			return nil, err
		}
	}
	return &workload{
		describe: fmt.Sprintf("dataset %s: %d items (digest %.12s…)", ds.Name, len(ds.Items), ds.Digest),
		server:   h,
		evaluator: func(c *inference.Client) (eval.Evaluator, error) {
			return mcq.NewEvaluator(mcq.Config{Client: c, Model: model, Dataset: work})
		},
		path: "/chat/completions", bodies: bodies,
	}, nil
}

// taskWorkload is a generate_until task's generations (with its few-shot
// prompts) through the task Evaluator, against the task's oracle policy.
func taskWorkload(ref string, n int, delay time.Duration) (*workload, error) {
	cfg, d, err := presets.Open(ref, "", "", -1)
	if err != nil {
		return nil, err
	}
	if cfg.OutputType != task.GenerateUntil {
		return nil, fmt.Errorf("-task %s is %s; -mode task measures generate_until tasks", ref, cfg.OutputType)
	}
	items, err := cfg.Items(d, cfg.NumFewshot, task.Seed)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("-task %s has no rows", ref)
	}
	policies, err := tasktest.Policies(tasktest.Config{Policies: []string{tasktest.PolicyOracle}, Task: cfg, Data: d})
	if err != nil {
		return nil, err
	}
	work := make([]task.Item, n)
	bodies := make([][]byte, n)
	for i := range work {
		work[i] = items[i%len(items)]
		if bodies[i], err = json.Marshal(work[i].Requests[0].GenRequest(model)); err != nil {
			return nil, err
		}
	}
	return &workload{
		describe: fmt.Sprintf("task %s: %d items, %d-shot", cfg.Task, len(items), cfg.NumFewshot),
		server:   baseline.New(baseline.Config{Policies: policies, Delay: delay}),
		evaluator: func(c *inference.Client) (eval.Evaluator, error) {
			return task.NewEvaluator(cfg, work, c, model), nil
		},
		path: "/completions", bodies: bodies,
	}, nil
}
