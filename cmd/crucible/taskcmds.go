package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"crucible/internal/eval"
	"crucible/internal/eval/runner"
	"crucible/internal/eval/task"
	"crucible/internal/eval/task/presets"
	"crucible/internal/eval/taskkind"
	"crucible/internal/inference"
)

func runTask(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand(args, "task",
		verb{"list", "list the lm-eval task presets"},
		verb{"render", "render one item of a preset or task file"},
		verb{"prompts", "fetch a predictions competition's prompts"})
	if err != nil {
		return err
	}
	switch verb {
	case "render":
		return runTaskRender(ctx, args, stdout, stderr)
	case "prompts":
		return runTaskPrompts(ctx, args, stdout, stderr)
	}
	fs := newFlags("task list", "List the lm-eval task presets shipped in this binary, with their output type and\n"+
		"rows, and under each its variants (the same rows under another task file, e.g. social_iqa:mcq,\n"+
		"the mcq kind's prompt). Run one with crucible eval --task NAME; any lm-eval task file works the same way.",
		"crucible task list", stderr)
	o := addOutputFlags(fs, "print a JSON array of {name, output_type, rows, variants}")
	if err := parse(fs, args); err != nil {
		return err
	}
	type preset struct {
		Name       string `json:"name"`
		OutputType string `json:"output_type"`
		Rows       int    `json:"rows"`
		// Variants run the preset's rows under another task file.
		Variants []string `json:"variants,omitempty"`
	}
	var list []preset
	for _, n := range presets.Names() {
		cfg, d, err := presets.Load(n)
		if err != nil {
			return err
		}
		list = append(list, preset{Name: n, OutputType: cfg.OutputType, Rows: len(d.Eval), Variants: presets.Variants(n)})
	}
	return o.emit(stdout, list, func() error {
		for _, p := range list {
			fmt.Fprintf(stdout, "%-12s %-16s %d rows\n", p.Name, p.OutputType, p.Rows)
			for _, v := range p.Variants {
				fmt.Fprintf(stdout, "  %s\n", v)
			}
		}
		return nil
	})
}

// taskFlags are the flags that choose a task and its items.
type taskFlags struct {
	ref, data, fewshotData *string
	numFewshot             *int
}

func addTaskFlags(fs *flag.FlagSet) taskFlags {
	return taskFlags{
		ref:         fs.String("task", "", "an lm-eval task file (YAML) or a preset name (crucible task list)"),
		data:        fs.String("data", "", "rows of the evaluation split (JSONL, CSV or Parquet), replacing the task's"),
		fewshotData: fs.String("fewshot-data", "", "rows few-shot examples are drawn from, replacing the task's"),
		numFewshot:  fs.Int("num-fewshot", -1, "few-shot examples per prompt (default: the task's num_fewshot)"),
	}
}

// items loads the task and builds its items.
func (f taskFlags) items() (*task.Config, []task.Item, error) {
	if *f.ref == "" {
		return nil, nil, usagef("--task FILE|NAME is required (presets: %s)", strings.Join(presets.Names(), ", "))
	}
	cfg, d, err := presets.Open(*f.ref, *f.data, *f.fewshotData, *f.numFewshot)
	if err != nil {
		return nil, nil, err
	}
	k := *f.numFewshot
	if k < 0 {
		k = cfg.NumFewshot
	}
	items, err := cfg.Items(d, k, task.Seed)
	return cfg, items, err
}

func runTaskRender(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("task render", "Print exactly what one item sends to the model: the prompt (description, few-shot\n"+
		"examples, then the doc), the choices scored after it (multiple_choice) or the strings generation\n"+
		"stops at (generate_until), and the reference answer.",
		"crucible task render --task social_iqa --index 0 --num-fewshot 2", stderr)
	tf := addTaskFlags(fs)
	index := fs.Int("index", 0, "the item's row in the evaluation split, from 0")
	o := addOutputFlags(fs, "print one JSON object: prompt, choices, target (generation: prompt, target, until)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, items, err := tf.items()
	if err != nil {
		return err
	}
	if *index < 0 || *index >= len(items) {
		return usagef("--index %d: the task has %d items", *index, len(items))
	}
	it := items[*index]
	out := struct {
		Prompt  string   `json:"prompt"`
		Choices []string `json:"choices,omitempty"`
		Target  string   `json:"target"`
		Until   []string `json:"until,omitempty"`
	}{Prompt: it.Prompt, Choices: it.Choices, Target: it.Target}
	if cfg.OutputType == task.GenerateUntil {
		out.Choices, out.Until = nil, cfg.Generation.Until
	}
	return o.emit(stdout, out, func() error {
		fmt.Fprintf(stdout, "%s\n", it.Prompt)
		for k, ch := range out.Choices {
			fmt.Fprintf(stdout, "--- choice %d: %q\n", k, cfg.TargetDelimiter+ch)
		}
		if out.Until != nil {
			fmt.Fprintf(stdout, "--- until: %q\n", out.Until)
		}
		fmt.Fprintf(stdout, "--- target: %q\n", it.Target)
		return nil
	})
}

func runTaskPrompts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("task prompts", "Fetch the prompts of a task competition that takes predictions files, one JSON line\n"+
		"{doc_id, prompt, until} per item (never its target). Generate each response with your model,\n"+
		"stopping at until, and submit the lines {doc_id, response} with crucible submit predictions.",
		"crucible task prompts --server http://hub:8080 --competition c-abc123 > prompts.jsonl", stderr)
	cf := addClientFlags(fs)
	comp := fs.String("competition", "", "competition id")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *comp == "" {
		return usagef("--competition is required")
	}
	c, err := cf.client(false)
	if err != nil {
		return err
	}
	prompts, err := c.Prompts(ctx, *comp)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for _, p := range prompts {
		if err := enc.Encode(p); err != nil {
			return err
		}
	}
	return nil
}

