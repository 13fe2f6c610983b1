// Package taskkind is the task kind: an lm-eval task (internal/eval/task)
// run against submitted models over /v1/completions, or, in a competition
// created with submissions "predictions", scored from submitted files of
// responses with no model and no egress. Such a competition has hidden
// labels: its prompts are public (kind.Prompter), its targets are not
// (internal/seal hides a predictions submission's results), and its
// few-shot count is 0, since examples would be other rows with their
// targets. Entries are ranked, limited and copy-checked as models are: the
// same file is the same digest, and near-identical responses are copies
// (competition.CopyRule). It is its own package, registered by
// internal/app and the validator node beside the built-in kinds
// (internal/eval/kinds), which it uses.
package taskkind

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/task"
	"crucible/internal/eval/task/presets"
	"crucible/internal/inference"
	"crucible/internal/kind"
)

// MaxFewshot bounds a competition's few-shot examples per prompt.
const MaxFewshot = 64

// TaskName is the task kind's name.
const TaskName = "task"

// Task is an lm-eval task (internal/eval/task) run against submitted
// models over /v1/completions. Its configuration is the competition.TaskSource (a
// preset's name or the task file's text) with the few-shot count resolved,
// and its items are the rendered ones, so the hub evaluates exactly what
// `crucible task render` shows.
type Task struct{ Egress kinds.Egress }

// Name implements kind.Kind.
func (Task) Name() string { return TaskName }

// Prepare implements kind.Kind: Options["task"] is the competition.TaskSource; the
// dataset, when sent, is the evaluation split's rows (JSONL), replacing a
// preset's and required for a task file (the hub cannot read its
// data_files). The rows are also the few-shot pool, a doc never its own
// example.
func (Task) Prepare(_ context.Context, spec kind.Spec) (kind.Prepared, error) {
	raw, ok := spec.Options["task"]
	if !ok || string(raw) == "null" {
		return kind.Prepared{}, fmt.Errorf("a task competition needs its task: a preset (%v) or a task file's text", presets.Names())
	}
	var src competition.TaskSource
	if err := json.Unmarshal(raw, &src); err != nil {
		return kind.Prepared{}, fmt.Errorf("task: %w", err)
	}
	cfg, d, err := taskData(src, spec)
	if err != nil {
		return kind.Prepared{}, err
	}
	k := cfg.NumFewshot
	if src.NumFewshot != nil {
		k = *src.NumFewshot
	}
	if k < 0 || k > MaxFewshot {
		return kind.Prepared{}, fmt.Errorf("num_fewshot %d is outside 0..%d", k, MaxFewshot)
	}
	src.NumFewshot = &k
	if src.Entries, err = kinds.SpecEntries(spec, src.Entries, competition.SubmitPredictions); err != nil {
		return kind.Prepared{}, err
	}
	switch src.Submissions {
	case competition.SubmitPredictions:
		if err := cfg.CanPredict(); err != nil {
			return kind.Prepared{}, fmt.Errorf("submissions %q: %w", src.Submissions, err)
		}
		if k > 0 {
			// The examples are drawn from the rows: their targets would be in the public prompts.
			return kind.Prepared{}, fmt.Errorf("submissions %q: num_fewshot must be 0 (it is %d): the examples would show the hidden targets of other rows in the public prompts", src.Submissions, k)
		}
	}
	items, err := cfg.Items(d, k, task.Seed)
	if err != nil {
		return kind.Prepared{}, err
	}
	if len(items) == 0 {
		return kind.Prepared{}, fmt.Errorf("task %s has no rows", cfg.Task)
	}
	config, err := json.Marshal(src)
	if err != nil {
		return kind.Prepared{}, err
	}
	enc, err := kinds.EncodeItems(items)
	if err != nil {
		return kind.Prepared{}, err
	}
	h := sha256.New()
	for _, it := range enc {
		h.Write(it)
		h.Write([]byte{'\n'})
	}
	return kind.Prepared{Config: config, DatasetDigest: hex.EncodeToString(h.Sum(nil)), Items: enc}, nil
}

