package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crucible/internal/app"
	"crucible/internal/competition"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/store/storetest"
)

// serveInProcess runs `crucible serve` in this process on a fresh SQLite
// database (loopback model URLs allowed; flags adds to its command line) and
// returns its URL once healthy.
// When the test ends it interrupts the server and checks it exits cleanly.
func serveInProcess(t *testing.T, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := freeAddr(t)
	served := make(chan int, 1)
	args := append([]string{"serve", "--database", storetest.Databases(t)[0].URL, "--listen", addr,
		"--log-level", "error", "--allow-endpoints", "127.0.0.0/8"}, flags...)
	go func() {
		var o, e bytes.Buffer
		served <- run(ctx, args, &o, &e)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-served; code != 0 {
			t.Errorf("serve exited %d after interrupt", code)
		}
	})
	waitHealthy(t, addr)
	return "http://" + addr
}

// crucible runs one command line in-process and returns stdout, stderr and the exit code.
func crucible(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestDemoPrintsTheExpectedLeaderboard(t *testing.T) {
	out, stderr, code := crucible(t, "demo", "--json")
	if code != 0 {
		t.Fatalf("demo exited %d: %s", code, stderr)
	}
	var rows []competition.Row
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("demo --json printed %q: %v", out, err)
	}
	byName := map[string]competition.Row{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	if len(rows) != 4 || rows[0].Name != "baseline-oracle" || byName["baseline-oracle"].Score != 1 {
		t.Fatalf("leaderboard %+v: want four rows led by oracle at 1.0", rows)
	}
	// 104 of the 300 sample items have label 1 (counted from the file).
	if r := byName["baseline-first"]; r.Correct != 104 || math.Abs(r.Score-104.0/300) > 1e-12 {
		t.Errorf("first: %+v, want the label-1 share 104/300", r)
	}
	if r := byName["baseline-random"]; r.CILow > 1.0/3 || r.CIHigh < 1.0/3 {
		t.Errorf("random: interval [%f, %f] does not contain 1/3", r.CILow, r.CIHigh)
	}
	for _, r := range rows {
		if r.Items != 300 {
			t.Errorf("%s evaluated %d items, want 300", r.Name, r.Items)
		}
	}
}

// TestLocalEvalEqualsTheServersScore runs the same model through the server
// (serve + competition create + submit model + leaderboard, all through the
// CLI) and through `crucible eval`, and compares the numbers.
func TestLocalEvalEqualsTheServersScore(t *testing.T) {
	ds, err := mcq.Parse(strings.NewReader(string(app.SampleDataset)), "s")
	if err != nil {
		t.Fatal(err)
	}
	h, err := mcqtest.New(mcqtest.Config{Policies: []string{"overlap"}, Key: ds})
	if err != nil {
		t.Fatal(err)
	}
	models := httptest.NewServer(h)
	defer models.Close()
	dir := t.TempDir()
	dataset := filepath.Join(dir, "siqa.jsonl")
	if err := os.WriteFile(dataset, app.SampleDataset, 0o644); err != nil {
		t.Fatal(err)
	}

	server := serveInProcess(t)
	keyFile := filepath.Join(dir, "me.key")
	if _, stderr, code := crucible(t, "keys", "new", "--out", keyFile); code != 0 {
		t.Fatal(stderr)
	}
	var comp competition.Competition
	out, stderr, code := crucible(t, "competition", "create", "--server", server, "--key", keyFile, "--kind", "mcq",
		"--dataset", dataset, "--title", "Social IQa", "--json")
	if code != 0 {
		t.Fatal(stderr)
	}
	if err := json.Unmarshal([]byte(out), &comp); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := crucible(t, "submit", "model", "--server", server, "--key", keyFile, "--competition", comp.ID,
		"--base-url", models.URL, "--model", "baseline-overlap"); code != 0 {
		t.Fatalf("submit: %s", stderr)
	}
	if _, stderr, code := crucible(t, "submit", "model", "--server", server, "--competition", comp.ID,
		"--base-url", models.URL, "--model", "baseline-overlap"); code != 2 || !strings.Contains(stderr, "--key") {
		t.Fatalf("submit without a key: exit %d, %q; want a usage error naming --key", code, stderr)
	}
	var rows []competition.Row
	for deadline := time.Now().Add(time.Minute); len(rows) == 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the submission was not scored in a minute")
		}
		out, stderr, code := crucible(t, "leaderboard", "--server", server, "--competition", comp.ID, "--json")
		if code != 0 {
			t.Fatal(stderr)
		}
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, code = crucible(t, "eval", "--kind", "mcq", "--dataset", dataset, "--base-url", models.URL+"/v1",
		"--model", "baseline-overlap", "--json")
	if code != 0 {
		t.Fatal(stderr)
	}
	var local struct {
		Score, CILow, CIHigh float64
		Items, Correct       int
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"score", "ci_low", "ci_high", "items", "correct"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("eval --json lacks %q: %s", k, out)
		}
	}
	local.Score, local.CILow, local.CIHigh = raw["score"].(float64), raw["ci_low"].(float64), raw["ci_high"].(float64)
	local.Items, local.Correct = int(raw["items"].(float64)), int(raw["correct"].(float64))
	r := rows[0]
	if local.Score != r.Score || local.CILow != r.CILow || local.CIHigh != r.CIHigh || local.Items != r.Items || local.Correct != r.Correct {
		t.Fatalf("local eval %+v differs from the server's row %+v", local, r)
	}
	if r.Score <= 0.34 {
		t.Errorf("overlap scored %.3f; a word-overlap baseline should beat chance on Social IQa", r.Score)
	}
	statusOut, stderr, code := crucible(t, "status", "--server", server, "--competition", comp.ID)
	if code != 0 || !strings.Contains(statusOut, "scored") || !strings.Contains(statusOut, "300/300") {
		t.Fatalf("status: exit %d %q %q", code, statusOut, stderr)
	}
}

func TestHelpTeachesAndMistakesExitTwo(t *testing.T) {
	out, _, code := crucible(t, "--help")
	if code != 0 || !strings.Contains(out, "crucible demo") || !strings.Contains(out, "leaderboard") {
		t.Fatalf("--help: exit %d, %q", code, out)
	}
	_, stderr, code := crucible(t, "competition", "create", "--help")
	if code != 0 || !strings.Contains(stderr, "--dataset") || !strings.Contains(stderr, "Example") {
		t.Fatalf("competition create --help: exit %d, %q", code, stderr)
	}
	if _, stderr, code := crucible(t, "nonsense"); code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Fatalf("unknown command: exit %d, %q", code, stderr)
	}
	if _, stderr, code := crucible(t, "leaderboard"); code != 2 || !strings.Contains(stderr, "--competition") {
		t.Fatalf("missing flag: exit %d, %q", code, stderr)
	}
}
