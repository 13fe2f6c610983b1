package patch

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// MineConfig configures Mine.
type MineConfig struct {
	// Repo is the local repository whose history is mined.
	Repo string
	// Since, when set, limits the walk to commits after this revision.
	Since string
	// Until is the last revision walked ("" = HEAD).
	Until string
	// TestCmd and LogParser are used for every task; empty means
	// `go test -json ./...` with "gotest" when the commit has a go.mod,
	// else `python3 -m pytest` with "pytest".
	TestCmd   []string
	LogParser string
	// Reruns is how many extra times each run is repeated to drop flaky
	// tests (0 means 1).
	Reruns int
	// Judge holds the sandbox settings and work root.
	Judge JudgeConfig
	// Issues are the texts of the issues the mined commits fix (see
	// Issue); a task whose commit fixes none gets a statement written from
	// its failing tests. The fix commit's message is never used.
	Issues []Issue
}

// Mine walks the history of cfg.Repo for non-merge commits that change both
// code and tests, splits each into a fix (non-test files) and a test patch,
// runs the tests at the parent with the test patch and with both patches
// in the sandbox, and returns a task for each commit where at least one
// test goes from failing to passing. Tests with a different status on a
// rerun are dropped as flaky. A task's problem statement is the text of
// the issues in cfg.Issues its commit fixes, or else written from the
// FAIL_TO_PASS tests' failures at the parent, never from the fix's commit
// message (see statement.go). log receives progress lines (may be nil).
func Mine(ctx context.Context, cfg MineConfig, log func(string)) ([]Task, error) {
	if log == nil {
		log = func(string) {}
	}
	if err := Sweep(cfg.Judge.WorkRoot); err != nil {
		log("sweep: " + err.Error())
	}
	repo, err := filepath.Abs(cfg.Repo)
	if err != nil {
		return nil, err
	}
	until := cfg.Until
	if until == "" {
		until = "HEAD"
	}
	rng := until
	if cfg.Since != "" {
		rng = cfg.Since + ".." + until
	}
	out, err := git(ctx, nil, "-C", repo, "rev-list", "--reverse", "--no-merges", "--parents", rng)
	if err != nil {
		return nil, fmt.Errorf("mine %s: %w", repo, err)
	}
	var tasks []Task
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 { // root commit or merge
			continue
		}
		commit, parent := f[0], f[1]
		t, why, err := mineCommit(ctx, cfg, repo, commit, parent)
		if err != nil {
			return tasks, fmt.Errorf("mine %s: commit %.12s: %w", repo, commit, err)
		}
		if t == nil {
			log(fmt.Sprintf("commit %.12s: skipped: %s", commit, why))
			continue
		}
		log(fmt.Sprintf("commit %.12s: task %s with %d FAIL_TO_PASS, %d PASS_TO_PASS", commit, t.InstanceID, len(t.FailToPass), len(t.PassToPass)))
		tasks = append(tasks, *t)
	}
	return tasks, nil
}

