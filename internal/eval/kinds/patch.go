package kinds

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/patch"
	"crucible/internal/kind"
	"crucible/internal/sandbox"
)

// PatchConfig is the configuration of a code-fix competition: the sandbox
// limits of one judging run, the score weights and the policy rules the
// competition relaxes (none by default: strict).
type PatchConfig struct {
	TimeoutSeconds int           `json:"timeout_seconds"`
	MemoryMB       int           `json:"memory_mb"`
	Pids           int           `json:"pids"`
	Weights        patch.Weights `json:"weights"`
	Policy         patch.Policy  `json:"policy"`
}

// DefaultPatchConfig: 3 minutes, 2 GiB and 512 processes per test run, and
// patch.DefaultWeights (correctness 0.7, similarity 0.15, conciseness 0.1,
// time 0.05 with a 30-day half-life).
var DefaultPatchConfig = PatchConfig{TimeoutSeconds: 180, MemoryMB: 2048, Pids: 512, Weights: patch.DefaultWeights}

// JudgeConfig turns a competition's configuration into the judge's: the
// time component decays from published (when competitors first saw the
// task; zero for none) to now (the submission time).
func (c PatchConfig) JudgeConfig(published, now time.Time) patch.JudgeConfig {
	return patch.JudgeConfig{
		Sandbox:   sandbox.Config{Timeout: time.Duration(c.TimeoutSeconds) * time.Second, MemoryBytes: int64(c.MemoryMB) << 20, Pids: c.Pids},
		Weights:   c.Weights,
		Policy:    c.Policy,
		Now:       func() time.Time { return now },
		Published: published,
	}
}

// RepoSource gives the judge a local path for the repo of a stored task
// (patch.Repos on a server: uploaded bundles and the operator's roots).
type RepoSource interface {
	Local(ctx context.Context, repo string) (string, error)
}

// preparePatch validates a code-fix competition's tasks, each task's
// repository through spec.ResolveRepo; policy relaxes rules (nil: strict).
func preparePatch(ctx context.Context, spec kind.Spec, policy *patch.Policy) (Prepared, error) {
	cfg := DefaultPatchConfig
	if policy != nil {
		if err := policy.Validate(); err != nil {
			return Prepared{}, err
		}
		cfg.Policy = *policy
	}
	tasks, err := patch.ParseTasks(bytes.NewReader(spec.Dataset))
	if err != nil {
		return Prepared{}, fmt.Errorf("tasks %s: %w", spec.DatasetName, err)
	}
	if len(tasks) == 0 {
		return Prepared{}, fmt.Errorf("tasks %s: no task", spec.DatasetName)
	}
	if spec.ResolveRepo == nil {
		return Prepared{}, fmt.Errorf("tasks %s: this server takes no patch repositories", spec.DatasetName)
	}
	for i := range tasks {
		if tasks[i].Repo, err = spec.ResolveRepo(ctx, tasks[i].Repo, tasks[i].BaseCommit); err != nil {
			return Prepared{}, fmt.Errorf("tasks %s: task %s: %w", spec.DatasetName, tasks[i].InstanceID, err)
		}
	}
	config, err := json.Marshal(cfg)
	if err != nil {
		return Prepared{}, err
	}
	items := make([]json.RawMessage, len(tasks))
	seen := map[string]bool{}
	for i, t := range tasks {
		if seen[t.InstanceID] {
			return Prepared{}, fmt.Errorf("tasks %s: instance %s appears twice", spec.DatasetName, t.InstanceID)
		}
		seen[t.InstanceID] = true
		if items[i], err = json.Marshal(t); err != nil {
			return Prepared{}, err
		}
	}
	digest := sha256.Sum256(spec.Dataset)
	return Prepared{Config: config, DatasetDigest: hex.EncodeToString(digest[:]), Items: items}, nil
}

// FindTask returns the task with an instance id among stored items.
func FindTask(items []json.RawMessage, instance string) (patch.Task, error) {
	for _, raw := range items {
		var t patch.Task
		if err := json.Unmarshal(raw, &t); err != nil {
			return t, err
		}
		if t.InstanceID == instance {
			return t, nil
		}
	}
	return patch.Task{}, fmt.Errorf("no task %q in this competition", instance)
}

// PatchEvaluator judges one patch for one task as a one-item evaluation.
type PatchEvaluator struct {
	Config PatchConfig
	Task   patch.Task
	Diff   string
	// PublishedAt is when the task was published (the competition's
	// creation) and SubmittedAt when the patch was committed: the time
	// component measures the competitor's time between them.
	PublishedAt, SubmittedAt time.Time
}

// Len is 1: a patch submission is one item.
func (e *PatchEvaluator) Len() int { return 1 }

// Evaluate runs the judge. A patch that does not apply or fails tests is a
// result; only infrastructure failures are errors.
func (e *PatchEvaluator) Evaluate(ctx context.Context, _ int) (eval.Result, error) {
	started := time.Now()
	v, err := patch.Judge(ctx, e.Config.JudgeConfig(e.PublishedAt, e.SubmittedAt), e.Task, e.Diff)
	if err != nil {
		return eval.Result{}, err
	}
	detail, err := json.Marshal(v)
	if err != nil {
		return eval.Result{}, err
	}
	ended := time.Now()
	prediction := "unresolved"
	switch {
	case v.Resolved:
		prediction = "resolved"
	case v.Tampered:
		prediction = "tampered"
	case len(v.PolicyViolations) > 0:
		prediction = "refused by policy"
	case !v.Applied:
		prediction = "does not apply"
	}
	return eval.Result{Index: 0, Prompt: e.Task.ProblemStatement, Response: e.Diff, Prediction: prediction, Correct: v.Resolved,
		Score: v.Score, Started: started, Ended: ended, LatencyMS: ended.Sub(started).Milliseconds(), Detail: detail}, nil
}

func planPatch(ctx context.Context, c competition.Competition, s competition.Submission, items []json.RawMessage, repos RepoSource) (eval.Evaluator, error) {
	if s.Patch == nil {
		return nil, fmt.Errorf("submission %s to code-fix competition %s carries no patch", s.ID, c.ID)
	}
	cfg := DefaultPatchConfig
	if err := json.Unmarshal(c.Config, &cfg); err != nil {
		return nil, fmt.Errorf("competition %s config: %w", c.ID, err)
	}
	// A stored rule name this build does not know (renamed, removed) must
	// stop judging rather than silently judge stricter or looser.
	if err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("competition %s config: %w", c.ID, err)
	}
	task, err := FindTask(items, s.Patch.Task)
	if err != nil {
		return nil, err
	}
	if repos == nil {
		return nil, fmt.Errorf("competition %s: this worker has no repository source to judge patches with", c.ID)
	}
	if task.Repo, err = repos.Local(ctx, task.Repo); err != nil {
		return nil, fmt.Errorf("competition %s task %s: %w", c.ID, task.InstanceID, err)
	}
	return &PatchEvaluator{Config: cfg, Task: task, Diff: s.Patch.Diff, PublishedAt: c.CreatedAt, SubmittedAt: s.CommittedAt}, nil
}
