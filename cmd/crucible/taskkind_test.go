package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/baseline"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/identity"
)

// TestATaskCompetitionRanksTheBaselinePolicies: `competition create --kind
// task` from the social_iqa preset with 30 of its rows sent, the tasktest
// oracle and first policies submitted over HTTP and evaluated by a worker:
// the oracle scores 1 and first the share of rows whose gold is the first
// answer. A task file with a refused key is refused with its line, and an
// unknown preset with the presets' names.
func TestATaskCompetitionRanksTheBaselinePolicies(t *testing.T) {
	dir := t.TempDir()
	rows, first := siqaRowsFile(t, dir, 30)
	policies, err := app.TaskBaselinePolicies([]string{"oracle", "first"}, app.TaskBaseline{TaskFile: "social_iqa", DataFile: rows})
	if err != nil {
		t.Fatal(err)
	}
	models := httptest.NewServer(baseline.New(baseline.Config{Policies: policies}))
	defer models.Close()

	url := serveInProcess(t)
	ctx := context.Background()
	keyFile := filepath.Join(dir, "me.key")
	if _, stderr, code := crucible(t, "keys", "new", "--out", keyFile); code != 0 {
		t.Fatal(stderr)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("task: bad\ndataset_path: json\nprocess_docs: !function utils.process_docs\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := crucible(t, "competition", "create", "--server", url, "--key", keyFile, "--kind", "task", "--task", bad,
		"--data", rows, "--title", "Bad"); code == 0 || !strings.Contains(stderr, "bad.yaml:3:") {
		t.Fatalf("bad task file: exit %d, %q; want it refused at bad.yaml:3", code, stderr)
	}
	if _, stderr, code := crucible(t, "competition", "create", "--server", url, "--key", keyFile, "--kind", "task", "--task", "nosuch",
		"--title", "None"); code == 0 || !strings.Contains(stderr, "presets: gsm8k, social_iqa") {
		t.Fatalf("unknown preset: exit %d, %q; want the presets listed", code, stderr)
	}

	out, stderr, code := crucible(t, "competition", "create", "--server", url, "--key", keyFile, "--kind", "task", "--task", "social_iqa",
		"--data", rows, "--num-fewshot", "0", "--title", "Social IQa", "--json")
	if code != 0 {
		t.Fatalf("competition create: exit %d: %s", code, stderr)
	}
	var comp competition.Competition
	if err := json.Unmarshal([]byte(out), &comp); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if comp.Kind != "task" || comp.Items != 30 {
		t.Fatalf("created %+v; want a task competition of 30 items", comp)
	}

	key, err := identity.Load(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Server: url, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"oracle", "first"} {
		if _, err := c.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{Name: m, BaseURL: models.URL + "/v1", Model: baseline.ModelPrefix + m}); err != nil {
			t.Fatal(err)
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	subs, err := c.WaitScored(wctx, comp.ID, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		if s.State != competition.StateScored {
			t.Fatalf("submission %s (%s): state %s, reason %q; want scored", s.ID, s.Name, s.State, s.Reason)
		}
	}
	out, stderr, code = crucible(t, "leaderboard", "--server", url, "--competition", comp.ID, "--json")
	if code != 0 {
		t.Fatalf("crucible leaderboard exited %d: %s", code, stderr)
	}
	var lb []competition.Row
	if err := json.Unmarshal([]byte(out), &lb); err != nil {
		t.Fatalf("leaderboard JSON: %v\n%s", err, out)
	}
	if len(lb) != 2 || lb[0].Name != "oracle" || lb[0].Score != 1 || lb[0].Correct != 30 || lb[1].Name != "first" || lb[1].Score != first {
		t.Fatalf("leaderboard %+v; want oracle 1.0 above first %v", lb, first)
	}
}

// siqaRowsFile writes the first n rows of the social_iqa preset's sample
// to a file in dir and returns it with the share of rows whose label is 1
// (the first answer).
func siqaRowsFile(t *testing.T, dir string, n int) (string, float64) {
	t.Helper()
	var text strings.Builder
	ones := 0
	rows := siqaRows(t, n)
	for _, r := range rows {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		text.Write(line)
		text.WriteByte('\n')
		if r["label"] == "1" {
			ones++
		}
	}
	path := filepath.Join(dir, "rows.jsonl")
	if err := os.WriteFile(path, []byte(text.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, float64(ones) / float64(len(rows))
}
