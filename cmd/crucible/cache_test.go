package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"crucible/internal/app"
	"crucible/internal/baseline"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
)

// TestMain points `crucible eval`'s response cache (--cache-dir, read from
// CRUCIBLE_CACHE_DIR when not given) at a fresh directory: no test reads
// another run's answers or writes the developer's cache. (Not
// XDG_CACHE_HOME: that would move Go's build cache too.)
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "crucible-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("CRUCIBLE_CACHE_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// countingBaseline serves the baseline policies, counting completion
// requests in n; once n passes fail (when fail is above 0) it answers 404s,
// a permanent error that stops a run.
func countingBaseline(t *testing.T, cfg baseline.Config, n, fail *atomic.Int64) string {
	t.Helper()
	h := baseline.New(cfg)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if k, f := n.Add(1), fail.Load(); f > 0 && k > f {
				http.Error(w, `{"error":{"message":"gone"}}`, http.StatusNotFound)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// A re-run of `crucible eval --task` sends nothing: every answer comes from
// the cache and the report is the same; --no-cache sends everything again;
// a run stopped midway resumes, sending only what it lacked; --kind task
// is the same evaluation.
func TestEvalTaskRerunSendsNothing(t *testing.T) {
	policies, err := app.TaskBaselinePolicies([]string{"oracle"}, app.TaskBaseline{TaskFile: "gsm8k"})
	if err != nil {
		t.Fatal(err)
	}
	var sent, never atomic.Int64
	base := countingBaseline(t, baseline.Config{Policies: policies}, &sent, &never)
	cacheDir := t.TempDir()
	eval := func(extra ...string) (string, string) {
		t.Helper()
		args := append([]string{"eval", "--task", "gsm8k", "--limit", "10", "--base-url", base, "--model", "baseline-oracle",
			"--cache-dir", cacheDir, "--json"}, extra...)
		out, stderr, code := crucible(t, args...)
		if code != 0 {
			t.Fatalf("%v exited %d: %s", args, code, stderr)
		}
		return out, stderr
	}
	first, stderr := eval()
	if sent.Load() != 10 || !strings.Contains(stderr, "0 of 10 requests from cache") || !strings.Contains(first, `"score": 1,`) {
		t.Fatalf("first run: %d requests, stderr %q, report %s", sent.Load(), stderr, first)
	}
	again, stderr := eval()
	if sent.Load() != 10 || again != first || !strings.Contains(stderr, "10 of 10 requests from cache") {
		t.Errorf("re-run: %d requests sent in all, stderr %q, report %s (first %s)", sent.Load(), stderr, again, first)
	}
	kindTask, _ := eval("--kind", "task")
	if sent.Load() != 10 || kindTask != first {
		t.Errorf("--kind task: %d requests sent in all, report %s", sent.Load(), kindTask)
	}
	uncached, stderr := eval("--no-cache")
	if sent.Load() != 20 || uncached != first || strings.Contains(stderr, "from cache") {
		t.Errorf("--no-cache: %d requests sent in all, stderr %q, report %s", sent.Load(), stderr, uncached)
	}

	// A run that dies after 4 answers keeps them: the re-run sends the 6
	// others. The same answers from a server at another address are not
	// served: all 10 requests go to it.
	var sent2, fail atomic.Int64
	fail.Store(4)
	dying := countingBaseline(t, baseline.Config{Policies: policies}, &sent2, &fail)
	fresh := t.TempDir()
	args := []string{"eval", "--task", "gsm8k", "--limit", "10", "--model", "baseline-oracle", "--cache-dir", fresh,
		"--concurrency", "1", "--json"}
	if _, _, code := crucible(t, append(args, "--base-url", dying)...); code == 0 || sent2.Load() != 5 {
		t.Fatalf("a run against a failing server: exit %d after %d requests", code, sent2.Load())
	}
	fail.Store(0)
	if out, stderr, code := crucible(t, append(args, "--base-url", dying)...); code != 0 || sent2.Load() != 11 || out != first {
		t.Errorf("resumed run: exit %d, %d requests in all (want 5+6): %s", code, sent2.Load(), stderr)
	}
	var sent3 atomic.Int64
	other := countingBaseline(t, baseline.Config{Policies: policies}, &sent3, &never)
	if _, _, code := crucible(t, append(args, "--base-url", other)...); code != 0 || sent3.Load() != 10 {
		t.Errorf("another server: exit %d after %d requests, want all 10 sent", code, sent3.Load())
	}
}

// `crucible eval --kind mcq` goes through the cache as well.
func TestEvalKindRerunSendsNothing(t *testing.T) {
	ds, err := mcq.Parse(strings.NewReader(string(app.SampleDataset)), "s")
	if err != nil {
		t.Fatal(err)
	}
	policies, err := mcqtest.Policies(mcqtest.Config{Policies: []string{"overlap"}, Key: ds})
	if err != nil {
		t.Fatal(err)
	}
	var sent, never atomic.Int64
	base := countingBaseline(t, baseline.Config{Policies: policies}, &sent, &never)
	dataset := filepath.Join(t.TempDir(), "siqa.jsonl")
	if err := os.WriteFile(dataset, app.SampleDataset, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"eval", "--kind", "mcq", "--dataset", dataset, "--base-url", base, "--model", "baseline-overlap",
		"--cache-dir", t.TempDir(), "--concurrency", "1", "--json"}
	// The sample repeats one item: its second request is a cache hit.
	first, stderr, code := crucible(t, args...)
	if code != 0 || sent.Load() != int64(len(ds.Items))-1 || !strings.Contains(stderr, "1 of 300 requests from cache") {
		t.Fatalf("first run: exit %d, %d requests: %s", code, sent.Load(), stderr)
	}
	again, stderr, code := crucible(t, args...)
	if code != 0 || again != first || sent.Load() != int64(len(ds.Items))-1 || !strings.Contains(stderr, "300 of 300 requests from cache") {
		t.Errorf("re-run: exit %d, %d requests in all, stderr %q", code, sent.Load(), stderr)
	}
}
