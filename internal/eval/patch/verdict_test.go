package patch

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"crucible/internal/sandbox"
)

// goTask builds goRepo's task by hand (no mining): TestAdd must go from
// failing to passing, TestSub must keep passing.
func goTask(t *testing.T) Task {
	t.Helper()
	if err := sandbox.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipping: go not in PATH")
	}
	repo := goRepo(t)
	fixCommit := gitT(t, repo, "rev-parse", "HEAD~1")
	return Task{
		InstanceID: "verdict-go", Repo: repo, BaseCommit: gitT(t, repo, "rev-parse", "HEAD~2"),
		Patch:      gitT(t, repo, "diff", "HEAD~2", fixCommit, "--", "calc.go") + "\n",
		TestPatch:  gitT(t, repo, "diff", "HEAD~2", fixCommit, "--", "calc_test.go") + "\n",
		FailToPass: []string{"TestAdd"}, PassToPass: []string{"TestSub"},
		TestCmd: Command{"go", "test", "./..."}, LogParser: ParserGoTest, CreatedAt: time.Now(),
	}
}

// newGoFile is a diff adding name to the Go repository with body.
func newGoFile(name, body string) string {
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	return fmt.Sprintf("diff --git a/%s b/%s\nnew file mode 100644\n--- /dev/null\n+++ b/%s\n@@ -0,0 +1,%d @@\n+%s\n", name, name, name, len(lines), strings.Join(lines, "\n+"))
}

// forgeAllGo is an init() that, under the test flags, reads the test
// names from the package's own test files (canaries included), prints a
// PASS for each (framed with test2json's ^V marker when framed) and
// exits 0 before any test runs.
func forgeAllGo(framed bool) string {
	mark := ""
	if framed {
		mark = `\x16`
	}
	return `package calc

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

func init() {
	flags := strings.Join(os.Args, " ")
	if !strings.Contains(flags, "-test.") {
		return
	}
	files, _ := filepath.Glob("*_test.go")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, m := range regexp.MustCompile(` + "`func (Test\\w+)\\(`" + `).FindAllStringSubmatch(string(b), -1) {
			fmt.Printf("` + mark + `=== RUN   %s\n` + mark + `--- PASS: %s (0.00s)\n", m[1], m[1])
			fmt.Printf("{\"Action\":\"pass\",\"Package\":\"calc\",\"Test\":%q}\n", m[1])
		}
	}
	fmt.Print("` + mark + `PASS\n")
	os.Exit(0)
}
`
}

// rewriteInBatch is an init() that, only when the whole package runs
// (no -test.run), re-executes the test binary and turns TestAdd's FAIL
// into a PASS, keeping every other result and the exit code: the canaries
// come out as planted, and only running TestAdd in its own process shows
// the forgery. It then fixes Add in the work tree, so that a binary built
// after the run would pass TestAdd alone.
const rewriteInBatch = `package calc

import (
	"os"
	"os/exec"
	"strings"
)

func init() {
	flags := strings.Join(os.Args, " ")
	if !strings.Contains(flags, "-test.") || strings.Contains(flags, "-test.run") || os.Getenv("CALC_CHILD") != "" {
		return
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), "CALC_CHILD=1")
	out, _ := cmd.Output()
	os.Stdout.WriteString(strings.ReplaceAll(string(out), "--- FAIL: TestAdd ", "--- PASS: TestAdd "))
	if b, err := os.ReadFile("calc.go"); err == nil {
		os.WriteFile("calc.go", []byte(strings.Replace(string(b), "a - b", "a + b", 1)), 0o644)
	}
	os.Exit(cmd.ProcessState.ExitCode())
}
`

// The forged-result tests judge with every policy rule allowed: the policy
// screen refuses most of these patches before any test runs
// (TestAdversarialCorpus), and these tests show that the test-phase layers
// catch them on their own.

func TestJudgeGoForgedResultsAreTampered(t *testing.T) {
	slow(t)
	task := goTask(t)
	cfg := judgeConfig(t)
	cfg.Policy = Policy{Allow: PolicyRules()}
	tests := []struct {
		name, patch, wantReason string
	}{
		{"init prints ^V-framed PASS events for every test and exits 0", newGoFile("init.go", forgeAllGo(true)), "planted to fail came out PASSED"},
		{"init prints unframed PASS lines for every test and exits 0", newGoFile("init.go", forgeAllGo(false)), "planted to fail came out PASSED"},
		{"init rewrites the batch run's output only", newGoFile("init.go", rewriteInBatch), "TestAdd (.) is PASSED in the report but its own process exited 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Judge(context.Background(), cfg, task, tt.patch)
			if err != nil {
				t.Fatal(err)
			}
			log := strings.Join(v.Log, "\n")
			if v.Resolved || !v.Tampered || !strings.Contains(v.TamperReason, tt.wantReason) || !strings.HasPrefix(v.Reason, "tampered: ") || v.Score != 0 {
				t.Fatalf("resolved %v tampered %v score %v reason %q, want tampered with %q and score 0\nlog:\n%s", v.Resolved, v.Tampered, v.Score, v.Reason, tt.wantReason, log)
			}
			if !strings.Contains(log, "tampered: ") {
				t.Fatalf("the log does not say why the run is tampered:\n%s", log)
			}
		})
	}
}

