package patch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJudgeSeedsGoRunsFromItsOwnWarmCache judges, with no GoCacheSeed
// configured, a fix that also tries to poison the build cache (a
// competitor's init writing into $GOCACHE, which a later judging would
// link from if the cache were shared). The judge must seed the run from
// the cache it warmed itself, and that seed must come out untouched and
// survive a Sweep while the process lives.
func TestJudgeSeedsGoRunsFromItsOwnWarmCache(t *testing.T) {
	slow(t)
	task := goTask(t)
	cfg := judgeConfig(t)
	cfg.GoCacheSeed = ""
	poison := newGoFile("poison.go", `package calc

import (
	"os"
	"path/filepath"
)

// Its run's cache is writable; the cross-check's processes have none.
func init() {
	_ = os.WriteFile(filepath.Join(os.Getenv("GOCACHE"), "poisoned"), []byte("x"), 0o644)
}`)
	v, err := Judge(context.Background(), cfg, task, task.Patch+poison)
	if err != nil || !v.Resolved {
		t.Fatalf("err %v, resolved %v reason %q\nlog:\n%s", err, v.Resolved, v.Reason, strings.Join(v.Log, "\n"))
	}
	if log := strings.Join(v.Log, "\n"); strings.Contains(log, "cold cache") {
		t.Fatalf("the run was not seeded:\n%s", log)
	}
	if err := Sweep(cfg.WorkRoot); err != nil {
		t.Fatal(err)
	}
	warmSeeds.Lock()
	ws := warmSeeds.byRoot[cfg.WorkRoot]
	warmSeeds.Unlock()
	if ws == nil {
		t.Fatal("no warm cache kept for the work root")
	}
	entries := 0
	err = filepath.WalkDir(ws.gocache, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "poisoned" {
			t.Errorf("the competitor's write reached the shared seed: %s", p)
		}
		if !d.IsDir() {
			entries++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the seed did not survive a Sweep while its process lives: %v", err)
	}
	// The standard library behind package testing is hundreds of objects.
	if entries < 100 {
		t.Fatalf("the warm cache holds %d files", entries)
	}
}