func mineCommit(ctx context.Context, cfg MineConfig, repo, commit, parent string) (*Task, string, error) {
	out, err := git(ctx, nil, "-C", repo, "diff", "--name-only", "--no-renames", "-z", parent, commit)
	if err != nil {
		return nil, "", err
	}
	var code, tests []string
	for _, p := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if p == "" {
			continue
		}
		if isTestPath(p) {
			tests = append(tests, p)
		} else {
			code = append(code, p)
		}
	}
	if len(code) == 0 || len(tests) == 0 {
		return nil, "does not change both code and tests", nil
	}
	diff := func(paths []string) (string, error) {
		args := append([]string{"-C", repo, "diff", "--no-color", "--no-ext-diff", "--full-index", parent, commit, "--"}, paths...)
		b, err := git(ctx, nil, args...)
		return string(b), err
	}
	fix, err := diff(code)
	if err != nil {
		return nil, "", err
	}
	testPatch, err := diff(tests)
	if err != nil {
		return nil, "", err
	}
	testCmd, parser := cfg.TestCmd, cfg.LogParser
	if len(testCmd) == 0 {
		if _, err := git(ctx, nil, "-C", repo, "cat-file", "-e", commit+":go.mod"); err == nil {
			testCmd, parser = []string{"go", "test", "-json", "./..."}, ParserGoTest
		} else {
			testCmd, parser = []string{"python3", "-m", "pytest"}, ParserPytest
		}
	}
	runs := cfg.Reruns
	if runs < 1 {
		runs = 1
	}
	var log []string
	ws, err := newWorkspace(cfg.Judge.WorkRoot, cfg.Judge.Sandbox, &log)
	if err != nil {
		return nil, "", err
	}
	defer ws.close()
	if err := ws.checkout(ctx, repo, parent, seedFor(ctx, cfg.Judge, parser, &log)); err != nil {
		return nil, "", err
	}
	// run returns the statuses of every run and the first run's stdout.
	run := func(patches ...string) ([]map[string]string, []byte, error) {
		if err := ws.reset(ctx); err != nil {
			return nil, nil, err
		}
		for i, p := range patches {
			if err := ws.applyTrusted(ctx, fmt.Sprintf("patch %d", i), p); err != nil {
				return nil, nil, err
			}
		}
		var all []map[string]string
		var stdout []byte
		for i := 0; i <= runs; i++ {
			st, res, _, err := ws.runTests(ctx, testCmd, parser)
			if err != nil {
				return nil, nil, err
			}
			if i == 0 {
				stdout = res.Stdout
			}
			all = append(all, st)
		}
		return all, stdout, nil
	}
	before, beforeOut, err := run(testPatch)
	if err != nil {
		return nil, "", err
	}
	after, _, err := run(testPatch, fix)
	if err != nil {
		return nil, "", err
	}
	names := map[string]bool{}
	for _, m := range append(append([]map[string]string{}, before...), after...) {
		for k := range m {
			names[k] = true
		}
	}
	var f2p, p2p []string
	for name := range names {
		b, bok := stable(before, name)
		a, aok := stable(after, name)
		if !bok || !aok {
			continue // flaky: differs between runs
		}
		switch {
		case passed(a) && !passed(b):
			f2p = append(f2p, name)
		case passed(a) && passed(b):
			p2p = append(p2p, name)
		}
	}
	if len(f2p) == 0 {
		return nil, "no test goes from failing to passing", nil
	}
	sort.Strings(f2p)
	sort.Strings(p2p)
	meta, err := git(ctx, nil, "-C", repo, "show", "-s", "--format=%cI%x00%B", commit)
	if err != nil {
		return nil, "", err
	}
	parts := strings.SplitN(string(meta), "\x00", 2)
	created, _ := time.Parse(time.RFC3339, strings.TrimSpace(parts[0]))
	msg := ""
	if len(parts) == 2 {
		msg = strings.TrimSpace(parts[1])
	}
	statement := statementFromFailures(parser, beforeOut, f2p)
	if issues := issuesFor(cfg.Issues, commit, msg); len(issues) > 0 {
		statement = statementFromIssues(issues)
	}
	return &Task{
		InstanceID:       fmt.Sprintf("%s-%.12s", filepath.Base(repo), commit),
		Repo:             repo,
		BaseCommit:       parent,
		ProblemStatement: statement,
		Patch:            fix,
		TestPatch:        testPatch,
		FailToPass:       f2p,
		PassToPass:       p2p,
		CreatedAt:        created.UTC(),
		TestCmd:          testCmd,
		LogParser:        parser,
	}, "", nil
}

// stable returns the status of name if it is the same in every run
// (absent counts as MISSING).
func stable(runs []map[string]string, name string) (string, bool) {
	var first string
	for i, m := range runs {
		s, ok := m[name]
		if !ok {
			s = StatusMissing
		}
		if i == 0 {
			first = s
		} else if s != first {
			return "", false
		}
	}
	return first, true
}
