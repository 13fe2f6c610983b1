package patch

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// newFileDiff is a diff that adds name with body.
func newFileDiff(name, body string) string {
	body = strings.TrimSuffix(body, "\n")
	lines := strings.Split(body, "\n")
	return fmt.Sprintf("diff --git a/%s b/%s\nnew file mode 100644\n--- /dev/null\n+++ b/%s\n@@ -0,0 +1,%d @@\n+%s\n",
		name, name, name, len(lines), strings.Join(lines, "\n+"))
}

// screenBoth runs both passes of the screen, the applied one over post
// (the patched files), or, for files post lacks, over what a new-file
// diff adds.
func screenBoth(diff string, post map[string]string, p Policy) []PolicyViolation {
	out := screenPolicy(diff, p)
	want, added := appliedTargets(diff)
	files := map[string][]byte{}
	for _, name := range want {
		if body, ok := post[name]; ok {
			files[name] = []byte(body)
			continue
		}
		var b strings.Builder
		for _, c := range parseChanges(diff) {
			if contains(c.paths, name) {
				for _, l := range c.added {
					b.WriteString(l.text + "\n")
				}
			}
		}
		files[name] = []byte(b.String())
	}
	return append(out, screenFiles(p, want, added, files, true)...)
}

func rulesOf(pv []PolicyViolation) string {
	var r []string
	for _, v := range pv {
		r = append(r, v.Rule)
	}
	return strings.Join(r, ",")
}

