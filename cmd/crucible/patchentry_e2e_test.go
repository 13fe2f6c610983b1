package main

import (
	"encoding/json"
	"io"
	"net/http"
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

// twoBugRepo builds a repository whose second and third commits each fix
// one bug with its test: two tasks.
func twoBugRepo(t *testing.T) string {
	t.Helper()
	test := func(bodies ...string) string {
		return "package calc\n\nimport \"testing\"\n\nfunc TestSub(t *testing.T) {\n\tif Sub(3, 1) != 2 {\n\t\tt.Fatal(\"sub\")\n\t}\n}\n" + strings.Join(bodies, "")
	}
	addTest := "\nfunc TestAdd(t *testing.T) {\n\tif got := Add(1, 2); got != 3 {\n\t\tt.Fatalf(\"Add(1, 2) = %d, want 3\", got)\n\t}\n}\n"
	mulTest := "\nfunc TestMul(t *testing.T) {\n\tif got := Mul(2, 5); got != 10 {\n\t\tt.Fatalf(\"Mul(2, 5) = %d, want 10\", got)\n\t}\n}\n"
	return gitRepo(t,
		commit{"initial", map[string]string{"go.mod": "module calc\n\ngo 1.22\n", "calc_test.go": test(),
			"calc.go": "package calc\n\nfunc Add(a, b int) int { return a - b }\n\nfunc Mul(a, b int) int { return a + b }\n\nfunc Sub(a, b int) int { return a - b }\n"}},
		commit{"use + in Add", map[string]string{"calc_test.go": test(addTest),
			"calc.go": "package calc\n\nfunc Add(a, b int) int { return a + b }\n\nfunc Mul(a, b int) int { return a + b }\n\nfunc Sub(a, b int) int { return a - b }\n"}},
		commit{"use * in Mul", map[string]string{"calc_test.go": test(addTest, mulTest),
			"calc.go": "package calc\n\nfunc Add(a, b int) int { return a + b }\n\nfunc Mul(a, b int) int { return a * b }\n\nfunc Sub(a, b int) int { return a - b }\n"}})
}

// A competitor enters a code-fix competition the way the README tells
// them to: list the tasks, check one out, fix it there, submit `git diff`,
// and find themselves on the leaderboard at 1 of 2 tasks resolved.
func TestEnterACodeFixCompetition(t *testing.T) {
	if testing.Short() {
		t.Skip("judges real repositories in the sandbox for minutes; skipped with -short")
	}
	if err := sandbox.Available(); err != nil {
		t.Skipf("code-fix judging needs the sandbox: %v", err)
	}
	dir := t.TempDir()
	tasksFile := filepath.Join(dir, "tasks.jsonl")
	if _, stderr, code := crucible(t, "patch", "mine", "--repo", twoBugRepo(t), "--out", tasksFile); code != 0 {
		t.Fatalf("patch mine: %s", stderr)
	}
	f, err := os.Open(tasksFile)
	if err != nil {
		t.Fatal(err)
	}
	mined, err := patch.ParseTasks(f)
	f.Close()
	if err != nil || len(mined) != 2 {
		t.Fatalf("mined %d tasks (%v), want 2", len(mined), err)
	}
	server := serveInProcess(t)
	owner, me := filepath.Join(dir, "owner.key"), filepath.Join(dir, "me.key")
	for _, k := range []string{owner, me} {
		if _, stderr, code := crucible(t, "keys", "new", "--out", k); code != 0 {
			t.Fatal(stderr)
		}
	}
	var comp competition.Competition
	out, stderr, code := crucible(t, "competition", "create", "--server", server, "--key", owner, "--kind", "patch", "--tasks", tasksFile, "--title", "calc", "--json")
	if code != 0 {
		t.Fatal(stderr)
	}
	if err := json.Unmarshal([]byte(out), &comp); err != nil {
		t.Fatal(err)
	}

	out, stderr, code = crucible(t, "patch", "tasks", "--server", server, "--competition", comp.ID, "--json")
	if code != 0 {
		t.Fatal(stderr)
	}
	var listed []patch.PublicTask
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 2 {
		t.Fatalf("patch tasks: %v %s", err, out)
	}
	for _, m := range mined {
		for _, secret := range []string{m.Patch, m.TestPatch, `"patch"`, `"test_patch"`} {
			if strings.Contains(out, strings.TrimSpace(secret)) {
				t.Fatalf("the task listing shows %q", secret)
			}
		}
	}
	task := listed[0]
	if task.InstanceID != mined[0].InstanceID || task.BaseCommit != mined[0].BaseCommit || task.PublishedAt.Sub(comp.CreatedAt).Abs() > time.Millisecond || // the store keeps microseconds

		!strings.Contains(task.ProblemStatement, "Add(1, 2) = -1, want 3") {
		t.Fatalf("listed %+v, want the Add task published with the competition, stated by its failing assertion", task)
	}
	if text, _, _ := crucible(t, "patch", "tasks", "--server", server, "--competition", comp.ID); !strings.Contains(text, "FAIL_TO_PASS  TestAdd") {
		t.Errorf("patch tasks text:\n%s", text)
	}

	work := filepath.Join(dir, "work")
	if _, stderr, code := crucible(t, "patch", "checkout", "--server", server, "--competition", comp.ID, "--task", task.InstanceID, "--dir", work); code != 0 {
		t.Fatalf("patch checkout: %s", stderr)
	}
	if b, err := os.ReadFile(filepath.Join(work, "calc_test.go")); err != nil || strings.Contains(string(b), "TestAdd") {
		t.Fatalf("the checkout's calc_test.go (%v) holds the test patch:\n%s", err, b)
	}
	gitIn := func(stdin string, args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Stdin = work, strings.NewReader(stdin)
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return string(b)
	}
	if log := gitIn("", "log", "--oneline"); strings.Count(log, "\n") != 1 {
		t.Fatalf("the checkout has history beyond its base:\n%s", log)
	}
	gitIn(mined[0].Patch, "apply", "-") // make the reference fix by hand, as it were
	fix := filepath.Join(dir, "fix.diff")
	if err := os.WriteFile(fix, []byte(gitIn("", "diff")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := crucible(t, "submit", "patch", "--server", server, "--key", me, "--competition", comp.ID, "--task", task.InstanceID, "--file", fix); code != 0 {
		t.Fatalf("submit: %s", stderr)
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
		if subs[0].State.Final() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not judged in time: %+v", subs)
		}
	}
	out, stderr, code = crucible(t, "leaderboard", "--server", server, "--competition", comp.ID, "--json")
	if code != 0 {
		t.Fatal(stderr)
	}
	var rows []competition.Row
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].ResolvedRate == nil || *rows[0].ResolvedRate != 0.5 || rows[0].Correct != 1 || rows[0].Items != 2 || !strings.HasPrefix(subs[0].Submitter, strings.TrimSuffix(rows[0].Name, "…")) {
		t.Fatalf("leaderboard %s, want my key at 1 of 2 tasks resolved", out)
	}
	if text, _, _ := crucible(t, "leaderboard", "--server", server, "--competition", comp.ID); !strings.Contains(text, "50.0% (1/2)") {
		t.Errorf("leaderboard text:\n%s", text)
	}
	page := func(path string) string {
		resp, err := http.Get(server + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	raw := page("/api/v1/competitions/" + comp.ID + "/tasks") // as served, not as the client decodes it
	for _, m := range mined {
		for _, secret := range []string{m.Patch, m.TestPatch, `"patch"`, `"test_patch"`, "a * b"} {
			if strings.Contains(raw, strings.TrimSpace(secret)) {
				t.Fatalf("the API's task listing shows %q:\n%s", secret, raw)
			}
		}
	}
	if !strings.Contains(raw, task.InstanceID) {
		t.Fatalf("the API's task listing lacks %s:\n%s", task.InstanceID, raw)
	}
	if p := page("/c/" + comp.ID + "/tasks"); !strings.Contains(p, "crucible patch checkout --server URL --competition "+comp.ID+" --task "+task.InstanceID) {
		t.Errorf("the tasks page lacks the checkout command")
	}
	if p := page("/s/" + subs[0].ID); !strings.Contains(p, "✓ resolved") || !strings.Contains(p, "TestAdd") || !strings.Contains(p, "checkout: tree of") {
		t.Errorf("the submission page lacks the verdict, the tests or the log")
	}
}
