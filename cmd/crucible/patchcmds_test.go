package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval/patch"
	"crucible/internal/sandbox"
)

// commit is one commit of a test repository: its message and the files it
// writes.
type commit struct {
	msg   string
	files map[string]string
}

// gitRepo builds a real git repository from commits, in order.
func gitRepo(t *testing.T, commits ...commit) string {
	t.Helper()
	dir := t.TempDir()
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	for _, c := range commits {
		for name, body := range c.files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		git("add", "-A")
		git("commit", "-qm", c.msg)
	}
	return dir
}

// calcRepo builds a real git repository whose second commit fixes Add and
// adds its test (the shape `patch mine` looks for).
func calcRepo(t *testing.T) string {
	t.Helper()
	return gitRepo(t,
		commit{"initial", map[string]string{
			"go.mod":       "module calc\n\ngo 1.22\n",
			"calc.go":      "package calc\n\n// Add adds.\nfunc Add(a, b int) int {\n\treturn a - b\n}\n\n// Sub subtracts.\nfunc Sub(a, b int) int { return a - b }\n",
			"calc_test.go": "package calc\n\nimport \"testing\"\n\nfunc TestSub(t *testing.T) {\n\tif Sub(3, 1) != 2 {\n\t\tt.Fatal(\"sub\")\n\t}\n}\n",
		}},
		commit{"fix Add", map[string]string{
			"calc.go":      "package calc\n\n// Add adds.\nfunc Add(a, b int) int {\n\treturn a + b\n}\n\n// Sub subtracts.\nfunc Sub(a, b int) int { return a - b }\n",
			"calc_test.go": "package calc\n\nimport \"testing\"\n\nfunc TestSub(t *testing.T) {\n\tif Sub(3, 1) != 2 {\n\t\tt.Fatal(\"sub\")\n\t}\n}\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n\t\tt.Fatal(\"add\")\n\t}\n}\n",
		}})
}

func TestCodeFixCompetitionEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("judges real repositories in the sandbox for minutes; skipped with -short")
	}
	if err := sandbox.Available(); err != nil {
		t.Skipf("code-fix judging needs the sandbox: %v", err)
	}
	dir := t.TempDir()
	repo := calcRepo(t)
	tasksFile := filepath.Join(dir, "tasks.jsonl")
	if _, stderr, code := crucible(t, "patch", "mine", "--repo", repo, "--out", tasksFile); code != 0 {
		t.Fatalf("patch mine: %s", stderr)
	}
	f, err := os.Open(tasksFile)
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := patch.ParseTasks(f)
	f.Close()
	if err != nil || len(tasks) != 1 || strings.Join(tasks[0].FailToPass, ",") != "TestAdd" {
		t.Fatalf("mined %+v, %v", tasks, err)
	}
	task := tasks[0]
	fix := filepath.Join(dir, "fix.diff")
	cheat := filepath.Join(dir, "cheat.diff")
	if err := os.WriteFile(fix, []byte(task.Patch), 0o644); err != nil {
		t.Fatal(err)
	}
	// A patch that fixes nothing and "passes" by printing fake lines.
	cheatDiff := "diff --git a/calc.go b/calc.go\n--- a/calc.go\n+++ b/calc.go\n@@ -1,4 +1,6 @@\n package calc\n \n+func init() { println(\"--- PASS: TestAdd (0.00s)\") }\n+\n // Add adds.\n func Add(a, b int) int {\n"
	if err := os.WriteFile(cheat, []byte(cheatDiff), 0o644); err != nil {
		t.Fatal(err)
	}

	server := serveInProcess(t)
	key := filepath.Join(dir, "me.key")
	if _, stderr, code := crucible(t, "keys", "new", "--out", key); code != 0 {
		t.Fatal(stderr)
	}
	var comp competition.Competition
	out, stderr, code := crucible(t, "competition", "create", "--server", server, "--key", key, "--kind", "patch", "--tasks", tasksFile, "--title", "calc fixes", "--json")
	if code != 0 {
		t.Fatal(stderr)
	}
	if err := json.Unmarshal([]byte(out), &comp); err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string]string{"reference": fix, "cheat": cheat} {
		if _, stderr, code := crucible(t, "submit", "patch", "--server", server, "--key", key, "--competition", comp.ID,
			"--task", task.InstanceID, "--file", file, "--name", name); code != 0 {
			t.Fatalf("submit %s: %s", name, stderr)
		}
	}
	var subs []competition.Submission
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(300 * time.Millisecond) {
		out, stderr, code := crucible(t, "status", "--server", server, "--competition", comp.ID, "--json")
		if code != 0 {
			t.Fatal(stderr)
		}
		if err := json.Unmarshal([]byte(out), &subs); err != nil {
			t.Fatal(err)
		}
		if subs[0].State.Final() && subs[1].State.Final() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not judged in time: %+v", subs)
		}
	}
	out, stderr, code = crucible(t, "export", "results", "--server", server, "--competition", comp.ID)
	if code != 0 {
		t.Fatal(stderr)
	}
	byName := map[string]exportLine{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l exportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		byName[l.Name] = l
	}
	ref, ch := byName["reference"], byName["cheat"]
	if !ref.Correct || ref.Prediction != "resolved" || ref.Score < 0.7 || ref.Task != task.InstanceID || !strings.Contains(string(ref.Verdict), "TestAdd") {
		t.Errorf("reference patch exported as %+v", ref)
	}
	if ch.Correct || ch.Score != 0 {
		t.Errorf("the fake-PASS patch exported as %+v", ch)
	}
	// Diffs are sealed: the public export carries each patch's sha256, the
	// creator's (signed) export the patch itself; a stranger's signed export
	// is refused, and the public submission shows no diff.
	if ref.Patch != "" || ref.PatchSHA256 == "" {
		t.Errorf("the public export shows patch %q (sha256 %q); want only the sha256", ref.Patch, ref.PatchSHA256)
	}
	out, stderr, code = crucible(t, "export", "results", "--server", server, "--competition", comp.ID, "--key", key)
	if code != 0 || !strings.Contains(out, `"patch":`) || !strings.Contains(out, "calc.go") {
		t.Errorf("the creator's export: exit %d, %s %s; want the diffs", code, out, stderr)
	}
	stranger := filepath.Join(dir, "stranger.key")
	if _, stderr, code := crucible(t, "keys", "new", "--out", stranger); code != 0 {
		t.Fatal(stderr)
	}
	if out, stderr, code := crucible(t, "export", "results", "--server", server, "--competition", comp.ID, "--key", stranger); code == 0 || !strings.Contains(stderr, "403") || strings.Contains(out, "calc.go") {
		t.Errorf("a stranger's export: exit %d, %q %q; want 403 and no diff", code, out, stderr)
	}
	out, _, _ = crucible(t, "status", "--server", server, "--competition", comp.ID, "--json")
	if strings.Contains(out, "Sub subtracts") || strings.Contains(out, "println") || !strings.Contains(out, "diff_sha256") {
		t.Errorf("the public submissions show a diff:\n%s", out)
	}
	// The local judge gives the server's verdict.
	out, stderr, code = crucible(t, "eval", "--kind", "patch", "--tasks", tasksFile, "--task", task.InstanceID, "--patch", fix, "--json")
	if code != 0 {
		t.Fatal(stderr)
	}
	var local patch.Verdict
	if err := json.Unmarshal([]byte(out), &local); err != nil {
		t.Fatal(err)
	}
	if !local.Resolved || local.FailToPass["TestAdd"] != patch.StatusPassed {
		t.Fatalf("local verdict %+v", local)
	}
	if local.Components.Correctness != 1 || local.Components.Similarity != 1 {
		t.Errorf("local components %+v: the reference patch is fully correct and identical to itself", local.Components)
	}
}