func TestJudgeGoHonestFixesResolveWithCanaries(t *testing.T) {
	slow(t)
	task := goTask(t)
	cfg := judgeConfig(t)
	for name, patch := range map[string]string{
		"reference fix":             task.Patch,
		"alternative honest fix":    addBodyDiff("return a - b", "return b + a"),
		"fix with an ordinary init": addBodyDiff("return a - b", "return a + b") + newGoFile("table.go", "package calc\n\nvar table map[string]int\n\nfunc init() { table = map[string]int{\"one\": 1} }\n"),
	} {
		t.Run(name, func(t *testing.T) {
			v, err := Judge(context.Background(), cfg, task, patch)
			if err != nil {
				t.Fatal(err)
			}
			log := strings.Join(v.Log, "\n")
			if !v.Resolved || v.Tampered || !strings.Contains(log, "canaries: 4 planted in calc_test.go") || !strings.Contains(log, "rerun one per process") {
				t.Fatalf("resolved %v tampered %v reason %q\nlog:\n%s", v.Resolved, v.Tampered, v.Reason, log)
			}
		})
	}
}

// pyReportRewrite is a calc.py that leaves the bug in place and, once
// imported under pytest, makes every report pytest makes say "passed".
var pyReportRewrite = map[string]string{"calc.py": `import sys


def add(a, b):
    return a - b


if "pytest" in sys.modules or "_pytest" in sys.modules:
    import _pytest.reports as _r

    _make = _r.TestReport.from_item_and_call.__func__

    def _passed(cls, item, call):
        rep = _make(cls, item, call)
        rep.outcome, rep.longrepr = "passed", None
        return rep

    _r.TestReport.from_item_and_call = classmethod(_passed)
`}

// pyLatePlugin leaves the bug in place and, once imported under pytest,
// finds pytest's Config and registers a plugin whose outermost
// makereport wrapper turns every report into a pass.
var pyLatePlugin = map[string]string{"calc.py": `import gc, sys


def add(a, b):
    return a - b


if "_pytest.config" in sys.modules:
    import pytest
    import _pytest.config

    class _PassAll:
        @pytest.hookimpl(hookwrapper=True, tryfirst=True)
        def pytest_runtest_makereport(self, item, call):
            outcome = yield
            rep = outcome.get_result()
            rep.outcome, rep.longrepr = "passed", None

    for _o in gc.get_objects():
        if isinstance(_o, _pytest.config.Config):
            _o.pluginmanager.register(_PassAll(), "passall")
            break
`}

// pyShadow is a pytest.py at the repository root that, run as
// `python3 -m pytest`, prints a summary and writes a JUnit report
// passing every test it finds in the test files (canaries included).
var pyShadow = map[string]string{"pytest.py": `import glob, re, sys

tests = []
for f in sorted(glob.glob("tests/test_*.py")):
    for name in re.findall(r"^def (test_\w+)", open(f).read(), re.M):
        tests.append((f, name))
print("=" * 20 + " short test summary info " + "=" * 20)
for f, name in tests:
    print("PASSED %s::%s" % (f, name))
print("=" * 20 + " %d passed " % len(tests) + "=" * 20)
for a in sys.argv:
    if a.startswith("--junitxml="):
        with open(a.split("=", 1)[1], "w") as out:
            out.write("<testsuites><testsuite>")
            for f, name in tests:
                out.write('<testcase classname="%s" name="%s"/>' % (f[:-3].replace("/", "."), name))
            out.write("</testsuite></testsuites>")
sys.exit(0)
`}

// pyHiddenIni is a .pytest.ini loading a plugin from the repository that
// turns every report into a pass.
var pyHiddenIni = map[string]string{
	".pytest.ini": "[pytest]\naddopts = -p passall\n",
	"passall.py": `import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    rep.outcome, rep.longrepr = "passed", None
`,
}

