package app

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"crucible/internal/baseline"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/eval/roleplay/roleplaytest"
	"crucible/internal/eval/task/presets"
	"crucible/internal/eval/task/tasktest"
)

// BaselinePolicies assembles the named baseline policies (`crucible
// model-server --policy`), in order, from the kinds that provide them: the
// multiple-choice policies answer from key (the random one with seed 0),
// the roleplay ones need none.
func BaselinePolicies(names []string, key *mcq.Dataset) ([]baseline.Named, error) {
	var out []baseline.Named
	for _, n := range names {
		var ps []baseline.Named
		var err error
		// One name at a time: a kind reads an empty list as all its policies.
		switch {
		case slices.Contains(mcqtest.Names(), n):
			ps, err = mcqtest.Policies(mcqtest.Config{Policies: []string{n}, Key: key})
		case slices.Contains(roleplaytest.Names(), n):
			ps, err = roleplaytest.Policies([]string{n})
		default:
			err = fmt.Errorf("baseline: unknown policy %q (want %s)", n,
				strings.Join(append(mcqtest.Names(), roleplaytest.Names()...), ", "))
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// TaskBaseline names the inputs of the task kind's baseline policies
// (`crucible model-server --task FILE|NAME [--data F] [--responses F]`).
type TaskBaseline struct {
	// TaskFile is an lm-eval task file or a preset's name; DataFile, when set, replaces its
	// evaluation split (a hub dataset_path needs it). Needed by oracle,
	// first and random.
	TaskFile, DataFile string
	// ResponsesFile is the replay policy's {match, response} JSONL file.
	ResponsesFile string
}

// TaskBaselinePolicies assembles the task kind's named baseline policies
// (internal/eval/task/tasktest), in order.
func TaskBaselinePolicies(names []string, tb TaskBaseline) ([]baseline.Named, error) {
	cfg := tasktest.Config{Policies: names}
	if tb.TaskFile != "" {
		// A task file or a shipped preset's name. Items are recognised by
		// their doc text: few-shot rows are not read.
		c, d, err := presets.Open(tb.TaskFile, tb.DataFile, "", 0)
		if err != nil {
			return nil, err
		}
		cfg.Task, cfg.Data = c, d
	}
	if tb.ResponsesFile != "" {
		f, err := os.Open(tb.ResponsesFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if cfg.Responses, err = tasktest.ReadResponses(f); err != nil {
			return nil, fmt.Errorf("%s: %w", tb.ResponsesFile, err)
		}
	}
	return tasktest.Policies(cfg)
}