// Validation: a validator renders the items itself from the stored task
// (and its own copy of the sent rows) and evaluates each model on them.
func (Task) Validation() kind.Validation { return kind.ValidateOwnItems }

// Render implements kind.Rendering: Prepare over the stored task (its
// few-shot count resolved) and rows, or the preset's own rows when rows is
// empty.
func (k Task) Render(ctx context.Context, c competition.Competition, rows []byte) (kind.Prepared, error) {
	p, err := k.Prepare(ctx, kind.Spec{DatasetName: c.DatasetName, Dataset: rows, Options: map[string]json.RawMessage{"task": c.Config}})
	if err != nil {
		return kind.Prepared{}, fmt.Errorf("competition %s: render its items: %w", c.ID, err)
	}
	return p, nil
}

// taskData parses the source's task and reads its rows: the sent ones,
// else a preset's.
func taskData(src competition.TaskSource, spec kind.Spec) (*task.Config, *task.Data, error) {
	var rows []task.Row
	if len(bytes.TrimSpace(spec.Dataset)) > 0 {
		var err error
		if rows, err = task.ReadJSONL(spec.DatasetName, bytes.NewReader(spec.Dataset)); err != nil {
			return nil, nil, err
		}
	}
	var cfg *task.Config
	var d *task.Data
	switch {
	case src.Preset != "" && src.YAML != "":
		return nil, nil, fmt.Errorf("task: a preset or a task file, not both")
	case src.Preset != "":
		var err error
		if cfg, d, err = presets.Load(src.Preset); err != nil {
			return nil, nil, err
		}
		if rows == nil {
			return cfg, d, nil
		}
	default:
		var err error
		if cfg, err = taskConfig(src); err != nil {
			return nil, nil, err
		}
		if rows == nil {
			return nil, nil, fmt.Errorf("%s: the hub cannot read the task's data (dataset_path %q): send the evaluation rows as the dataset (--data)", cfg.File, cfg.DatasetPath)
		}
	}
	return cfg, &task.Data{Eval: rows, Fewshot: rows, SameSplit: true}, nil
}

// taskConfig parses a stored or requested source's task file or preset.
func taskConfig(src competition.TaskSource) (*task.Config, error) {
	if src.Preset != "" {
		cfg, _, err := presets.Load(src.Preset)
		return cfg, err
	}
	if src.YAML == "" {
		return nil, fmt.Errorf("task: neither a preset nor a task file's text")
	}
	file := src.File
	if file == "" {
		file = "task.yaml"
	}
	return task.Parse(file, []byte(src.YAML))
}

// TaskSettings parses a task competition's stored task.
func TaskSettings(c competition.Competition) (*task.Config, error) {
	var src competition.TaskSource
	if err := json.Unmarshal(c.Config, &src); err != nil {
		return nil, fmt.Errorf("competition %s config: %w", c.ID, err)
	}
	return taskConfig(src)
}

// EntryOf implements kind.CompetitionEntryShaper: models, or predictions
// files or artifacts when the competition was created to take them.
func (Task) EntryOf(c competition.Competition) kind.Entry { return kinds.EntryOf(c) }

// ValidateEntry implements kind.EntryValidator: a predictions file must
// read (task.Config.ReadPredictions) against the competition's items.
func (Task) ValidateEntry(c competition.Competition, items []json.RawMessage, s competition.Submission) error {
	if s.Predictions == nil {
		return nil
	}
	cfg, err := TaskSettings(c)
	if err != nil {
		return err
	}
	_, err = cfg.ReadPredictions("predictions.jsonl", strings.NewReader(s.Predictions.Body), len(items))
	return err
}

// Prompts implements kind.Prompter: each item's prompt and stop strings,
// never its target.
func (Task) Prompts(c competition.Competition, raw []json.RawMessage) ([]kind.Prompt, error) {
	out := make([]kind.Prompt, len(raw))
	for i, r := range raw {
		var it task.Item
		if err := json.Unmarshal(r, &it); err != nil {
			return nil, fmt.Errorf("competition %s item %d: %w", c.ID, i, err)
		}
		out[i] = kind.Prompt{DocID: i, Prompt: it.Prompt}
		if len(it.Requests) > 0 {
			out[i].Until = it.Requests[0].Until
		}
	}
	return out, nil
}