// pyRecordRewrite leaves the bug in place and, at exit, rewrites the
// harness reporter's record so that every phase passed.
var pyRecordRewrite = map[string]string{"calc.py": `import atexit, glob


def add(a, b):
    return a - b


def _rewrite():
    for p in glob.glob("/out/results-*.jsonl"):
        text = open(p).read().replace('"outcome": "failed"', '"outcome": "passed"')
        open(p, "w").write(text)


atexit.register(_rewrite)
`}

// pyDiff is the diff from calc's base to files.
func pyDiff(t *testing.T, task Task, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	gitT(t, dir, "clone", "-q", task.Repo, "w")
	dir += "/w"
	gitT(t, dir, "checkout", "-q", task.BaseCommit)
	writeFiles(t, dir, files)
	gitT(t, dir, "add", "-A")
	return gitT(t, dir, "diff", "--cached", "--full-index") + "\n"
}

func TestJudgePythonForgedResultsAreRefused(t *testing.T) {
	slow(t)
	requirePytest(t)
	task := pyTask(t, calcBase, calcFix, calcTests, []string{"tests/test_calc.py::test_add"}, []string{"tests/test_calc.py::test_one"})
	cfg := pyConfig(t)
	cfg.Policy = Policy{Allow: PolicyRules()}
	// Findings each layer must log on its own (the canaries, the
	// reporter's checks), beside the verdict's reason.
	reportRewrite := []string{"tampered: canary tests/test_calc.py::test_add_", "planted to fail came out PASSED",
		"tampered: pytest internals replaced during the run: _pytest.reports.TestReport.from_item_and_call",
		"tampered: tests/test_calc.py::test_add: the call phase raised AssertionError but its report says passed"}
	tests := []struct {
		name       string
		files      map[string]string
		wantReason string
		findings   []string
	}{
		{"the module under test rewrites pytest's TestReport", pyReportRewrite, "tampered: ", reportRewrite},
		{"the module under test registers a plugin that passes everything", pyLatePlugin, "tampered: ",
			[]string{"planted to fail came out PASSED", "tampered: tests/test_calc.py::test_add: the call report was made failed but logged passed"}},
		{"a repository-root pytest.py shadows pytest", pyShadow, "a FAIL_TO_PASS test does not pass", nil},
		{"a hidden .pytest.ini loads a plugin that passes everything", pyHiddenIni, "a FAIL_TO_PASS test does not pass", nil},
		{"the harness record is rewritten at exit", pyRecordRewrite, "tests/test_calc.py::test_add is PASSED per the harness but FAILED in the -rA summary",
			[]string{"tampered: pytest exited 1 (tests failed) but the harness saw no failing test", "is PASSED per the harness but FAILED in the JUnit report"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Judge(context.Background(), cfg, task, pyDiff(t, task, tt.files))
			if err != nil {
				t.Fatal(err)
			}
			log := strings.Join(v.Log, "\n")
			if v.Resolved || v.Score != 0 || !strings.Contains(v.Reason, tt.wantReason) {
				t.Fatalf("resolved %v tampered %v score %v reason %q, want unresolved with %q\nlog:\n%s", v.Resolved, v.Tampered, v.Score, v.Reason, tt.wantReason, log)
			}
			for _, f := range tt.findings {
				if !strings.Contains(log, f) {
					t.Errorf("the log lacks the finding %q:\n%s", f, log)
				}
			}
		})
	}
}

func TestJudgePythonHonestFixesResolveWithCanaries(t *testing.T) {
	requirePytest(t)
	task := pyTask(t, calcBase, calcFix, calcTests, []string{"tests/test_calc.py::test_add"}, []string{"tests/test_calc.py::test_one"})
	cfg := pyConfig(t)
	for name, patch := range map[string]string{
		"reference fix":          task.Patch,
		"alternative honest fix": pyDiff(t, task, map[string]string{"calc.py": "import operator\n\n\ndef add(a, b):\n    return operator.add(b, a)\n"}),
	} {
		t.Run(name, func(t *testing.T) {
			v, err := Judge(context.Background(), cfg, task, patch)
			if err != nil {
				t.Fatal(err)
			}
			log := strings.Join(v.Log, "\n")
			if !v.Resolved || v.Tampered || !strings.Contains(log, "canaries: 4 planted in tests/test_calc.py") || !strings.Contains(log, "harness reporter") {
				t.Fatalf("resolved %v tampered %v reason %q\nlog:\n%s", v.Resolved, v.Tampered, v.Reason, log)
			}
		})
	}
	// A command the harness cannot wrap still runs, with canaries and the
	// summary/JUnit cross-check, and is not called tampered.
	task.TestCmd = Command{"sh", "-c", `exec python3 -m pytest "$@"`, "sh"}
	v, err := Judge(context.Background(), cfg, task, task.Patch)
	if log := strings.Join(v.Log, "\n"); err != nil || !v.Resolved || !strings.Contains(log, "is not a pytest command") {
		t.Fatalf("wrapped command: resolved %v reason %q err %v\nlog:\n%s", v.Resolved, v.Reason, err, log)
	}
}

