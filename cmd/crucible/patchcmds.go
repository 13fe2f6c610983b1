package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/patch"
)

// evalPatch judges one patch locally with the server's code and defaults.
func evalPatch(ctx context.Context, tasksFile, instance, patchFile string, o output, stdout io.Writer) error {
	if tasksFile == "" || instance == "" || patchFile == "" {
		return usagef("--kind patch needs --tasks FILE, --task INSTANCE and --patch DIFF")
	}
	f, err := os.Open(tasksFile)
	if err != nil {
		return err
	}
	defer f.Close()
	tasks, err := patch.ParseTasks(f)
	if err != nil {
		return err
	}
	diff, err := os.ReadFile(patchFile)
	if err != nil {
		return err
	}
	var task *patch.Task
	for i := range tasks {
		if tasks[i].InstanceID == instance {
			task = &tasks[i]
		}
	}
	if task == nil {
		return fmt.Errorf("no task %q in %s", instance, tasksFile)
	}
	v, err := patch.Judge(ctx, kinds.DefaultPatchConfig.JudgeConfig(time.Time{}, time.Now()), *task, string(diff))
	if err != nil {
		return err
	}
	return o.emit(stdout, v, func() error {
		fmt.Fprintf(stdout, "%s: resolved=%v score=%.4f %s\n", v.InstanceID, v.Resolved, v.Score, v.Reason)
		for _, group := range []struct {
			name string
			m    map[string]string
		}{{"FAIL_TO_PASS", v.FailToPass}, {"PASS_TO_PASS", v.PassToPass}} {
			names := make([]string, 0, len(group.m))
			for n := range group.m {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintf(stdout, "  %-12s %-8s %s\n", group.name, group.m[n], n)
			}
		}
		return nil
	})
}

func runPatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand(args, "patch",
		verb{"mine", "mine code-fix tasks from a local git repository"},
		verb{"tasks", "list a competition's code-fix tasks"},
		verb{"checkout", "check a task's repository out at its base commit"})
	if err != nil {
		return err
	}
	switch verb {
	case "tasks":
		return runPatchTasks(ctx, args, stdout, stderr)
	case "checkout":
		return runPatchCheckout(ctx, args, stdout, stderr)
	}
	fs := newFlags("patch mine", "Mine code-fix tasks from a local git repository: commits that change both code and tests are\n"+
		"split into a fix and a test patch; in the sandbox the tests must fail at the parent with the test patch\n"+
		"and pass with both; flaky tests (different result on a rerun) are dropped. Writes JSONL task instances.",
		"crucible patch mine --repo ./myrepo --since v1.2.0 --out tasks.jsonl", stderr)
	repo := fs.String("repo", "", "local git repository (or bundle) path")
	since := fs.String("since", "", "only commits after this revision")
	out := fs.String("out", "", "output file (default: standard output)")
	testCmd := fs.String("test-cmd", "", "test command (default: go test -json ./... for Go, pytest -rA for Python)")
	parser := fs.String("log-parser", "", "gotest or pytest (default: by the test command)")
	issuesFile := fs.String("issues", "", "JSONL issue texts {commit|pr|number, title, body} for the problem statements\n"+
		"(number matches \"Fixes #N\"/\"Closes #N\"/\"Resolves #N\" in a commit message, pr a squash-merge subject\n"+
		"ending in \"(#N)\"); without one a statement lists the failing tests and their assertion messages")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *repo == "" {
		return usagef("--repo PATH is required")
	}
	cfg := patch.MineConfig{Repo: *repo, Since: *since, LogParser: *parser, Judge: kinds.DefaultPatchConfig.JudgeConfig(time.Time{}, time.Now())}
	if *issuesFile != "" {
		f, err := os.Open(*issuesFile)
		if err != nil {
			return err
		}
		cfg.Issues, err = patch.ParseIssues(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if *testCmd != "" {
		cfg.TestCmd = strings.Fields(*testCmd)
	}
	tasks, err := patch.Mine(ctx, cfg, func(line string) { fmt.Fprintln(stderr, line) })
	if err != nil {
		return err
	}
	err = writeOutput(*out, stdout, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, t := range tasks {
			if err := enc.Encode(t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "mined %d task(s)\n", len(tasks))
	return nil
}

// writeOutput runs write on the file at path, or on stdout when path is "",
// and reports a failure to close the file (a write that did not land).
func writeOutput(path string, stdout io.Writer, write func(w io.Writer) error) error {
	if path == "" {
		return write(stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// exportLine is one evaluated item in `crucible export results`.
type exportLine struct {
	Competition string `json:"competition"`
	Submission  string `json:"submission_id"`
	Name        string `json:"name"`
	Submitter   string `json:"submitter"`
	State       string `json:"state"`
	Task        string `json:"task,omitempty"`
	Patch       string `json:"patch,omitempty"`
	// PatchSHA256 stands for a diff the exporter may not read.
	PatchSHA256 string          `json:"patch_sha256,omitempty"`
	Item        int             `json:"item"`
	Prediction  string          `json:"prediction"`
	Correct     bool            `json:"correct"`
	Score       float64         `json:"score"`
	Verdict     json.RawMessage `json:"verdict,omitempty"`
}

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand(args, "export",
		verb{"results", "every evaluated item of a competition as JSONL"},
		verb{"preferences", "a closed preference epoch as DPO pairs, rankings or CSV"})
	if err != nil {
		return err
	}
	if verb == "preferences" {
		return runExportPreferences(ctx, args, stdout, stderr)
	}
	fs := newFlags("export results", "Export every evaluated item of a competition as JSONL: submission, item, prediction, score,\n"+
		"and the kind's verdict (for code-fix: the patch, the apply method, every test's status and the log).\n"+
		"Code-fix diffs are sealed: with --key of the competition's creator, an operator or a staked\n"+
		"validator the export carries each patch, otherwise its sha256.",
		"crucible export results --competition c-abc123 --out results.jsonl", stderr)
	cf := addClientFlags(fs)
	comp := fs.String("competition", "", "competition id")
	out := fs.String("out", "", "output file (default: standard output)")
	c, err := parseWithID(fs, args, cf, "competition", comp, false)
	if err != nil {
		return err
	}
	subs, err := c.Submissions(ctx, *comp)
	if err != nil {
		return err
	}
	diffs := map[string]string{}
	if *cf.key != "" && slices.ContainsFunc(subs, func(s competition.Submission) bool { return s.Patch != nil }) {
		patches, err := c.PatchSubmissions(ctx, *comp)
		if err != nil {
			return fmt.Errorf("read the patches (the competition's creator, an operator or a staked validator only; drop --key to export without them): %w", err)
		}
		for _, p := range patches {
			diffs[p.SubmissionID] = p.Patch.Diff
		}
	}
	lines := 0
	err = writeOutput(*out, stdout, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, s := range subs {
			for offset := 0; ; {
				page, err := c.Results(ctx, s.ID, offset, 1000)
				if err != nil {
					return err
				}
				for _, r := range page.Results {
					l := exportLine{Competition: *comp, Submission: s.ID, Name: s.Name, Submitter: s.Submitter, State: string(s.State),
						Item: r.Index, Prediction: r.Prediction, Correct: r.Correct, Score: r.Score, Verdict: r.Detail}
					if s.Patch != nil {
						l.Task, l.Patch, l.PatchSHA256 = s.Patch.Task, diffs[s.ID], s.Patch.DiffSHA256
						if l.Patch != "" {
							l.PatchSHA256 = ""
						}
					}
					if err := enc.Encode(l); err != nil {
						return err
					}
					lines++
				}
				offset += len(page.Results)
				if len(page.Results) == 0 || offset >= page.Total {
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "exported %d item(s) from %d submission(s)\n", lines, len(subs))
	return nil
}

// bundleRepos bundles the local repository of every task for upload, keyed
// by the task's repo field (the server stores them by digest).
func bundleRepos(ctx context.Context, tasksJSONL []byte) (map[string][]byte, error) {
	tasks, err := patch.ParseTasks(bytes.NewReader(tasksJSONL))
	if err != nil {
		return nil, err
	}
	repos := map[string][]byte{}
	for _, t := range tasks {
		if _, done := repos[t.Repo]; done {
			continue
		}
		if repos[t.Repo], err = patch.ReadBundle(ctx, t.Repo); err != nil {
			return nil, fmt.Errorf("task %s: %w", t.InstanceID, err)
		}
	}
	return repos, nil
}
