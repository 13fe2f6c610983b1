package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/patch"
	"crucible/internal/identity"
	"crucible/internal/sandbox"
	"crucible/internal/store/storetest"
	"crucible/internal/validator/node"
)

// corpusGo is the small Go repository of the judge's adversarial corpus.
const corpusGo = "../../eval/patch/testdata/corpus/repos/go"

// run runs a command in dir and returns its trimmed output.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// copyTree copies the files of src (one level of directories) into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// patchTask builds the corpus task as a competition's tasks line (repo
// "calc"), the repository's bundle, and two patches: the honest fix and
// one that applies but leaves the bug.
func patchTask(t *testing.T) (tasks string, bundle []byte, honest, unresolved string) {
	t.Helper()
	var task patch.Task
	b, err := os.ReadFile(filepath.Join(corpusGo, "task.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &task); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run(t, dir, "git", "init", "-q")
	copyTree(t, filepath.Join(corpusGo, "base"), dir)
	run(t, dir, "git", "add", "-A")
	run(t, dir, "git", "commit", "-qm", "base")
	base := run(t, dir, "git", "rev-parse", "HEAD")
	diff := func(write func()) string {
		write()
		run(t, dir, "git", "add", "-A")
		d := run(t, dir, "git", "diff", "--cached") + "\n"
		run(t, dir, "git", "reset", "-q", "--hard", base)
		return d
	}
	part := func(name string) func() { return func() { copyTree(t, filepath.Join(corpusGo, name), dir) } }
	task.InstanceID, task.Repo, task.BaseCommit = "calc-1", "calc", base
	task.Patch, task.TestPatch, honest = diff(part("fix")), diff(part("tests")), diff(part("honest"))
	unresolved = diff(func() {
		f, err := os.OpenFile(filepath.Join(dir, "calc.go"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString("\n// Add is fine as it is.\n"); err != nil {
			t.Fatal(err)
		}
	})
	line, err := json.Marshal(task)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "repo.bundle")
	run(t, dir, "git", "bundle", "create", "-q", file, "--all")
	if bundle, err = os.ReadFile(file); err != nil {
		t.Fatal(err)
	}
	return string(line) + "\n", bundle, honest, unresolved
}

// TestIndependentPatchValidatorIgnoresATamperedVerdict: in a code-fix
// competition the hub's stored verdicts are swapped (the honest fix
// "unresolved", the patch that leaves the bug "resolved"). A validator that
// trusts the hub follows the tampering; one that judges each patch itself,
// in its own sandbox over the bundle it downloaded and checked, gives the
// honest fix the higher weight. A key without stake cannot read the full
// tasks or the bundles, and a bundle whose bytes do not match the digest
// the competition committed to is refused.
func TestIndependentPatchValidatorIgnoresATamperedVerdict(t *testing.T) {
	if err := sandbox.Available(); err != nil {
		t.Fatalf("this test needs the sandbox: %v", err)
	}
	ctx := context.Background()
	h := newTestHub(t)
	tasks, bundle, honestDiff, unresolvedDiff := patchTask(t)
	var err error
	if h.comp, err = h.client(t, h.admin).CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "patch", Title: "fixes",
		Dataset: tasks, Repos: map[string][]byte{"calc": bundle}}); err != nil {
		t.Fatal(err)
	}
	submit := func(diff string, score float64) (int64, competition.Submission) {
		k, _ := identity.NewKey()
		c := h.client(t, k)
		reg, err := c.Register(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := c.Submit(ctx, h.comp.ID, apiv1.CreateSubmissionRequest{Task: "calc-1", Patch: diff})
		if err != nil {
			t.Fatal(err)
		}
		// The hub's stored verdict, tampered: the scores are swapped.
		if err := h.db.InsertResult(ctx, sub.ID, eval.Result{Index: 0, Response: diff, Score: score, Correct: score == 1}); err != nil {
			t.Fatal(err)
		}
		card := competition.NewCard([]float64{score}, 0)
		if _, err := storetest.SetState(ctx, h.db, sub.ID, competition.StateScored, "", &card, time.Now()); err != nil {
			t.Fatal(err)
		}
		return reg.UID, sub
	}
	honest, _ := submit(honestDiff, 0)
	unresolved, _ := submit(unresolvedDiff, 1)

	staked := func() *client.Client {
		vk := mustKey(t)
		if _, err := h.client(t, h.admin).SetStake(ctx, vk.ID(), 10); err != nil {
			t.Fatal(err)
		}
		return h.client(t, vk)
	}
	validatorNode := func(cfg node.Config) *node.Node {
		cfg.Hub, cfg.Competition = staked(), h.comp.ID
		return node.New(cfg)
	}
	// A validator without a sandbox (no bwrap on its PATH) may only copy
	// the hub's verdicts, and says so: --trust-hub-results.
	path := os.Getenv("PATH")
	t.Setenv("PATH", t.TempDir())
	trusting, err := validatorNode(node.Config{TrustHubResults: true}).Weights(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", path)
	if !(trusting[unresolved] > trusting[honest]) {
		t.Fatalf("hub-trusting weights %v: the tampered verdict should move them (honest UID %d, unresolved UID %d)", trusting, honest, unresolved)
	}
	workDir := t.TempDir()
	own, err := validatorNode(node.Config{WorkDir: workDir, PatchTasks: []byte(tasks)}).Weights(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !(own[honest] > own[unresolved]) {
		t.Fatalf("independent weights %v: want the honest fix (UID %d) above the unresolved patch (UID %d)", own, honest, unresolved)
	}
	cached, _ := filepath.Glob(filepath.Join(workDir, "*.bundle"))
	if len(cached) != 1 {
		t.Fatalf("work dir holds %v, want the one verified bundle", cached)
	}

	// A key without stake gets 403 on the validators' routes.
	stranger := h.client(t, mustKey(t))
	digest := strings.TrimSuffix(filepath.Base(cached[0]), ".bundle")
	if _, err := stranger.PatchTasks(ctx, h.comp.ID); !isStatus(err, http.StatusForbidden) {
		t.Fatalf("full tasks without stake: %v, want 403", err)
	}
	if _, err := stranger.PatchBundle(ctx, h.comp.ID, digest); !isStatus(err, http.StatusForbidden) {
		t.Fatalf("bundle without stake: %v, want 403", err)
	}
	if _, err := stranger.PatchSubmissions(ctx, h.comp.ID); !isStatus(err, http.StatusForbidden) {
		t.Fatalf("patches without stake: %v, want 403", err)
	}

	// The hub's stored bundle is swapped for other bytes: a validator
	// refuses them, and judges nothing with them.
	if _, err := h.db.SQL().ExecContext(ctx, `UPDATE repo_bundles SET data = ? WHERE digest = ?`, []byte("other bytes"), digest); err != nil {
		t.Fatal(err)
	}
	fresh := validatorNode(node.Config{WorkDir: t.TempDir()})
	if _, err := fresh.Weights(ctx); err == nil {
		t.Fatal("a validator judged patches over a bundle that does not match its digest")
	}
	if _, err := staked().PatchBundle(ctx, h.comp.ID, digest); err == nil || !strings.Contains(err.Error(), "not the digest the competition committed to") {
		t.Fatalf("a swapped bundle: %v, want it refused", err)
	}
}

// TestAPatchValidatorChecksTheTasksAgainstItsOwnCopy: a hub that serves a
// task other than the one the competition was created from (here its
// FAIL_TO_PASS emptied, so any patch that applies would resolve it) is
// caught by a validator holding its own copy of the tasks file, and a
// tasks file that is not the competition's is refused at start.
func TestAPatchValidatorChecksTheTasksAgainstItsOwnCopy(t *testing.T) {
	if err := sandbox.Available(); err != nil {
		t.Fatalf("this test needs the sandbox: %v", err)
	}
	ctx := context.Background()
	h := newTestHub(t)
	tasks, bundle, _, unresolvedDiff := patchTask(t)
	var err error
	if h.comp, err = h.client(t, h.admin).CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "patch", Title: "fixes",
		Dataset: tasks, Repos: map[string][]byte{"calc": bundle}}); err != nil {
		t.Fatal(err)
	}
	miner := h.client(t, mustKey(t))
	if _, err := miner.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := miner.Submit(ctx, h.comp.ID, apiv1.CreateSubmissionRequest{Task: "calc-1", Patch: unresolvedDiff}); err != nil {
		t.Fatal(err)
	}
	items, err := h.db.CompetitionItems(ctx, h.comp.ID)
	if err != nil {
		t.Fatal(err)
	}
	var task map[string]any
	if err := json.Unmarshal(items[0], &task); err != nil {
		t.Fatal(err)
	}
	task["FAIL_TO_PASS"] = []string{}
	tampered, _ := json.Marshal(task)
	if _, err := h.db.SQL().ExecContext(ctx, `UPDATE competition_items SET payload = ? WHERE competition_id = ?`, string(tampered), h.comp.ID); err != nil {
		t.Fatal(err)
	}
	vk := mustKey(t)
	if _, err := h.client(t, h.admin).SetStake(ctx, vk.ID(), 10); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	n := node.New(node.Config{Hub: h.client(t, vk), Competition: h.comp.ID, PatchTasks: []byte(tasks), WorkDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if w, err := n.Weights(ctx); err == nil || !strings.Contains(log.String(), "is not the task in your tasks file") {
		t.Fatalf("weights %v, err %v, log:\n%s\nwant the tampered task refused", w, err, log.String())
	}
	other := node.New(node.Config{Hub: h.client(t, vk), Competition: h.comp.ID, PatchTasks: []byte(strings.Replace(tasks, "calc-1", "calc-2", 1))})
	if err := other.Run(ctx); !errors.Is(err, node.ErrCannotEvaluate) || !strings.Contains(err.Error(), "not the same tasks") {
		t.Fatalf("Run with another tasks file: %v, want it refused at start", err)
	}
}

// TestAPatchValidatorWithoutASandboxRefusesToStart: with no bwrap on the
// PATH, a validator of a patch competition stops at start naming the
// sandbox, instead of copying the hub's verdicts.
func TestAPatchValidatorWithoutASandboxRefusesToStart(t *testing.T) {
	ctx := context.Background()
	h := newTestHub(t)
	tasks, bundle, _, _ := patchTask(t)
	var err error
	if h.comp, err = h.client(t, h.admin).CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "patch", Title: "fixes",
		Dataset: tasks, Repos: map[string][]byte{"calc": bundle}}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	n := node.New(node.Config{Hub: h.client(t, h.admin), Competition: h.comp.ID})
	if err := n.Run(ctx); !errors.Is(err, node.ErrCannotEvaluate) || !strings.Contains(err.Error(), "sandbox") || !strings.Contains(err.Error(), "bubblewrap") {
		t.Fatalf("Run: %v, want it to stop naming the missing sandbox", err)
	}
}

func mustKey(t *testing.T) *identity.Key {
	t.Helper()
	k, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func isStatus(err error, code int) bool {
	var e *client.APIError
	return errors.As(err, &e) && e.StatusCode == code
}