// TestJudgeNoFalseTamperOnOrdinaryOutcomes judges honest fixes over test
// suites with every ordinary outcome besides pass and fail — skips,
// xfail, xpass, parameters with spaces, classes, fixture errors, subtests
// — which must not read as disagreement between the views.
func TestJudgeNoFalseTamperOnOrdinaryOutcomes(t *testing.T) {
	requirePytest(t)
	pyTests := map[string]string{"tests/test_calc.py": calcTests["tests/test_calc.py"] + `

import pytest


@pytest.fixture
def broken_teardown():
    yield 1
    raise RuntimeError("teardown")


@pytest.fixture
def broken_setup():
    raise RuntimeError("setup")


def test_skipped():
    pytest.skip("not here")


@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False


@pytest.mark.xfail(reason="fixed already")
def test_xpass():
    pass


@pytest.mark.parametrize("s", ["a b", "c"])
def test_param(s):
    assert s


class TestGroup:
    def test_in_class(self):
        assert add(2, 2) == 4


def test_teardown_error(broken_teardown):
    assert broken_teardown == 1


def test_setup_error(broken_setup):
    pass


def test_unrelated_failure():
    assert add(1, 1) == 3
`}
	task := pyTask(t, calcBase, calcFix, pyTests, []string{"tests/test_calc.py::test_add", "tests/test_calc.py::TestGroup::test_in_class"}, []string{"tests/test_calc.py::test_one"})
	v, err := Judge(context.Background(), pyConfig(t), task, task.Patch)
	if log := strings.Join(v.Log, "\n"); err != nil || !v.Resolved || v.Tampered {
		t.Fatalf("pytest: resolved %v tampered %v reason %q err %v\nlog:\n%s", v.Resolved, v.Tampered, v.Reason, err, log)
	}

	gt := goTask(t)
	gt.TestPatch += newGoFile("more_test.go", `package calc

import "testing"

func TestMany(t *testing.T) {
	for _, c := range []struct{ a, b, want int }{{1, 2, 3}, {0, 0, 0}} {
		t.Run("case", func(t *testing.T) {
			if Add(c.a, c.b) != c.want {
				t.Fatal(c)
			}
		})
	}
}

func TestSkipped(t *testing.T) { t.Skip("not here") }

func TestUnrelatedFailure(t *testing.T) { t.Fatal("unrelated") }
`)
	gt.FailToPass = append(gt.FailToPass, "TestMany", "TestMany/case#01")
	v, err = Judge(context.Background(), judgeConfig(t), gt, gt.Patch)
	if log := strings.Join(v.Log, "\n"); err != nil || !v.Resolved || v.Tampered || !strings.Contains(log, "8 decisive tests and canaries rerun one per process in") {
		t.Fatalf("go: resolved %v tampered %v reason %q err %v\nlog:\n%s", v.Resolved, v.Tampered, v.Reason, err, log)
	}
}

// TestJudgeAStarvedPrebuildIsNotTampering starves the judge's own build of
// the per-process test binaries (a memory limit the compiler cannot work
// in, as a loaded machine's time limit would): an honest fix must then be an
// infrastructure error, which the worker retries, never a tampering verdict
// that condemns the competitor for the judge's weakness. 24 MiB sits between
// what the git steps before it need (they pass at 12 MiB) and what a tiny
// package's build needs (48 MiB was sometimes enough, so a CI run once
// built it and the test saw no starvation at all).
func TestJudgeAStarvedPrebuildIsNotTampering(t *testing.T) {
	slow(t)
	task := goTask(t)
	cfg := judgeConfig(t)
	cfg.Sandbox.MemoryBytes = 24 << 20
	v, err := Judge(context.Background(), cfg, task, task.Patch)
	if err == nil || v.Tampered || !strings.Contains(err.Error(), "building the test binaries before the run hit a limit") {
		t.Fatalf("err %v, tampered %v reason %q\nlog:\n%s", err, v.Tampered, v.Reason, strings.Join(v.Log, "\n"))
	}
	t.Logf("infrastructure error, as expected: %v", err)
}
