package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"crucible/internal/client"
	"crucible/internal/identity"
)

// TestATaskCompetitionWithAHostileTemplateIsRefused: a key that may create
// competitions sends task files whose templates would grow a row without
// bound (chained replaces, refused when the file is read; a set chain that
// doubles a value, stopped by the render meter). The hub answers each with
// the template's line, stores nothing and keeps serving.
func TestATaskCompetitionWithAHostileTemplateIsRefused(t *testing.T) {
	dir := t.TempDir()
	url := serveInProcess(t)
	keyFile := filepath.Join(dir, "me.key")
	if _, stderr, code := crucible(t, "keys", "new", "--out", keyFile); code != 0 {
		t.Fatal(stderr)
	}
	rows := filepath.Join(dir, "rows.jsonl")
	if err := os.WriteFile(rows, []byte(strings.Repeat(`{"q": "aa", "label": 0}`+"\n", 50)), 0o600); err != nil {
		t.Fatal(err)
	}
	head := "task: hostile\ndataset_path: hub/rows\noutput_type: multiple_choice\ntest_split: test\n" +
		"doc_to_choice: [\"yes\", \"no\"]\ndoc_to_target: label\n"
	replaces := "{{ q" + strings.Repeat(`|replace("a", "aaaaaaaaaa")`, 8) + " }}"
	doubling := "{% set a = q ~ q %}" + strings.Repeat("{% set a = a ~ a %}", 24) + "{{ a }}"
	for _, c := range []struct{ text, want string }{
		{head + "doc_to_text: '" + replaces + "'\n", "hostile.yaml:7: template line 1: the expression can grow its operands"},
		{head + "doc_to_text: '" + doubling + "'\n", "doc_to_text: template hostile.yaml:7 line 1: output exceeds 1048576 bytes"},
	} {
		file := filepath.Join(dir, "hostile.yaml")
		if err := os.WriteFile(file, []byte(c.text), 0o600); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := crucible(t, "competition", "create", "--server", url, "--key", keyFile, "--kind", "task", "--task", file,
			"--data", rows, "--title", "Hostile")
		if code == 0 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "400") {
			t.Fatalf("hostile task: exit %d, %q; want a 400 naming %q", code, stderr, c.want)
		}
	}
	key, err := identity.Load(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(client.Config{Server: url, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	comps, err := cl.Competitions(context.Background())
	if err != nil || len(comps) != 0 {
		t.Fatalf("competitions after the refusals: %+v, %v; want none, the hub still serving", comps, err)
	}
}
