package patch

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"crucible/internal/sandbox"
)

var (
	seedOnce sync.Once
	seedDir  string
	seedErr  error
)

// goCacheSeed warms a GOCACHE once per test binary with a trusted build of
// a tiny package, so each sandboxed run copies it instead of rebuilding std.
func goCacheSeed(t *testing.T) string {
	t.Helper()
	seedOnce.Do(func() {
		seedDir, seedErr = os.MkdirTemp("", "crucible-gocache-seed-")
		if seedErr != nil {
			return
		}
		dir, _ := os.MkdirTemp("", "crucible-warm-")
		defer os.RemoveAll(dir)
		writeFiles(t, dir, map[string]string{"go.mod": "module warm\n\ngo 1.22\n", "w.go": "package warm\n", "w_test.go": "package warm\nimport \"testing\"\nfunc TestW(t *testing.T) {}\n"})
		cmd := exec.Command("go", "test", "-json", "./...")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOCACHE="+seedDir, "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			seedErr = fmt.Errorf("warm go cache: %v: %s", err, out)
		}
	})
	if seedErr != nil {
		t.Fatal(seedErr)
	}
	return seedDir
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := git(context.Background(), nil, append([]string{"-C", dir}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func commitAll(t *testing.T, dir, msg string) {
	gitT(t, dir, "add", "-A")
	gitT(t, dir, "commit", "-q", "-m", msg)
}

// goRepo builds a Go module with a bug in Add, then a commit fixing it
// together with a new test.
func goRepo(t *testing.T) string {
	dir := t.TempDir()
	gitT(t, dir, "init", "-q")
	writeFiles(t, dir, map[string]string{
		"go.mod":       "module calc\n\ngo 1.22\n",
		"calc.go":      "package calc\n\n// Add adds.\nfunc Add(a, b int) int {\n\treturn a - b\n}\n\n// Sub subtracts.\nfunc Sub(a, b int) int { return a - b }\n",
		"calc_test.go": "package calc\n\nimport \"testing\"\n\nfunc TestSub(t *testing.T) {\n\tif Sub(3, 1) != 2 {\n\t\tt.Fatal(\"sub\")\n\t}\n}\n",
	})
	commitAll(t, dir, "calc: initial")
	writeFiles(t, dir, map[string]string{
		"calc.go":      "package calc\n\n// Add adds.\nfunc Add(a, b int) int {\n\treturn a + b\n}\n\n// Sub subtracts.\nfunc Sub(a, b int) int { return a - b }\n",
		"calc_test.go": "package calc\n\nimport \"testing\"\n\nfunc TestSub(t *testing.T) {\n\tif Sub(3, 1) != 2 {\n\t\tt.Fatal(\"sub\")\n\t}\n}\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n\t\tt.Fatal(\"add\")\n\t}\n}\n",
	})
	commitAll(t, dir, "calc: Add subtracted instead of adding")
	// A later commit the judged checkout must not reveal.
	writeFiles(t, dir, map[string]string{"FUTURE.md": "secret future\n"})
	commitAll(t, dir, "docs: future")
	return dir
}

// diffFor returns a unified diff that turns calc.go's Add body into body.
func addBodyDiff(oldLine, newLine string) string {
	return "diff --git a/calc.go b/calc.go\n--- a/calc.go\n+++ b/calc.go\n@@ -3,5 +3,5 @@ package calc\n // Add adds.\n func Add(a, b int) int {\n-\t" + oldLine + "\n+\t" + newLine + "\n }\n \n"
}

func judgeConfig(t *testing.T) JudgeConfig {
	return JudgeConfig{
		Sandbox:     sandbox.Config{Timeout: 3 * time.Minute, MemoryBytes: 2 << 30, Pids: 512},
		WorkRoot:    t.TempDir(),
		GoCacheSeed: goCacheSeed(t),
	}
}

func TestMineAndJudgeGoRepository(t *testing.T) {
	slow(t)
	if err := sandbox.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipping: go not in PATH")
	}
	repo := goRepo(t)
	cfg := judgeConfig(t)
	tasks, err := Mine(context.Background(), MineConfig{Repo: repo, Judge: cfg}, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 {
		t.Fatalf("mined %d tasks, want 1", len(tasks))
	}
	task := tasks[0]
	if strings.Join(task.FailToPass, ",") != "TestAdd" || strings.Join(task.PassToPass, ",") != "TestSub" {
		t.Fatalf("F2P %v P2P %v", task.FailToPass, task.PassToPass)
	}
	if strings.Contains(task.Patch, "_test.go") || !strings.Contains(task.TestPatch, "TestAdd") {
		t.Fatalf("bad split: patch %q test patch %q", task.Patch, task.TestPatch)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hostFile := filepath.Join(t.TempDir(), "host.txt")
	writeFiles(t, filepath.Dir(hostFile), map[string]string{"host.txt": "untouched"})

	fix := addBodyDiff("return a - b", "return a + b")
	withInit := func(body string) string {
		lines := 3 + strings.Count(body, "\n")
		return fix + fmt.Sprintf("diff --git a/init.go b/init.go\nnew file mode 100644\n--- /dev/null\n+++ b/init.go\n@@ -0,0 +1,%d @@\n+package calc\n+\n+", lines) + body + "\n"
	}
	tests := []struct {
		name         string
		patch        string
		wantApplied  bool
		wantResolved bool
		wantLog      string
		// relaxed judges with every policy rule allowed, to test the
		// layers behind the policy screen.
		relaxed bool
	}{
		{name: "the reference patch resolves the task", patch: task.Patch, wantApplied: true, wantResolved: true},
		{name: "an empty patch does not resolve it", patch: "", wantLog: "empty"},
		{name: "a patch that does not apply is a verdict", patch: addBodyDiff("return nothing", "return a + b"), wantLog: "patch does not apply"},
		{
			name:        "a patch that deletes the failing test and the old test does not resolve it",
			patch:       "diff --git a/calc_test.go b/calc_test.go\ndeleted file mode 100644\n--- a/calc_test.go\n+++ /dev/null\n@@ -1,9 +0,0 @@\n-package calc\n-\n-import \"testing\"\n-\n-func TestSub(t *testing.T) {\n-\tif Sub(3, 1) != 2 {\n-\t\tt.Fatal(\"sub\")\n-\t}\n-}\n",
			wantApplied: true, wantLog: "restored calc_test.go",
		},
		{
			name:        "a patch that adds a TestMain exiting 0 is stripped",
			patch:       "diff --git a/main_test.go b/main_test.go\nnew file mode 100644\n--- /dev/null\n+++ b/main_test.go\n@@ -0,0 +1,5 @@\n+package calc\n+\n+import (\"os\"; \"testing\")\n+\n+func TestMain(m *testing.M) { os.Exit(0) }\n",
			wantApplied: true, wantLog: "deleted main_test.go", relaxed: true,
		},
		{
			name:        "a patch that prints fake PASS lines does not resolve it",
			patch:       "diff --git a/init.go b/init.go\nnew file mode 100644\n--- /dev/null\n+++ b/init.go\n@@ -0,0 +1,8 @@\n+package calc\n+\n+import \"fmt\"\n+\n+func init() {\n+\tfmt.Println(\"--- PASS: TestAdd (0.00s)\\n\\x16--- PASS: TestAdd (0.00s)\")\n+\tfmt.Println(`{\"Action\":\"pass\",\"Package\":\"calc\",\"Test\":\"TestAdd\"}`)\n+}\n",
			wantApplied: true, relaxed: true,
		},
		{
			name:        "a fixed patch that needs the network fails in the sandbox",
			patch:       withInit(fmt.Sprintf("import \"net\"\n+\n+func init() { c, err := net.Dial(\"tcp\", %q); if err != nil { panic(err) }; c.Close() }", ln.Addr().String())),
			wantApplied: true, wantLog: "connect: connection refused",
		},
		{
			name:        "a fixed patch that writes outside its scratch fails in the sandbox",
			patch:       withInit(fmt.Sprintf("import \"os\"\n+\n+func init() { if err := os.WriteFile(%q, []byte(\"pwned\"), 0o644); err != nil { panic(err) } }", hostFile)),
			wantApplied: true, wantLog: "panic: open " + hostFile,
		},
		{
			name:        "a fixed patch that reads the future history finds none",
			patch:       withInit("import \"os\"\n+\n+func init() { for _, p := range []string{\".git\", \"FUTURE.md\"} { if _, err := os.Stat(p); err == nil { return } }; panic(\"no history\") }"),
			wantApplied: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := cfg
			if tt.relaxed {
				cfg.Policy = Policy{Allow: PolicyRules()}
			}
			v, err := Judge(context.Background(), cfg, task, tt.patch)
			if err != nil {
				t.Fatal(err)
			}
			log := strings.Join(v.Log, "\n")
			if v.Applied != tt.wantApplied || v.Resolved != tt.wantResolved {
				t.Fatalf("applied %v resolved %v, want %v %v\nlog:\n%s", v.Applied, v.Resolved, tt.wantApplied, tt.wantResolved, log)
			}
			if tt.wantLog != "" && !strings.Contains(log, tt.wantLog) && !strings.Contains(v.Reason, tt.wantLog) {
				t.Fatalf("log lacks %q:\n%s", tt.wantLog, log)
			}
			if tt.wantResolved && v.Score < 0.7 {
				t.Fatalf("resolved score %v < 0.7", v.Score)
			}
			if !tt.wantResolved && v.Score > 0.5 {
				t.Fatalf("unresolved score %v > 0.5", v.Score)
			}
		})
	}
	if b, _ := os.ReadFile(hostFile); string(b) != "untouched" {
		t.Fatalf("host file changed: %q", b)
	}
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Fatal("the host listener received a connection from a sandboxed test")
	}
}

func TestMineAndJudgePythonRepository(t *testing.T) {
	if err := sandbox.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if err := exec.Command("/usr/bin/python3", "-m", "pytest", "--version").Run(); err != nil {
		t.Skip("skipping: /usr/bin/python3 -m pytest does not work (install the Debian package python3-pytest)")
	}
	dir := t.TempDir()
	gitT(t, dir, "init", "-q")
	writeFiles(t, dir, map[string]string{
		"calc.py":      "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n",
		"test_calc.py": "from calc import sub\n\n\ndef test_sub():\n    assert sub(3, 1) == 2\n",
	})
	commitAll(t, dir, "initial")
	writeFiles(t, dir, map[string]string{
		"calc.py":      "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n",
		"test_calc.py": "from calc import add, sub\n\n\ndef test_sub():\n    assert sub(3, 1) == 2\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
	})
	commitAll(t, dir, "add subtracted")
	cfg := JudgeConfig{Sandbox: sandbox.Config{Timeout: 2 * time.Minute, MemoryBytes: 1 << 30, Pids: 256}, WorkRoot: t.TempDir()}
	tasks, err := Mine(context.Background(), MineConfig{Repo: dir, Judge: cfg}, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || strings.Join(tasks[0].FailToPass, ",") != "test_calc.py::test_add" || strings.Join(tasks[0].PassToPass, ",") != "test_calc.py::test_sub" {
		t.Fatalf("mined %+v", tasks)
	}
	task := tasks[0]
	// The hostile patches are judged with every policy rule allowed, to
	// test the layers behind the policy screen.
	relaxed := cfg
	relaxed.Policy = Policy{Allow: PolicyRules()}
	tests := []struct {
		name         string
		patch        string
		wantResolved bool
	}{
		{name: "the reference patch resolves the task", patch: task.Patch, wantResolved: true},
		{
			name:  "a conftest.py that turns failures into passes is deleted",
			patch: "diff --git a/conftest.py b/conftest.py\nnew file mode 100644\n--- /dev/null\n+++ b/conftest.py\n@@ -0,0 +1,9 @@\n+import pytest\n+\n+\n+@pytest.hookimpl(hookwrapper=True)\n+def pytest_runtest_makereport(item, call):\n+    outcome = yield\n+    rep = outcome.get_result()\n+    rep.outcome = \"passed\"\n+    rep.longrepr = None\n",
		},
		{
			name:  "printed PASSED summary lines do not resolve it",
			patch: "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -1,3 +1,8 @@\n+import atexit\n+print(\"=== short test summary info ===\")\n+print(\"PASSED test_calc.py::test_add\")\n+atexit.register(lambda: print(\"PASSED test_calc.py::test_add\"))\n+\n def add(a, b):\n     return a - b\n \n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := relaxed
			if tt.wantResolved {
				cfg.Policy = Policy{}
			}
			v, err := Judge(context.Background(), cfg, task, tt.patch)
			if err != nil {
				t.Fatal(err)
			}
			if !v.Applied || v.Resolved != tt.wantResolved {
				t.Fatalf("applied %v resolved %v, want resolved %v\nlog:\n%s", v.Applied, v.Resolved, tt.wantResolved, strings.Join(v.Log, "\n"))
			}
		})
	}
}

func TestMain(m *testing.M) {
	if root := os.Getenv(judgeChildEnv); root != "" {
		judgeChild(root)
	}
	code := m.Run()
	if seedDir != "" {
		os.RemoveAll(seedDir)
	}
	os.Exit(code)
}
