package app_test

import (
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"crucible/internal/app"
	"crucible/internal/store/storetest"
)

// TestAWorkerStartSweepsWhatAKilledJudgeLeft plays a worker killed with
// SIGKILL mid-judging: its code-fix workspace stays in the temporary
// directory with nobody holding its lock. The next start of a working
// server removes it before taking jobs, and leaves alone the workspace of a
// judge that is still alive (its lock is held). The names follow
// internal/eval/patch: a "crucible-patch-" directory with an "owner" file,
// flock'ed by its judge.
func TestAWorkerStartSweepsWhatAKilledJudgeLeft(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	workspace := func(name string) string {
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, "work", "pkg"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "owner"), []byte("4194304\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dead, live := workspace("crucible-patch-killed"), workspace("crucible-patch-alive")
	lock, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}

	url := startServer(t, app.Config{Database: storetest.Databases(t)[0].URL})
	resp, err := http.Get(url + "/healthz") // answered only once the workers started
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the killed judge's workspace %s is still there after a worker start (stat: %v)", dead, err)
	}
	if _, err := os.Stat(filepath.Join(live, "work", "pkg")); err != nil {
		t.Errorf("the live judge's workspace was touched: %v", err)
	}
}