// isTaskEval reports whether an eval command line is an lm-eval task's:
// --kind task, or --task without a kind (with --kind patch, --task stays
// the patch instance to judge).
func isTaskEval(args []string) bool {
	hasTask, kindName := false, ""
	for i, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		hasTask = hasTask || name == "task"
		if name == "kind" {
			if !hasValue && i+1 < len(args) {
				value = args[i+1]
			}
			kindName = value
		}
	}
	return kindName == taskkind.TaskName || hasTask && kindName == ""
}

func runTaskEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval --task", "Evaluate a model on an lm-eval task file or a preset (crucible task list), locally:\n"+
		"multiple_choice and loglikelihood tasks score echoed log-probabilities from /v1/completions,\n"+
		"generate_until tasks generate there, filter and match. The score is the first metric, with a 95%\n"+
		"bootstrap interval; every metric of the task is reported. Answers are cached (--cache-dir): a re-run\n"+
		"sends only the requests not yet answered.\n\n"+
		"With --predictions, no model is called: a generate_until task is scored from a JSONL file of\n"+
		"{\"doc_id\": N, \"response\": \"...\"} lines, doc_id the item's row in the evaluation split from 0 (as\n"+
		"task render --index counts) and response the model's raw text, cut and filtered like a live answer.\n"+
		"A doc without a line scores 0 (counted as missing); a doc_id twice or out of range is refused.",
		"crucible eval --task social_iqa --limit 100 --base-url http://127.0.0.1:8000/v1 --model my-model --json\n"+
			"  crucible eval --kind task --task gsm8k --base-url http://127.0.0.1:8000/v1 --model my-model --no-cache\n"+
			"  crucible eval --task gsm8k --predictions preds.jsonl --json", stderr)
	fs.String("kind", taskkind.TaskName, "task (the only kind this form evaluates; see eval --help for the others)")
	tf := addTaskFlags(fs)
	limit := fs.Int("limit", 0, "evaluate only the first N items (0: all)")
	baseURL := fs.String("base-url", "", "the model server's OpenAI base URL")
	model := fs.String("model", "", "model name")
	keyEnv := fs.String("api-key-env", "", "environment variable holding the model server's API key")
	predictions := fs.String("predictions", "", "score this JSONL file of {doc_id, response} lines instead of a model (generate_until tasks)")
	concurrency := fs.Int("concurrency", 8, "items in flight")
	cf := addCacheFlags(fs)
	o := addOutputFlags(fs, "print one JSON object: score, ci_low, ci_high, items, metrics {name: {value, ci_low, ci_high}}, missing (--predictions)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *predictions != "" && (*baseURL != "" || *model != "") {
		return usagef("--predictions scores a file: give it without --base-url and --model")
	}
	if *predictions == "" && (*baseURL == "" || *model == "") {
		return usagef("--base-url and --model are required (or --predictions FILE)")
	}
	cfg, items, err := tf.items()
	if err != nil {
		return err
	}
	var preds *task.Predictions
	if *predictions != "" {
		// doc_ids count the whole split; --limit then scores the first N.
		if preds, err = cfg.ReadPredictionsFile(*predictions, len(items)); err != nil {
			return err
		}
	}
	if *limit > 0 && *limit < len(items) {
		items = items[:*limit]
	}
	var ev eval.Evaluator
	var progress func(done, total int)
	if preds != nil {
		ev = task.NewPredictionsEvaluator(cfg, items, preds)
		*model = *predictions // scoring a file is instant: no progress line
	} else {
		lc, err := cf.open()
		if err != nil {
			return err
		}
		defer lc.close(stderr)
		icfg := inference.Config{BaseURL: *baseURL, HTTPClient: lc.http}
		if *keyEnv != "" {
			icfg.APIKey = os.Getenv(*keyEnv)
		}
		client, err := inference.New(icfg)
		if err != nil {
			return err
		}
		ev = task.NewEvaluator(cfg, items, client, *model)
		progress = lc.progress(stderr)
	}
	results := make([]eval.Result, len(items))
	err = runner.Run(ctx, ev, runner.Config{Concurrency: *concurrency, Progress: progress,
		Sink: func(r eval.Result) error {
			results[r.Index] = r // Sink calls are serialised
			return nil
		}})
	if err != nil {
		return err
	}
	rep, err := cfg.Summarize(results)
	if err != nil {
		return err
	}
	if preds != nil {
		rep.Missing = preds.Missing(len(items))
	}
	return o.emit(stdout, rep, func() error {
		fmt.Fprintf(stdout, "%s on %s: score %.4f  95%% CI [%.4f, %.4f]  %d items\n",
			*model, cfg.Task, rep.Score, rep.CILow, rep.CIHigh, rep.Items)
		for _, n := range cfg.MetricNames() {
			m := rep.Metrics[n]
			fmt.Fprintf(stdout, "  %-30s %.4f  [%.4f, %.4f]\n", n, m.Value, m.CILow, m.CIHigh)
		}
		if rep.Missing > 0 {
			fmt.Fprintf(stdout, "  %d items had no prediction and scored 0\n", rep.Missing)
		}
		return nil
	})
}
