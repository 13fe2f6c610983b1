package app_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/consensus"
	"crucible/internal/identity"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// gitRepo makes a one-commit repository in dir and returns its commit.
func gitRepo(t *testing.T, dir string) string {
	t.Helper()
	run := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	run("init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("host data of "+dir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("add", "-A")
	run("commit", "-qm", "initial")
	return run("rev-parse", "HEAD")
}

func taskLine(repo, commit string) string {
	b, _ := json.Marshal(map[string]any{"instance_id": "t-1", "repo": repo, "base_commit": commit,
		"test_cmd": "cat secret.txt", "log_parser": "gotest"})
	return string(b) + "\n"
}

// TestPatchRepositoriesAreUploadedOrTheOperators: a key that is not the
// operator's cannot make the server use a repository on the host, even one
// beneath a registered root; the operator can name one beneath a root but
// not a symbolic link out of it; anyone can upload a bundle, which must
// hold the task's base commit.
func TestPatchRepositoriesAreUploadedOrTheOperators(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	inRoot := filepath.Join(root, "calc")
	commit := gitRepo(t, inRoot)
	foreign := filepath.Join(outside, "foreign")
	foreignCommit := gitRepo(t, foreign)
	if err := os.Symlink(foreign, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	operator, _ := identity.NewKey()
	stranger, _ := identity.NewKey()
	db := storetest.Databases(t)[0].URL
	url := startServer(t, app.Config{Database: db, RepoRoots: []string{root},
		Consensus: consensus.Config{Admins: []string{operator.ID()}}})
	as := func(k *identity.Key) *client.Client {
		c, _ := client.New(client.Config{Server: url, Key: k})
		return c
	}
	ctx := context.Background()
	create := func(k *identity.Key, tasks string, repos map[string][]byte) error {
		_, err := as(k).CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "patch", Title: "fixes", Dataset: tasks, Repos: repos})
		return err
	}
	bundle := func(dir string) []byte {
		file := filepath.Join(t.TempDir(), "repo.bundle")
		if out, err := exec.Command("git", "-C", dir, "bundle", "create", "-q", file, "--all").CombinedOutput(); err != nil {
			t.Fatalf("git bundle: %v\n%s", err, out)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}

	refused := []struct {
		name  string
		key   *identity.Key
		tasks string
		repos map[string][]byte
		want  string
	}{
		{"a stranger naming a host repository", stranger, taskLine(foreign, foreignCommit), nil, "only the operator's keys"},
		{"a stranger naming a repository beneath a root", stranger, taskLine(inRoot, commit), nil, "only the operator's keys"},
		{"the operator naming a repository outside the roots", operator, taskLine(foreign, foreignCommit), nil, "not beneath"},
		{"the operator naming a link out of a root", operator, taskLine(filepath.Join(root, "escape"), foreignCommit), nil, "not beneath"},
		{"a bundle without the base commit", stranger, taskLine("calc", foreignCommit), map[string][]byte{"calc": bundle(inRoot)}, "has no commit"},
		{"a file that is not a bundle", stranger, taskLine("calc", commit), map[string][]byte{"calc": []byte("not a bundle")}, "not a complete git bundle"},
	}
	for _, tt := range refused {
		err := create(tt.key, tt.tasks, tt.repos)
		if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want a 400 saying %q", tt.name, err, tt.want)
		}
	}
	if list, _ := as(nil).Competitions(ctx); len(list) != 0 {
		t.Fatalf("%d competitions exist after refused creations", len(list))
	}

	if err := create(operator, taskLine(inRoot, commit), nil); err != nil {
		t.Fatalf("the operator naming a repository beneath a root: %v", err)
	}
	if err := create(stranger, taskLine("calc", commit), map[string][]byte{"calc": bundle(inRoot)}); err != nil {
		t.Fatalf("a stranger uploading a bundle: %v", err)
	}
	list, _ := as(nil).Competitions(ctx)
	if len(list) != 2 {
		t.Fatalf("%d competitions, want 2", len(list))
	}
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	repos := map[string]bool{}
	for _, c := range list {
		items, err := st.CompetitionItems(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		var task struct{ Repo string }
		if err := json.Unmarshal(items[0], &task); err != nil {
			t.Fatal(err)
		}
		repos[task.Repo] = true
	}
	real, _ := filepath.EvalSymlinks(inRoot)
	if !repos[real] || len(repos) != 2 {
		t.Fatalf("stored repos %v, want %s and a sha256: digest", repos, real)
	}
	for r := range repos {
		if r != real && !strings.HasPrefix(r, "sha256:") {
			t.Fatalf("stored repo %q, want a sha256: digest", r)
		}
	}
}
