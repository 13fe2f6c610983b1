// Package patch owns the code-fix task kind: SWE-bench-compatible tasks
// (ParseTasks), the honest judging of a candidate patch in the sandbox
// (Judge: private history-free checkout, apply chain, test-file
// protection, structured test output), the score (Score, PatchSimilarity)
// and mining tasks from a repository's history (Mine).
//
// Every verdict carries a Log with each step (apply attempts, restored or
// deleted test files, the test command, parsed statuses), so a score can
// always be explained.
//
// How forged results are kept out: the code under test runs in the same
// process as the test framework, so no single stream it can write is
// believed. A verdict is tampered (unresolved, score 0, the reason in
// Reason, TamperReason and the log) when the views below disagree:
//   - canaries (canary.go): four tests, two that must pass and two that
//     must fail, with fresh random names in the repository's style, are
//     appended to the test file (Go) or test module (pytest) holding the
//     first decisive test and added to the command's selection when it
//     names tests. A forger that passes "every test" passes the failing
//     canaries; one that prints only the names it knows leaves them out.
//   - exit code (crosscheck.go): go test must exit non-zero exactly when a
//     package failed; pytest's exit code must be the one pytest returned
//     and must say "failed" exactly when the harness saw a failure.
//   - go test, one process per test (procs.go): before any test runs, the
//     test binary of each package declaring a decisive test or a canary is
//     built (go test -c), so nothing the run later writes to the work tree
//     or the build cache reaches it; when the run would be resolved, every
//     decisive test and canary is rerun alone from that binary in its own
//     sandbox, whose exit status the host gets from the sandbox, not from
//     output. A test the report passed whose process fails alone is
//     tampering (at most 40 reruns; beyond, the log says they were
//     skipped). Output is still read only from -json events; a package
//     that failed without a failing test has all its tests failed.
//   - pytest harness (testrun.go, harness/crucible_pytest.py): pytest runs
//     as `python3 -I /harness/crucible_pytest.py`, so the system pytest is
//     imported before the work tree is on sys.path (a pytest.py or _pytest/
//     in the repository is never used), with the base commit's pytest
//     configuration given by -c from the read-only /harness (a .pytest.ini
//     or other configuration the candidate adds is not read),
//     PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 and no cache. Its reporter plugin is
//     registered before any conftest or project module is imported; it
//     records each phase's outcome as pytest's runner made it to a file in
//     /out, and flags a phase that raised but reports passed, a report
//     changed after it was made, and pytest internals (TestReport,
//     CallInfo, the runner's functions) replaced during the run. Its view
//     must agree with the -rA summary and the JUnit report, test by test.
//   - the policy screen (policy.go, policy_applied.go), before any test
//     runs: named rules refuse test-runner configuration and start-up
//     hooks, runner shadows, go.mod replace/toolchain lines, vendored
//     packages, and code that at init or import time exits, reads the
//     command line, re-executes the test binary or touches the test
//     framework's internals. A competition may relax rules by name
//     (Policy); testdata/corpus holds the exploits it is tested against.
//   - test files: files named by the test patch are restored, test files
//     and test configuration the candidate added are deleted and those it
//     changed are restored before the test patch is applied.
//
// Out of scope, honestly: code in the test process can read the work tree
// (canary bodies included), /proc and the reporter's open file, so a
// forger written against these layers — one that recognises the canaries,
// rewrites all views consistently and behaves identically when a test is
// run alone — is not ruled out by them; the patch policy screen and review
// of resolved patches are the answer there.
//
// How the host is kept safe from the work tree (see workspace): after the
// checkout, only sandboxed processes touch it (git runs inside over a
// read-only base repository); patches that add or change symbolic links,
// submodules or special files are refused; the JUnit report is read
// without following links or blocking and capped at 16 MiB; workspaces
// and sandbox cgroups left by a killed judge are swept at the next start.
//
// This package must never import the store, the API, the job queue or
// another eval kind; it uses internal/sandbox and the standard library.
package patch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"crucible/internal/sandbox"
)

// Name is the kind's name: the registry's key and every competition's kind.
const Name = "patch"

// applyTimeout bounds one patch application attempt.
const applyTimeout = 2 * time.Minute

// JudgeConfig configures Judge and Mine.
type JudgeConfig struct {
	// Sandbox holds the limits (Timeout, MemoryBytes, Pids, CPUSeconds),
	// extra read-only paths and, if set, the complete test environment.
	// Dir is ignored: each run gets a private work tree.
	Sandbox sandbox.Config
	// WorkRoot is the host directory for private checkouts ("" = os.TempDir()).
	WorkRoot string
	// GoCacheSeed, when set, is a warm GOCACHE directory copied (never
	// shared) into each run's private cache, so untrusted code cannot
	// poison the cache other runs use. When empty, Go runs are seeded
	// from a cache the judge builds once per process and WorkRoot from an
	// empty package's test (see warmGoCache).
	GoCacheSeed string
	// Weights configure Score; the zero value means DefaultWeights.
	Weights Weights
	// Now returns the submission time for Timeliness; nil means time.Now.
	Now func() time.Time
	// Published is when competitors could first see the task (on a
	// server: the competition's creation); Timeliness decays from it, so
	// it measures the competitor's time, not the age of the historical
	// fix. Zero (a local run) gives full Timeliness.
	Published time.Time
	// Policy relaxes rules of the patch policy screen; the zero value is
	// strict.
	Policy Policy
}

