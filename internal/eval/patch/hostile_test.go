package patch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"crucible/internal/sandbox"
)

// slow skips a long end-to-end sandbox test under -short (`make quick`);
// `make test`, and so CI, runs it.
func slow(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow end-to-end sandbox test: skipped under -short (make quick); make test runs it")
	}
}

func requirePytest(t *testing.T) {
	t.Helper()
	if err := sandbox.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if err := exec.Command("/usr/bin/python3", "-m", "pytest", "--version").Run(); err != nil {
		t.Skip("skipping: /usr/bin/python3 -m pytest does not work (install the Debian package python3-pytest)")
	}
}

// pyTask builds a Python repository whose base commit has base, and a
// task whose reference fix and test patch turn it into base+fix and
// base+tests; FAIL_TO_PASS and PASS_TO_PASS are given.
func pyTask(t *testing.T, base, fix, tests map[string]string, f2p, p2p []string) Task {
	t.Helper()
	dir := t.TempDir()
	gitT(t, dir, "init", "-q")
	writeFiles(t, dir, base)
	commitAll(t, dir, "base")
	baseCommit := gitT(t, dir, "rev-parse", "HEAD")
	diff := func(files map[string]string) string {
		writeFiles(t, dir, files)
		gitT(t, dir, "add", "-A")
		d := gitT(t, dir, "diff", "--cached", "--full-index") + "\n"
		gitT(t, dir, "reset", "-q", "--hard", baseCommit)
		return d
	}
	return Task{
		InstanceID: "hostile-1", Repo: dir, BaseCommit: baseCommit,
		Patch: diff(fix), TestPatch: diff(tests), FailToPass: f2p, PassToPass: p2p,
		TestCmd: Command{"python3", "-m", "pytest"}, LogParser: ParserPytest, CreatedAt: time.Now(),
	}
}

var (
	calcBase  = map[string]string{"calc.py": "def add(a, b):\n    return a - b\n", "tests/test_calc.py": "from calc import add\n\n\ndef test_one():\n    assert add(0, 0) == 0\n"}
	calcFix   = map[string]string{"calc.py": "def add(a, b):\n    return a + b\n"}
	calcTests = map[string]string{"tests/test_calc.py": "from calc import add\n\n\ndef test_one():\n    assert add(0, 0) == 0\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"}
)

func pyConfig(t *testing.T) JudgeConfig {
	return JudgeConfig{Sandbox: sandbox.Config{Timeout: 2 * time.Minute, MemoryBytes: 1 << 30, Pids: 256}, WorkRoot: t.TempDir()}
}

func TestJudgeRefusesLinksAndKeepsHostFiles(t *testing.T) {
	requirePytest(t)
	base := map[string]string{"README": "calc\n"}
	for k, v := range calcBase {
		base[k] = v
	}
	task := pyTask(t, base, calcFix, calcTests, []string{"tests/test_calc.py::test_add"}, []string{"tests/test_calc.py::test_one"})
	// The base also has a symbolic link, which the candidate may keep but not move.
	gitT(t, task.Repo, "checkout", "-q", task.BaseCommit)
	if err := os.Symlink("README", filepath.Join(task.Repo, "readme-link")); err != nil {
		t.Fatal(err)
	}
	commitAll(t, task.Repo, "base with a link")
	task.BaseCommit = gitT(t, task.Repo, "rev-parse", "HEAD")

	canary := t.TempDir()
	writeFiles(t, canary, map[string]string{"test_calc.py": "host file\n", "sub/keep.txt": "host file\n"})
	deleteTests := "diff --git a/tests/test_calc.py b/tests/test_calc.py\ndeleted file mode 100644\n--- a/tests/test_calc.py\n+++ /dev/null\n@@ -1,5 +0,0 @@\n-from calc import add\n-\n-\n-def test_one():\n-    assert add(0, 0) == 0\n"
	tests := []struct {
		name, patch, wantReason string
	}{
		{
			name:       "a directory replaced by a link to a host directory is refused",
			patch:      task.Patch + deleteTests + fmt.Sprintf("diff --git a/tests b/tests\nnew file mode 120000\n--- /dev/null\n+++ b/tests\n@@ -0,0 +1 @@\n+%s\n\\ No newline at end of file\n", canary),
			wantReason: `"tests" gives new file mode "120000" (symbolic link)`,
		},
		{
			name:       "a change to the target of a base link is refused",
			patch:      "diff --git a/readme-link b/readme-link\nindex 1111111..2222222 120000\n--- a/readme-link\n+++ b/readme-link\n@@ -1 +1 @@\n-README\n\\ No newline at end of file\n+" + canary + "\n\\ No newline at end of file\n",
			wantReason: `"readme-link" changes a symbolic link`,
		},
		{
			name:       "a link moved by a rename, without any mode line, is refused after applying",
			patch:      task.Patch + deleteTests + "diff --git a/readme-link b/tests\nsimilarity index 100%\nrename from readme-link\nrename to tests\n",
			wantReason: "the applied tree has a symbolic link tests that the base does not have",
		},
	}
	cfg := pyConfig(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Judge(context.Background(), cfg, task, tt.patch)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"test_calc.py", "sub/keep.txt"} {
				if b, err := os.ReadFile(filepath.Join(canary, f)); err != nil || string(b) != "host file\n" {
					t.Fatalf("host file %s changed: %q, %v", f, b, err)
				}
			}
			if v.Applied || v.Resolved || !strings.Contains(v.Reason, tt.wantReason) {
				t.Fatalf("applied %v resolved %v reason %q, want refused with %q\nlog:\n%s", v.Applied, v.Resolved, v.Reason, tt.wantReason, strings.Join(v.Log, "\n"))
			}
		})
	}
	v, err := Judge(context.Background(), cfg, task, task.Patch)
	if err != nil || !v.Resolved {
		t.Fatalf("the reference fix in a base with a link: resolved %v, err %v\nlog:\n%s", v.Resolved, err, strings.Join(v.Log, "\n"))
	}
}

