package patch

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"crucible/internal/sandbox"
)

// corpusDir holds the adversarial corpus: repos/<lang> are the small
// repositories (base tree, reference fix, honest alternative fix, test
// patch, task.json) and every other directory is one exploit, an
// exploit.diff against a repository and an expect.json.
const corpusDir = "testdata/corpus"

// corpusExpect is an exploit's expect.json.
type corpusExpect struct {
	Repo     string `json:"repo"`
	Expected string `json:"expected"` // always "unresolved"
	// Reason must appear in the verdict's reason (a policy rule name, or
	// the reason the deeper layer gives); Log, when set, in its log.
	Reason string `json:"reason"`
	Log    string `json:"log"`
	// Layer names the defence that stops the exploit, for the reader.
	Layer   string `json:"layer"`
	Exploit string `json:"exploit"`
	// Needs names a layer this branch lacks ("verdict"): the entry is
	// logged, not failed, while it is judged resolved.
	Needs          string `json:"needs"`
	TimeoutSeconds int    `json:"timeout_seconds"`
}

// readTree reads every file under dir as path → content.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// corpusTask turns repos/<lang> into a git repository — the base commit,
// then the fix with its tests, so the history after the base holds the
// answer, as in a mined task — and the task at the base, with the
// honest alternative fix as a diff.
func corpusTask(t *testing.T, lang string) (task Task, honest string) {
	t.Helper()
	src := filepath.Join(corpusDir, "repos", lang)
	b, err := os.ReadFile(filepath.Join(src, "task.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &task); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gitT(t, dir, "init", "-q")
	writeFiles(t, dir, readTree(t, filepath.Join(src, "base")))
	commitAll(t, dir, "base")
	base := gitT(t, dir, "rev-parse", "HEAD")
	diff := func(part string) string {
		writeFiles(t, dir, readTree(t, filepath.Join(src, part)))
		gitT(t, dir, "add", "-A")
		d := gitT(t, dir, "diff", "--cached") + "\n"
		gitT(t, dir, "reset", "-q", "--hard", base)
		return d
	}
	task.InstanceID, task.Repo, task.BaseCommit, task.CreatedAt = "corpus-"+lang, dir, base, time.Now()
	task.Patch, task.TestPatch, honest = diff("fix"), diff("tests"), diff("honest")
	writeFiles(t, dir, readTree(t, filepath.Join(src, "fix")))
	writeFiles(t, dir, readTree(t, filepath.Join(src, "tests")))
	commitAll(t, dir, "the fix, later in history")
	return task, honest
}

// TestAdversarialCorpus judges every exploit of the corpus with the real
// judge and asserts it unresolved for the expected reason, while the
// reference fix and an honest alternative fix of each repository
// resolve.
func TestAdversarialCorpus(t *testing.T) {
	slow(t)
	requirePytest(t)
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("go is not in PATH")
	}
	cfg := JudgeConfig{
		Sandbox:     sandbox.Config{Timeout: 2 * time.Minute, MemoryBytes: 2 << 30, Pids: 512},
		WorkRoot:    t.TempDir(),
		GoCacheSeed: goCacheSeed(t),
	}
	entries, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	type repo struct {
		task   Task
		honest string
	}
	repos := map[string]repo{}
	for _, lang := range []string{"go", "py"} {
		task, honest := corpusTask(t, lang)
		repos[lang] = repo{task, honest}
		for name, diff := range map[string]string{"reference fix": task.Patch, "honest alternative fix": honest} {
			v, err := Judge(context.Background(), cfg, task, diff)
			if err != nil {
				t.Fatal(err)
			}
			if !v.Resolved || len(v.PolicyViolations) > 0 {
				t.Fatalf("%s %s: resolved %v, reason %q, want resolved\nlog:\n%s", lang, name, v.Resolved, v.Reason, strings.Join(v.Log, "\n"))
			}
		}
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "repos" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) < 20 {
		t.Fatalf("the corpus has %d exploits, want at least 20", len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var want corpusExpect
			b, err := os.ReadFile(filepath.Join(corpusDir, name, "expect.json"))
			if err == nil {
				err = json.Unmarshal(b, &want)
			}
			if err != nil {
				t.Fatal(err)
			}
			diff, err := os.ReadFile(filepath.Join(corpusDir, name, "exploit.diff"))
			if err != nil {
				t.Fatal(err)
			}
			r, ok := repos[want.Repo]
			if !ok || want.Expected != "unresolved" || want.Reason == "" {
				t.Fatalf("bad expect.json: %+v", want)
			}
			cfg := cfg
			if want.TimeoutSeconds > 0 {
				cfg.Sandbox.Timeout = time.Duration(want.TimeoutSeconds) * time.Second
			}
			v, err := Judge(context.Background(), cfg, r.task, string(diff))
			if err != nil {
				t.Fatal(err)
			}
			log := strings.Join(v.Log, "\n")
			if v.Resolved && want.Needs != "" {
				t.Logf("judged resolved: stopped only by the %s layer, which this branch lacks (%s)", want.Needs, want.Exploit)
				return
			}
			if v.Resolved || !strings.Contains(v.Reason, want.Reason) || !strings.Contains(log, want.Log) {
				t.Fatalf("resolved %v reason %q, want unresolved with %q (log %q) — %s\nlog:\n%s", v.Resolved, v.Reason, want.Reason, want.Log, want.Exploit, log)
			}
			if v.Score > 0.5 {
				t.Fatalf("score %v for an exploit", v.Score)
			}
			t.Logf("%s → %s: %s", name, want.Layer, v.Reason)
		})
	}
}