func TestPolicyRules(t *testing.T) {
	goMod := "diff --git a/go.mod b/go.mod\n--- a/go.mod\n+++ b/go.mod\n@@ -1,3 +1,4 @@\n module calc\n \n go 1.22\n+%s\n"
	setupCfg := "[metadata]\nname = calc\n\n[tool:pytest]\naddopts = -q\n"
	tests := []struct {
		rule      string
		trip      string // a diff that breaks the rule
		tripPost  map[string]string
		honest    string // a near miss that must pass
		honestPst map[string]string
	}{
		{rule: "pytest-config", trip: newFileDiff("pkg/conftest.py", "import os\n"), honest: newFileDiff("pkg/config.py", "TIMEOUT = 3\n")},
		{rule: "pytest-config", trip: newFileDiff(".pytest.ini", "[pytest]\naddopts = -p evil\n"), honest: newFileDiff("docs/pytest-notes.txt", "how we test\n")},
		{rule: "pytest-config", trip: newFileDiff("tox.ini", "[tox]\n"), honest: newFileDiff("tox_helpers.py", "X = 1\n")},
		{
			rule:      "pytest-config",
			trip:      "diff --git a/setup.cfg b/setup.cfg\n--- a/setup.cfg\n+++ b/setup.cfg\n@@ -4,2 +4,3 @@\n [tool:pytest]\n addopts = -q\n+    -p evil\n",
			tripPost:  map[string]string{"setup.cfg": setupCfg + "    -p evil\n"},
			honest:    "diff --git a/setup.cfg b/setup.cfg\n--- a/setup.cfg\n+++ b/setup.cfg\n@@ -1,2 +1,3 @@\n [metadata]\n name = calc\n+version = 2\n",
			honestPst: map[string]string{"setup.cfg": "[metadata]\nname = calc\nversion = 2\n\n[tool:pytest]\naddopts = -q\n"},
		},
		{
			rule:   "pytest-config",
			trip:   newFileDiff("pyproject.toml", "[tool.pytest.ini_options]\naddopts = \"-p evil\"\n"),
			honest: newFileDiff("pyproject.toml", "[project]\nname = \"calc\"\n\n[project.optional-dependencies]\ntest = [\"pytest>=7\"]\n"),
		},
		{rule: "pytest-config", trip: newFileDiff("pyproject.toml", "[project]\nname = \"calc\"\n\n[tool]\npytest.ini_options.addopts = \"-p evil\"\n"), honest: newFileDiff("pyproject.toml", "[tool.black]\nline-length = 100\n")},
		{rule: "runner-shadow", trip: newFileDiff("pytest.py", "import sys\n"), honest: newFileDiff("pytest_tips.md", "tips\n")},
		{rule: "runner-shadow", trip: newFileDiff("_pytest/runner.py", "X = 1\n"), honest: newFileDiff("runner/x.py", "X = 1\n")},
		{rule: "python-startup", trip: newFileDiff("sitecustomize.py", "import os\n"), honest: newFileDiff("site_utils.py", "import os\n")},
		{rule: "python-startup", trip: newFileDiff("evil.pth", "import evil\n"), honest: newFileDiff("path.txt", "x\n")},
		{rule: "py-test-framework", trip: newFileDiff("calc.py", "def add(a, b):\n    import _pytest.reports\n    return a + b\n"), honest: newFileDiff("calc.py", "def add(a, b):\n    import functools\n    return a + b\n")},
		{rule: "py-test-framework", trip: newFileDiff("calc.py", "import sys\nsys.modules['pytest'].main = None\n"), honest: newFileDiff("calc.py", "import sys\nMODULES = sorted(sys.builtin_module_names)\n")},
		{rule: "py-skip", trip: newFileDiff("calc.py", "import pytest\n\ndef add(a, b):\n    pytest.skip('later')\n"), honest: newFileDiff("calc.py", "def add(a, b):\n    return a + b  # skip nothing\n")},
		{rule: "py-hard-exit", trip: newFileDiff("calc.py", "import os\n\ndef add(a, b):\n    os._exit(0)\n"), honest: newFileDiff("calc.py", "import os\n\ndef add(a, b):\n    return int(os.environ.get('X', a + b))\n")},
		{rule: "py-hard-exit", trip: newFileDiff("calc.py", "import atexit\n\ndef later():\n    atexit.register(print)\n"), honest: newFileDiff("calc.py", "import atexit  # not used yet\n\ndef later():\n    return print\n")},
		{rule: "py-import-exit", trip: newFileDiff("calc.py", "import sys\nif 'pytest' in sys.modules:\n    sys.exit(0)\n"), honest: newFileDiff("calc.py", "import sys\n\ndef main():\n    sys.exit(0)\n\nif __name__ == '__main__':\n    sys.exit(main())\n")},
		{rule: "py-import-exit", trip: newFileDiff("calc.py", "class C:\n    exit(0)\n"), honest: newFileDiff("calc.py", "class C:\n    def exit(self):\n        return 0\n")},
		{rule: "py-import-argv", trip: newFileDiff("calc.py", "import sys\nUNDER_TEST = 'pytest' in sys.argv[0]\n"), honest: newFileDiff("calc.py", "import sys\n\ndef cli():\n    return sys.argv[1:]\n")},
		{rule: "py-import-reexec", trip: newFileDiff("calc.py", "import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'pytest'])\n"), honest: newFileDiff("calc.py", "import subprocess\n\ndef run(cmd):\n    return subprocess.run(cmd)\n")},
		{rule: "py-import-reexec", trip: newFileDiff("calc.py", "import os\nx = (1,\n     os.system('true'))\n"), honest: newFileDiff("calc.py", "import os\nDOC = \"\"\"\nos.system('true')\n\"\"\"\n")},
		{rule: "py-import-exit", trip: newFileDiff("calc.py", "import os, signal\n\n\ndef _boot():\n    os.kill(os.getpid(), signal.SIGKILL)\n\n\n_boot()\n"), honest: newFileDiff("calc.py", "import os, signal\n\n\ndef stop(pid):\n    os.kill(pid, signal.SIGTERM)\n\n\nDEFAULT = 3\n")},
		{rule: "py-import-exit", trip: newFileDiff("calc.py", "import sys\n\n\ndef later(f):\n    sys.exit(0)\n\n\n@later\ndef report():\n    pass\n"), honest: newFileDiff("calc.py", "import sys\n\n\ndef later(f):\n    sys.exit(0)\n\n\ndef report():\n    pass\n")},
		{
			rule:   "py-test-framework",
			trip:   "diff --git a/notes.txt b/calc.py\nsimilarity index 50%\nrename from notes.txt\nrename to calc.py\n--- a/notes.txt\n+++ b/calc.py\n@@ -1 +1,2 @@\n x = 1\n+import _pytest\n",
			honest: "diff --git a/notes.txt b/calc.py\nsimilarity index 50%\nrename from notes.txt\nrename to calc.py\n--- a/notes.txt\n+++ b/calc.py\n@@ -1 +1,2 @@\n x = 1\n+import functools\n",
		},
		{rule: "go-init-exit", trip: newFileDiff("calc.go", "package calc\n\nimport \"os\"\n\ntype runner struct{}\n\nfunc (runner) run() { os.Exit(0) }\n\nvar state struct{ r runner }\n\nfunc init() { state.r.run() }\n"), honest: newFileDiff("calc.go", "package calc\n\nimport \"os\"\n\ntype runner struct{}\n\nfunc (runner) run() { os.Exit(0) }\n\nvar state struct{ r runner }\n\nfunc init() { _ = state }\n")},
		{rule: "go-testmain", trip: newFileDiff("main_test.go", "package calc\n\nimport \"testing\"\n\nfunc TestMain(m *testing.M) {}\n"), honest: newFileDiff("calc_test.go", "package calc\n\nimport \"testing\"\n\nfunc TestMainPath(t *testing.T) {}\n")},
		{rule: "go-mod-directive", trip: fmt.Sprintf(goMod, "replace example.com/x => ./x"), honest: fmt.Sprintf(goMod, "require example.com/x v1.0.0")},
		{rule: "go-mod-directive", trip: fmt.Sprintf(goMod, "toolchain go1.99"), honest: fmt.Sprintf(goMod, "// toolchains are pinned elsewhere")},
		{rule: "go-vendor", trip: newFileDiff("vendor/testing/testing.go", "package testing\n"), honest: newFileDiff("vendors/list.go", "package vendors\n")},
		{rule: "go-test-internals", trip: newFileDiff("calc.go", "package calc\n\nimport _ \"unsafe\"\n\n//go:linkname x testing.x\nvar x int\n"), honest: newFileDiff("calc.go", "package calc\n\n// linkname is not used here.\nvar x int\n")},
		{rule: "go-hard-exit", trip: newFileDiff("calc.go", "package calc\n\nimport \"syscall\"\n\nfunc Add(a, b int) int { syscall.Exit(0); return 0 }\n"), honest: newFileDiff("calc.go", "package calc\n\nimport \"syscall\"\n\nfunc Pid() int { return syscall.Getpid() }\n")},
		{rule: "go-init-exit", trip: newFileDiff("calc.go", "package calc\n\nimport \"os\"\n\nfunc init() { os.Exit(0) }\n"), honest: newFileDiff("calc.go", "package calc\n\nimport \"os\"\n\nfunc Fail() { os.Exit(1) }\n")},
		{rule: "go-init-exit", trip: newFileDiff("calc.go", "package calc\n\nimport \"os\"\n\nvar _ = setup()\n\nfunc setup() int { os.Exit(0); return 0 }\n"), honest: newFileDiff("calc.go", "package calc\n\nimport \"log\"\n\nvar _ = mustLoad()\n\nfunc mustLoad() int { log.Fatal(\"x\"); return 3 }\n")},
		{rule: "go-init-args", trip: newFileDiff("calc.go", "package calc\n\nimport (\n\t\"os\"\n\t\"strings\"\n)\n\nvar testing = strings.Contains(os.Args[0], \".test\")\n"), honest: newFileDiff("calc.go", "package calc\n\nimport \"os\"\n\nfunc Name() string { return os.Args[0] }\n")},
		{rule: "go-init-reexec", trip: newFileDiff("calc.go", "package calc\n\nimport (\n\t\"os\"\n\t\"syscall\"\n)\n\nfunc init() { p, _ := os.Executable(); syscall.Exec(p, nil, nil) }\n"), honest: newFileDiff("calc.go", "package calc\n\nimport \"os/exec\"\n\nfunc Run() error { return exec.Command(\"true\").Run() }\n")},
		{rule: "go-init-output", trip: newFileDiff("calc.go", "package calc\n\nimport \"syscall\"\n\nfunc init() { syscall.Write(1, []byte(\"--- PASS: TestAdd (0.00s)\\n\")) }\n"), honest: newFileDiff("calc.go", "package calc\n\nimport \"syscall\"\n\nvar pageSize = syscall.Getpagesize()\n")},
		{rule: "go-init-output", trip: newFileDiff("calc.go", "package calc\n\nimport \"fmt\"\n\nfunc init() { report() }\n\nfunc report() { fmt.Println(\"--- PASS: TestAdd (0.00s)\") }\n"), honest: newFileDiff("calc.go", "package calc\n\nimport \"fmt\"\n\nvar greeting = fmt.Sprintf(\"%d\", 3)\n")},
	}
	for _, tt := range tests {
		t.Run(tt.rule+" trips on "+firstPath(tt.trip), func(t *testing.T) {
			pv := screenBoth(tt.trip, tt.tripPost, Policy{})
			if !strings.Contains(","+rulesOf(pv)+",", ","+tt.rule+",") {
				t.Fatalf("violations %v, want rule %s", pv, tt.rule)
			}
			if pv := screenBoth(tt.trip, tt.tripPost, Policy{Allow: []string{tt.rule}}); strings.Contains(","+rulesOf(pv)+",", ","+tt.rule+",") {
				t.Fatalf("allowed rule %s still reported: %v", tt.rule, pv)
			}
			if pv := screenBoth(tt.honest, tt.honestPst, Policy{}); len(pv) > 0 {
				t.Fatalf("the near miss is flagged: %v", pv)
			}
		})
	}
}

