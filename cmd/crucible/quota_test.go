package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"crucible/internal/identity"
)

func TestServeQuotaFlagsLimitEveryKeyButTheOperators(t *testing.T) {
	dir := t.TempDir()
	dataset := filepath.Join(dir, "d.jsonl")
	if err := os.WriteFile(dataset, []byte(`{"question":"q","choices":["a","b"],"answer":0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, name := range []string{"alice", "operator"} {
		keys[name] = filepath.Join(dir, name+".key")
		if _, stderr, code := crucible(t, "keys", "new", "--out", keys[name]); code != 0 {
			t.Fatal(stderr)
		}
	}
	op, err := identity.Load(keys["operator"])
	if err != nil {
		t.Fatal(err)
	}
	server := serveInProcess(t, "--quota-competitions", "1", "--admin-key", op.ID())
	create := func(who string) (string, int) {
		_, stderr, code := crucible(t, "competition", "create", "--server", server, "--key", keys[who], "--kind", "mcq",
			"--dataset", dataset, "--title", "t")
		return stderr, code
	}
	if stderr, code := create("alice"); code != 0 {
		t.Fatalf("alice's first competition: exit %d: %s", code, stderr)
	}
	if stderr, code := create("alice"); code == 0 || !strings.Contains(stderr, "429") || !strings.Contains(stderr, "the limit is 1") {
		t.Fatalf("alice's second competition: exit %d, %q; want the quota's 429", code, stderr)
	}
	for range 2 {
		if stderr, code := create("operator"); code != 0 {
			t.Fatalf("the operator's competition: exit %d: %s", code, stderr)
		}
	}
	if _, stderr, code := crucible(t, "serve", "--quota-open", "-1"); code != 2 || !strings.Contains(stderr, "--quota-open") {
		t.Fatalf("serve --quota-open -1: exit %d, %q; want a usage error", code, stderr)
	}
}
