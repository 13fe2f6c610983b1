package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"crucible/internal/app"
	"crucible/internal/launcher"
)

// baselineArtifact writes a directory the baseline serves as a model: the
// oracle policy over the sample dataset's key.
func baselineArtifact(t *testing.T) (dir, key string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "artifact")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	key = filepath.Join(dir, "key.jsonl")
	if err := os.WriteFile(key, app.SampleDataset, 0o644); err != nil {
		t.Fatal(err)
	}
	policy := `{"policy": "oracle", "dataset": "key.jsonl", "name": "from-the-file"}`
	if err := os.WriteFile(filepath.Join(dir, app.ArtifactPolicyFile), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, key
}

// TestLaunchedBaselineArtifactIsEvaluated launches the crucible binary as
// the model of an artifact directory, evaluates it through the lease's
// URL exactly as `crucible eval` does, and stops it.
func TestLaunchedBaselineArtifactIsEvaluated(t *testing.T) {
	bin := crucibleBinary(t)
	dir, key := baselineArtifact(t)
	l, err := launcher.New(launcher.Config{
		Command:      bin + " model-server --artifact {dir} --listen 127.0.0.1:{port} --name {name}",
		StartTimeout: 30 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	le, err := l.Acquire(context.Background(), dir, "team-a/model")
	if err != nil {
		t.Fatal(err)
	}
	up := time.Since(start)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"eval", "--kind", "mcq", "--dataset", key, "--base-url", le.BaseURL,
		"--model", le.Model, "--no-cache", "--json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("eval exited %d: %s", code, errOut.String())
	}
	var rep struct {
		Score          float64
		Items, Correct int
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if rep.Items == 0 || rep.Correct != rep.Items || rep.Score != 1 {
		t.Errorf("the oracle artifact scored %+v, want every item correct", rep)
	}
	stopAt := time.Now()
	le.Release()
	t.Logf("launch+health %s, stop %s (%s)", up, time.Since(stopAt), bin)
	if _, err := os.Stat("/proc/" + strconv.Itoa(le.PID)); err == nil {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(le.PID) + "/stat"); !strings.Contains(string(b), ") Z") {
			t.Errorf("model server %d still running after release", le.PID)
		}
	}
}

// TestArtifactPolicyFileIsChecked: a hostile or broken policy file is
// refused with the reason, before anything listens.
func TestArtifactPolicyFileIsChecked(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.jsonl")
	if err := os.WriteFile(outside, app.SampleDataset, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, policy, want string
		setup              func(dir string)
	}{
		{"missing", "", "no crucible-policy.json", nil},
		{"huge", `{"policy": "oracle", "name": "` + strings.Repeat("x", 70<<10) + `"}`, "larger than 65536 bytes", nil},
		{"unknown policy", `{"policy": "gpt-5"}`, `unknown policy "gpt-5"`, nil},
		{"unknown field", `{"policy": "first", "weights": "x"}`, `unknown field "weights"`, nil},
		{"dot-dot escape", `{"policy": "oracle", "dataset": "../secret.jsonl"}`, "leaves the artifact directory", nil},
		{"absolute escape", `{"policy": "oracle", "dataset": "` + outside + `"}`, "leaves the artifact directory", nil},
		{"symlink escape", `{"policy": "oracle", "dataset": "key.jsonl"}`, "escapes", func(dir string) {
			if err := os.Symlink(outside, filepath.Join(dir, "key.jsonl")); err != nil {
				t.Fatal(err)
			}
		}},
		{"task without data", `{"policy": "oracle", "task": "t.yaml"}`, "task needs data", func(dir string) {
			os.WriteFile(filepath.Join(dir, "t.yaml"), []byte("task: t\n"), 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "artifact")
			os.Mkdir(dir, 0o755)
			if tc.policy != "" {
				os.WriteFile(filepath.Join(dir, app.ArtifactPolicyFile), []byte(tc.policy), 0o644)
			}
			if tc.setup != nil {
				tc.setup(dir)
			}
			var out, errOut bytes.Buffer
			// A policy wrongly accepted serves until ctx ends, then exits 0.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			code := run(ctx, []string{"model-server", "--artifact", dir, "--listen", freeAddr(t)}, &out, &errOut)
			if code == 0 || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want a failure saying %q", code, errOut.String(), tc.want)
			}
		})
	}
}