// Plan implements kind.Kind: the task evaluator against the submission's
// model, reached through egress; for a predictions submission, secret is
// the file, scored with no model and no egress.
func (k Task) Plan(_ context.Context, c competition.Competition, s competition.Submission, secret string, raw []json.RawMessage) (eval.Evaluator, error) {
	cfg, err := TaskSettings(c)
	if err != nil {
		return nil, err
	}
	items := make([]task.Item, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &items[i]); err != nil {
			return nil, fmt.Errorf("competition %s item %d: %w", c.ID, i, err)
		}
	}
	if s.Predictions != nil {
		preds, err := cfg.ReadPredictions("predictions.jsonl", strings.NewReader(secret), len(items))
		if err != nil {
			return nil, err
		}
		return task.NewPredictionsEvaluator(cfg, items, preds), nil
	}
	client, err := inference.New(inference.Config{BaseURL: s.Model.BaseURL, APIKey: secret, HTTPClient: k.Egress.ModelClient(s)})
	if err != nil {
		return nil, err
	}
	return task.NewEvaluator(cfg, items, client, s.Model.Model), nil
}

// Score implements kind.Kind: the first metric's mean (each item's Score),
// answers scoring 1 counted; Components lists every metric.
func (Task) Score(c competition.Competition, results []eval.Result) (competition.Card, []float64, error) {
	return kinds.ResultScores(results)
}

// Components implements kind.Explainer: every metric's mean.
func (Task) Components(c competition.Competition, results []eval.Result) (map[string]float64, error) {
	cfg, err := TaskSettings(c)
	if err != nil {
		return nil, err
	}
	scores := make([]map[string]float64, len(results))
	for i, r := range results {
		var d task.Detail
		if err := json.Unmarshal(r.Detail, &d); err != nil {
			return nil, fmt.Errorf("item %d: %w", r.Index, err)
		}
		scores[i] = d.Metrics
	}
	sums, err := cfg.Aggregate(scores, task.Seed)
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(sums))
	for _, s := range sums {
		out[s.Name] = s.Value
	}
	return out, nil
}

// SubmitCheck implements kind.SubmitChecker: a model must answer; a
// predictions file was read when it was submitted.
func (k Task) SubmitCheck(ctx context.Context, _ competition.Competition, s competition.Submission, secret string) error {
	if s.Predictions != nil {
		return nil
	}
	return kinds.ModelCheck(ctx, s, secret, k.Egress)
}

// CreateFlags implements kind.Flagged: the task (a file or a preset), its
// rows and the few-shot count (what competitors enter is AddEntryFlags').
func (Task) CreateFlags(fs *flag.FlagSet) func() (kind.Creation, error) {
	ref := fs.String("task", "", "task: an lm-eval task file (YAML) or a preset name (crucible task list)")
	data := fs.String("data", "", "task: rows of the evaluation split (JSONL, CSV or Parquet; sent as JSONL), replacing a preset's;\n"+
		"required with a task file, whose data_files the hub cannot read")
	numFewshot := fs.Int("num-fewshot", -1, "task: few-shot examples per prompt, drawn from the rows (default: the task's num_fewshot)")
	return func() (kind.Creation, error) {
		if *ref == "" {
			return kind.Creation{}, fmt.Errorf("--task FILE|NAME is required (presets: %v)", presets.Names())
		}
		src, rows, err := Source(*ref, *data, *numFewshot)
		if err != nil {
			return kind.Creation{}, err
		}
		raw, err := json.Marshal(src)
		if err != nil {
			return kind.Creation{}, err
		}
		// Shipped: without --data the hub refuses a task file, naming its data.
		return kind.Creation{Dataset: *data, Data: rows, Shipped: true, Options: map[string]json.RawMessage{"task": raw}}, nil
	}
}