// Verdict is the outcome of judging one candidate patch.
type Verdict struct {
	// InstanceID is the judged task.
	InstanceID string `json:"instance_id"`
	// Applied reports whether the candidate patch applied.
	Applied bool `json:"applied"`
	// ApplyMethod is the apply attempt that worked ("" if none).
	ApplyMethod string `json:"apply_method,omitempty"`
	// Reason explains an unapplied or unresolved verdict in one line.
	Reason string `json:"reason,omitempty"`
	// Resolved reports that every FAIL_TO_PASS and PASS_TO_PASS test passed.
	Resolved bool `json:"resolved"`
	// FailToPass and PassToPass map each listed test to its status.
	FailToPass map[string]string `json:"FAIL_TO_PASS"`
	PassToPass map[string]string `json:"PASS_TO_PASS"`
	// Components are the parts of Score.
	Components Components `json:"components"`
	// Score is Score(Components, weights) in [0,1].
	Score float64 `json:"score"`
	// PolicyViolations lists the policy rules the candidate broke; any
	// makes the patch refused before a test runs.
	PolicyViolations []PolicyViolation `json:"policy_violations,omitempty"`
	// Tampered reports that the test run's results could not be trusted:
	// a canary did not come out as planted or two views of the results
	// disagreed. A tampered verdict is never resolved.
	Tampered bool `json:"tampered,omitempty"`
	// TamperReason lists what gave the tampering away.
	TamperReason string `json:"tamper_reason,omitempty"`
	// Log records every step, enough to explain the verdict.
	Log []string `json:"log"`
}

// Judge decides whether candidate fixes task, following SWE-bench's
// harness: a fresh history-free checkout of base_commit; the apply chain
// git apply → git apply --3way → patch --fuzz=5 (a patch that does not
// apply is a Verdict, not an error); test files restored and
// candidate-added test files deleted; the test patch applied; test_cmd run
// in the sandbox; statuses parsed from structured output. An error means
// infrastructure failure (no sandbox, unreadable repository, broken test
// patch), never a wrong patch.
func Judge(ctx context.Context, cfg JudgeConfig, task Task, candidate string) (Verdict, error) {
	v := Verdict{InstanceID: task.InstanceID, FailToPass: map[string]string{}, PassToPass: map[string]string{}}
	if err := task.Validate(); err != nil {
		return v, err
	}
	if err := sandbox.Available(); err != nil {
		return v, err
	}
	if err := Sweep(cfg.WorkRoot); err != nil {
		// A leftover that cannot be removed must not stop every judging.
		v.Log = append(v.Log, "sweep: "+err.Error())
	}
	ws, err := newWorkspace(cfg.WorkRoot, cfg.Sandbox, &v.Log)
	if err != nil {
		return v, fmt.Errorf("judge %s: %w", task.InstanceID, err)
	}
	defer ws.close()
	if err := ws.checkout(ctx, task.Repo, task.BaseCommit, seedFor(ctx, cfg, task.LogParser, &v.Log)); err != nil {
		return v, fmt.Errorf("judge %s: %w", task.InstanceID, err)
	}
	for _, t := range task.FailToPass {
		v.FailToPass[t] = StatusMissing
	}
	for _, t := range task.PassToPass {
		v.PassToPass[t] = StatusMissing
	}
	if strings.TrimSpace(candidate) == "" {
		v.Reason = "empty patch"
		v.Log = append(v.Log, "apply: the candidate patch is empty")
		return finish(v, cfg, task, candidate), nil
	}
	if pv := screenPolicy(candidate, cfg.Policy); len(pv) > 0 {
		return finish(refusePolicy(v, pv), cfg, task, candidate), nil
	}
	method, refused, err := ws.applyChain(ctx, "candidate", candidate)
	if err != nil {
		return v, fmt.Errorf("judge %s: %w", task.InstanceID, err)
	}
	if refused != "" {
		v.Reason = "patch refused: " + refused
		return finish(v, cfg, task, candidate), nil
	}
	if method == "" {
		v.Reason = "patch does not apply"
		v.Log = append(v.Log, "apply: every attempt failed: patch does not apply")
		return finish(v, cfg, task, candidate), nil
	}
	pv, err := ws.screenApplied(ctx, candidate, cfg.Policy)
	if err != nil {
		return v, fmt.Errorf("judge %s: policy screen: %w", task.InstanceID, err)
	}
	if len(pv) > 0 {
		return finish(refusePolicy(v, pv), cfg, task, candidate), nil
	}
	v.Applied, v.ApplyMethod = true, method
	if err := ws.protectTests(ctx, task.TestPatch); err != nil {
		return v, fmt.Errorf("judge %s: protect tests: %w", task.InstanceID, err)
	}
	if strings.TrimSpace(task.TestPatch) != "" {
		if err := ws.applyTrusted(ctx, "test patch", task.TestPatch); err != nil {
			return v, fmt.Errorf("judge %s: %w", task.InstanceID, err)
		}
	}
	run, err := ws.judgeTests(ctx, task)
	if err != nil {
		return v, fmt.Errorf("judge %s: run tests: %w", task.InstanceID, err)
	}
	fill(v.FailToPass, run.status)
	fill(v.PassToPass, run.status)
	v.Log = append(v.Log, "FAIL_TO_PASS: "+renderStatuses(v.FailToPass), "PASS_TO_PASS: "+renderStatuses(v.PassToPass))
	v.Resolved = allPass(v.FailToPass) && allPass(v.PassToPass)
	if len(run.tampered) > 0 {
		v.Tampered, v.TamperReason = true, strings.Join(limitList(run.tampered, 5), "; ")
	}
	switch {
	case run.refused != "":
		// A report replaced by a link, FIFO or huge file: said as such
		// (the other views then disagree with the missing report).
		v.Resolved = false
		v.Reason = run.refused
	case v.Tampered:
		v.Resolved = false
		v.Reason = "tampered: " + v.TamperReason
	case v.Resolved:
	case run.res.Killed != "":
		v.Reason = "tests stopped: " + run.res.Killed
	case !allPass(v.PassToPass):
		v.Reason = "a PASS_TO_PASS test does not pass"
	default:
		v.Reason = "a FAIL_TO_PASS test does not pass"
	}
	return finish(v, cfg, task, candidate), nil
}

