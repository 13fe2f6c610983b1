package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"crucible/internal/competition"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/patch"
)

// TestCompetitionCreateRelaxesNamedPolicyRules: --allow-rules reaches the
// stored competition config, and a misspelt rule is refused with the
// known names, creating nothing.
func TestCompetitionCreateRelaxesNamedPolicyRules(t *testing.T) {
	dir := t.TempDir()
	repo := calcRepo(t)
	head, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	task, _ := json.Marshal(patch.Task{InstanceID: "t1", Repo: repo, BaseCommit: strings.TrimSpace(string(head)), TestCmd: patch.Command{"go", "test", "./..."}, LogParser: patch.ParserGoTest})
	tasksFile := filepath.Join(dir, "tasks.jsonl")
	if err := os.WriteFile(tasksFile, append(task, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	server := serveInProcess(t)
	key := filepath.Join(dir, "me.key")
	if _, stderr, code := crucible(t, "keys", "new", "--out", key); code != 0 {
		t.Fatal(stderr)
	}
	create := func(rules string) (string, string, int) {
		return crucible(t, "competition", "create", "--server", server, "--key", key, "--kind", "patch", "--tasks", tasksFile,
			"--title", "calc fixes", "--allow-rules", rules, "--json")
	}
	if _, stderr, code := create("pytest-conftest"); code == 0 || !strings.Contains(stderr, `unknown rule "pytest-conftest"`) {
		t.Fatalf("a misspelt rule: exit %d, stderr %q; want a refusal naming it", code, stderr)
	}
	out, stderr, code := create("pytest-config,go-vendor")
	if code != 0 {
		t.Fatal(stderr)
	}
	var comp competition.Competition
	var cfg kinds.PatchConfig
	if err := json.Unmarshal([]byte(out), &comp); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(comp.Config, &cfg); err != nil || strings.Join(cfg.Policy.Allow, ",") != "pytest-config,go-vendor" {
		t.Fatalf("stored policy %+v (%v), want pytest-config and go-vendor allowed", cfg.Policy, err)
	}
}