// swapReport returns a fix of calc.py that, when the test process exits,
// replaces the JUnit report pytest wrote with what python makes of it.
func swapReport(python string) map[string]string {
	return map[string]string{"calc.py": "import atexit, os, sys\n\n\ndef _swap():\n" +
		"    for a in sys.argv:\n        if a.startswith('--junitxml='):\n            p = a.split('=', 1)[1]\n" +
		"            os.remove(p)\n            " + python + "\n\n\natexit.register(_swap)\n\n\ndef add(a, b):\n    return a + b\n"}
}

func TestJudgeRefusesAReplacedTestReport(t *testing.T) {
	requirePytest(t)
	tests := []struct {
		name, python, wantReason string
	}{
		{name: "a link to /dev/zero is not followed", python: "os.symlink('/dev/zero', p)", wantReason: "test report refused: it is a symbolic link"},
		{name: "a FIFO does not block the judge", python: "os.mkfifo(p)", wantReason: "test report refused: it is not a regular file (p"},
		{name: "a huge sparse file is not read", python: "open(p, 'w').truncate(1 << 30)", wantReason: "test report refused: report too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := pyTask(t, calcBase, calcFix, calcTests, []string{"tests/test_calc.py::test_add"}, []string{"tests/test_calc.py::test_one"})
			cfg := pyConfig(t)
			// The swap runs at exit (atexit), which the policy screen
			// refuses; relax it to test the report reader behind it.
			cfg.Policy = Policy{Allow: PolicyRules()}
			candidate := pyTask(t, calcBase, swapReport(tt.python), calcTests, nil, nil).Patch
			v, err := Judge(context.Background(), cfg, task, candidate)
			if err != nil {
				t.Fatal(err)
			}
			if !v.Applied || v.Resolved || !strings.Contains(v.Reason, tt.wantReason) {
				t.Fatalf("applied %v resolved %v reason %q, want unresolved with %q\nlog:\n%s", v.Applied, v.Resolved, v.Reason, tt.wantReason, strings.Join(v.Log, "\n"))
			}
			// The same fix without the swap resolves the task: the report, not the fix, was refused.
			if v, err := Judge(context.Background(), cfg, task, task.Patch); err != nil || !v.Resolved {
				t.Fatalf("reference fix: resolved %v err %v", v.Resolved, err)
			}
		})
	}
}

func TestJudgeSandboxSeesNoHostPaths(t *testing.T) {
	requirePytest(t)
	cfg := pyConfig(t)
	envTest := fmt.Sprintf("import os, sys\n\n\ndef test_no_host_path():\n    seen = os.getcwd() + repr(sorted(os.environ.items())) + repr(sys.argv) + repr(sys.path)\n    print(seen)\n    assert %q not in seen, seen\n", cfg.WorkRoot)
	base := map[string]string{"tests/test_env.py": envTest}
	for k, v := range calcBase {
		base[k] = v
	}
	task := pyTask(t, base, calcFix, calcTests, []string{"tests/test_calc.py::test_add"}, []string{"tests/test_env.py::test_no_host_path"})
	v, err := Judge(context.Background(), cfg, task, task.Patch)
	if err != nil {
		t.Fatal(err)
	}
	log := strings.Join(v.Log, "\n")
	if !v.Resolved {
		t.Fatalf("the environment test saw a host path: %s\nlog:\n%s", v.Reason, log)
	}
	out, _ := json.Marshal(v)
	if strings.Contains(string(out), cfg.WorkRoot) {
		t.Fatalf("the verdict names the host work root %s:\n%s", cfg.WorkRoot, out)
	}
}