func firstPath(diff string) string {
	for _, c := range parseChanges(diff) {
		return c.paths[len(c.paths)-1]
	}
	return ""
}

func TestPolicyJudgesOnlyAddedLines(t *testing.T) {
	// The base already reads os.Args at init and exits under __main__; a
	// fix elsewhere in those files is not blamed for them.
	goPost := "package calc\n\nimport \"os\"\n\nvar prog = os.Args[0]\n\nfunc Add(a, b int) int {\n\treturn a + b\n}\n"
	goDiff := "diff --git a/calc.go b/calc.go\n--- a/calc.go\n+++ b/calc.go\n@@ -7,3 +7,3 @@ var prog = os.Args[0]\n func Add(a, b int) int {\n-\treturn a - b\n+\treturn a + b\n }\n"
	pyPost := "import sys\nARGS = sys.argv[1:]\n\ndef add(a, b):\n    return a + b\n"
	pyDiff := "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -4,2 +4,2 @@ ARGS = sys.argv[1:]\n def add(a, b):\n-    return a - b\n+    return a + b\n"
	for _, c := range []struct{ diff, name, post string }{{goDiff, "calc.go", goPost}, {pyDiff, "calc.py", pyPost}} {
		if pv := screenBoth(c.diff, map[string]string{c.name: c.post}, Policy{}); len(pv) > 0 {
			t.Fatalf("%s: a fix is blamed for base code: %v", c.name, pv)
		}
	}
	// The same files, with an added init that reaches the base's code.
	goPost = strings.Replace(goPost, "func Add", "func init() { _ = prog; os.Exit(0) }\n\nfunc Add", 1)
	goDiff = "diff --git a/calc.go b/calc.go\n--- a/calc.go\n+++ b/calc.go\n@@ -6,0 +7,2 @@\n+func init() { _ = prog; os.Exit(0) }\n+\n"
	if pv := screenBoth(goDiff, map[string]string{"calc.go": goPost}, Policy{}); rulesOf(pv) != "go-init-exit" {
		t.Fatalf("violations %v, want go-init-exit", pv)
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := (Policy{Allow: []string{"pytest-config", "go-vendor"}}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Policy{Allow: []string{"pytest-configs"}}).Validate(); err == nil || !strings.Contains(err.Error(), `unknown rule "pytest-configs"`) {
		t.Fatalf("an unknown rule is accepted: %v", err)
	}
}

// TestPolicyPassesTheFixesInThisRepositorysHistory is the false-positive
// check on real fixes: every commit of this repository that changes both
// code and tests (what Mine takes as a task) has its code part — the
// reference fix a task would hold — screened with the strict policy,
// over the files as that commit left them.
func TestPolicyPassesTheFixesInThisRepositorysHistory(t *testing.T) {
	top := gitT(t, ".", "rev-parse", "--show-toplevel")
	if gitT(t, top, "rev-parse", "--is-shallow-repository") == "true" {
		t.Skip("a shallow clone has no history of real fixes to screen")
	}
	screened := 0
	for _, c := range strings.Fields(gitT(t, top, "rev-list", "--no-merges", "HEAD")) {
		var code []string
		tests := false
		for _, f := range strings.Split(gitT(t, top, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", c), "\n") {
			switch {
			case f == "", strings.HasPrefix(f, "internal/eval/patch/harness/"):
				// The judge's own pytest reporter touches pytest's internals
				// by design; it is test-framework code, not code under test.
			case isTestPath(f):
				tests = true
			default:
				code = append(code, f)
			}
		}
		if !tests || len(code) == 0 {
			continue
		}
		diff := gitT(t, top, append([]string{"show", "--format=", c, "--"}, code...)...) + "\n"
		want, added := appliedTargets(diff)
		post := map[string][]byte{}
		for _, name := range want {
			if b, err := git(context.Background(), nil, "-C", top, "show", c+":"+name); err == nil {
				post[name] = b
			}
		}
		if pv := append(screenPolicy(diff, Policy{}), screenFiles(Policy{}, want, added, post, true)...); len(pv) > 0 {
			t.Errorf("commit %.12s: the fix is flagged: %v", c, pv)
		}
		screened++
	}
	t.Logf("screened %d real fixes", screened)
	if screened == 0 {
		t.Fatal("no commit changing both code and tests in the history")
	}
}