// refusePolicy records policy violations: the patch counts as not
// applied and no test runs.
func refusePolicy(v Verdict, pv []PolicyViolation) Verdict {
	v.PolicyViolations = pv
	rules := make([]string, 0, len(pv))
	for _, p := range pv {
		v.Log = append(v.Log, "policy: "+p.String())
		if !contains(rules, p.Rule) {
			rules = append(rules, p.Rule)
		}
	}
	v.Reason = fmt.Sprintf("patch refused by policy: %s (%s)", strings.Join(rules, ", "), pv[0].Reason)
	return v
}

// applyTrusted applies a task's own patch (git apply, then --3way); it
// must apply, else the task is broken.
func (ws *workspace) applyTrusted(ctx context.Context, name, diff string) error {
	// Keep the candidate's changes: apply on top without resetting.
	file := strings.ReplaceAll(name, " ", "-") + ".diff"
	if err := os.WriteFile(filepath.Join(ws.in, file), []byte(diff), 0o644); err != nil {
		return err
	}
	res, err := ws.sandboxGit(ctx, `git apply --verbose "$1"`, boxIn+"/"+file)
	if err != nil {
		return err
	}
	ws.logf("apply %s: git apply: %s", name, strings.TrimSpace(tail(string(res.Stderr), 600)))
	if res.ExitCode != 0 {
		return fmt.Errorf("%s does not apply: %s", name, strings.TrimSpace(tail(string(res.Stderr), 600)))
	}
	return nil
}

func fill(want map[string]string, got map[string]string) {
	for t := range want {
		if s, ok := got[t]; ok {
			want[t] = s
		}
	}
}

// limitList keeps the first n items and counts the rest.
func limitList(xs []string, n int) []string {
	if len(xs) <= n {
		return xs
	}
	return append(append([]string(nil), xs[:n]...), fmt.Sprintf("and %d more", len(xs)-n))
}

func renderStatuses(m map[string]string) string {
	if len(m) == 0 {
		return "(none)"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}

// finish computes the score components and the score.
func finish(v Verdict, cfg JudgeConfig, task Task, candidate string) Verdict {
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	w := cfg.Weights.orDefault()
	c := Components{
		Similarity:  PatchSimilarity(candidate, task.Patch),
		Conciseness: Conciseness(candidate, task.Patch),
		Timeliness:  Timeliness(cfg.Published, now(), w.HalfLife),
	}
	// A tampered run's statuses are the forger's: no correctness, no score.
	if v.Applied && !v.Tampered {
		c.Correctness = Correctness(v.FailToPass, v.PassToPass)
	}
	v.Components = c
	v.Score = Score(c, w)
	v.Log = append(v.Log, fmt.Sprintf("score: %.4f (correctness %.3f, similarity %.3f, conciseness %.3f, timeliness %.3f)",
		v.Score, c.Correctness, c.Similarity, c.Conciseness, c.Timeliness))
	return v
}