// judgeChildEnv names the work root of a child process that judges a slow
// task until it is killed (see TestMain).
const judgeChildEnv = "CRUCIBLE_TEST_JUDGE_CHILD"

// judgeChild judges the task in $CRUCIBLE_TEST_JUDGE_CHILD_TASK; its test
// never ends on its own.
func judgeChild(workRoot string) {
	var task Task
	if err := json.Unmarshal([]byte(os.Getenv(judgeChildEnv+"_TASK")), &task); err != nil {
		panic(err)
	}
	cfg := JudgeConfig{Sandbox: sandbox.Config{Timeout: 10 * time.Minute, MemoryBytes: 1 << 30, Pids: 256}, WorkRoot: workRoot}
	_, err := Judge(context.Background(), cfg, task, task.Patch)
	panic(fmt.Sprintf("judging ended although the test never does: %v", err))
}

// sandboxCgroups lists the per-run cgroups that process pid owns.
func sandboxCgroups(t *testing.T, pid int) []string {
	t.Helper()
	var found []string
	prefix := fmt.Sprintf("crucible-sandbox-%d-", pid)
	_ = filepath.WalkDir("/sys/fs/cgroup", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), prefix) {
			found = append(found, p)
			return filepath.SkipDir
		}
		return nil
	})
	return found
}

func TestJudgeKilledMidRunLeavesNothingAfterSweep(t *testing.T) {
	requirePytest(t)
	if os.Getuid() != 0 {
		t.Skip("skipping: per-run cgroups need root here")
	}
	slow := map[string]string{"tests/test_slow.py": "import time\n\n\ndef test_slow():\n    open('/work/started', 'w').close()\n    time.sleep(3600)\n"}
	task := pyTask(t, calcBase, calcFix, slow, []string{"tests/test_slow.py::test_slow"}, nil)
	raw, _ := json.Marshal(task)
	workRoot := t.TempDir()

	// A live judge in this process: its workspace must survive the sweep.
	var liveLog []string
	live, err := newWorkspace(workRoot, sandbox.Config{}, &liveLog)
	if err != nil {
		t.Fatal(err)
	}
	defer live.close()
	// A workspace of an older version, which did not lock: not ours to judge.
	legacy := filepath.Join(workRoot, workspacePrefix+"legacy")
	writeFiles(t, legacy, map[string]string{"work/x.py": "x\n"})

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), judgeChildEnv+"="+workRoot, judgeChildEnv+"_TASK="+string(raw))
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	started := ""
	for deadline := time.Now().Add(2 * time.Minute); started == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		m, _ := filepath.Glob(filepath.Join(workRoot, workspacePrefix+"*", "work", "started"))
		if len(m) > 0 {
			started = m[0]
		}
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if started == "" {
		t.Fatal("the child never started its slow test")
	}
	leftDir := filepath.Dir(filepath.Dir(started))
	if _, err := os.Stat(leftDir); err != nil {
		t.Fatalf("the killed judge left no workspace to sweep: %v", err)
	}
	if cgs := sandboxCgroups(t, child.Process.Pid); len(cgs) == 0 {
		t.Fatal("the killed judge left no cgroup to sweep")
	}

	if err := Sweep(workRoot); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed judge's workspace %s survived the sweep: %v", leftDir, err)
	}
	if cgs := sandboxCgroups(t, child.Process.Pid); len(cgs) > 0 {
		t.Errorf("the killed judge's cgroups survived the sweep: %v", cgs)
	}
	if _, err := os.Stat(live.work); err != nil {
		t.Errorf("the sweep removed a live workspace: %v", err)
	}
	m, _ := filepath.Glob(filepath.Join(workRoot, "*"))
	if len(m) != 2 || !slices.Contains(m, live.root) || !slices.Contains(m, legacy) {
		t.Errorf("after the sweep the work root holds %v, want only the live workspace %s and the unlocked legacy one", m, live.root)
	}
}
