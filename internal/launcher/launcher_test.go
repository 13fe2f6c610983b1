package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	fakePath  string
	buildErr  error
)

// fakeServer builds testdata/fakeserver once per test run.
func fakeServer(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "crucible-fakeserver-")
		if err != nil {
			buildErr = err
			return
		}
		fakePath = filepath.Join(dir, "fakeserver")
		out, err := exec.Command("go", "build", "-o", fakePath, "./testdata/fakeserver").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return fakePath
}

type fixture struct {
	l      *Launcher
	starts string // the fake's start log
	dir    string // the artifact directory
}

// newFixture returns a launcher of the fake server with extra flags.
func newFixture(t *testing.T, maxRunning int, flags string) *fixture {
	t.Helper()
	tmp := t.TempDir()
	f := &fixture{starts: filepath.Join(tmp, "starts.log"), dir: filepath.Join(tmp, "artifact")}
	if err := os.Mkdir(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := New(Config{
		Command:    fakeServer(t) + " --port {port} --name {name} --starts " + f.starts + " " + flags,
		MaxRunning: maxRunning, StartTimeout: 20 * time.Second, StopTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.l = l
	t.Cleanup(func() { l.Close() })
	return f
}

// startLines returns the fake's start log: one "pid cwd name" per start.
func (f *fixture) startLines(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile(f.starts)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for line := range strings.Lines(string(b)) {
		out = append(out, strings.SplitN(strings.TrimSpace(line), " ", 3))
	}
	return out
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// waitGone waits (generously) for pid to die and fails if it does not.
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); alive(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) is still running", what, pid)
		}
	}
}

func chat(t *testing.T, le *Lease) string {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}]}`, le.Model)
	resp, err := http.Post(le.BaseURL+"/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Choices []struct {
			Message struct{ Content string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Choices) != 1 {
		t.Fatalf("chat: %v %+v", err, out)
	}
	return out.Choices[0].Message.Content
}

func TestSharedServerStartsOnceAndStopsWithTheLastLease(t *testing.T) {
	f := newFixture(t, 2, "")
	ctx := context.Background()
	a, err := f.l.Acquire(ctx, f.dir, "tiny-model")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.BaseURL, "http://127.0.0.1:") || !strings.HasSuffix(a.BaseURL, "/v1") {
		t.Errorf("BaseURL %q is not a loopback /v1 URL", a.BaseURL)
	}
	if got := chat(t, a); got != "hello from tiny-model" {
		t.Errorf("chat = %q", got)
	}
	b, err := f.l.Acquire(ctx, f.dir, "tiny-model")
	if err != nil {
		t.Fatal(err)
	}
	starts := f.startLines(t)
	if len(starts) != 1 || b.PID != a.PID || b.BaseURL != a.BaseURL || starts[0][0] != strconv.Itoa(a.PID) {
		t.Fatalf("two leases of one artifact: pids %d, %d, starts %q; want one shared process", a.PID, b.PID, starts)
	}
	scratch := starts[0][1]
	a.Release()
	a.Release() // idempotent: must not drop b's reference
	if !alive(a.PID) {
		t.Fatal("the server stopped while a lease remained")
	}
	if got := chat(t, b); got != "hello from tiny-model" {
		t.Errorf("chat after the first release = %q", got)
	}
	b.Release()
	// Release returns once the process is gone and its scratch is removed.
	if alive(b.PID) {
		t.Errorf("server pid %d still running after the last release", b.PID)
	}
	if _, err := os.Stat(scratch); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("scratch directory %s remains: %v", scratch, err)
	}
	// The next acquire starts a new server.
	c, err := f.l.Acquire(ctx, f.dir, "tiny-model")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if n := len(f.startLines(t)); n != 2 || c.PID == a.PID {
		t.Errorf("after a stop, acquire started %d servers in all (pid %d), want 2 with a new pid", n, c.PID)
	}
}

// TestNameIsOneLiteralArgument: a competitor's name full of shell syntax
// reaches the server as one argument, and nothing runs it.
func TestNameIsOneLiteralArgument(t *testing.T) {
	f := newFixture(t, 1, "")
	marker := filepath.Join(t.TempDir(), "pwned")
	name := "m; touch " + marker + " $(touch " + marker + ") `touch " + marker + "` --mode never"
	le, err := f.l.Acquire(context.Background(), f.dir, name)
	if err != nil {
		t.Fatal(err)
	}
	defer le.Release()
	if starts := f.startLines(t); len(starts) != 1 || starts[0][2] != name {
		t.Errorf("the server got name %q, want %q", starts, name)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the name was run by a shell: %s exists", marker)
	}
}

func TestMaxRunningBoundsDistinctServers(t *testing.T) {
	f := newFixture(t, 1, "")
	ctx := context.Background()
	a, err := f.l.Acquire(ctx, f.dir, "first")
	if err != nil {
		t.Fatal(err)
	}
	// A second artifact waits for the slot; a cancelled wait gives up.
	cctx, cancel := context.WithCancel(ctx)
	waited := make(chan error, 1)
	go func() {
		_, err := f.l.Acquire(cctx, f.dir, "second")
		waited <- err
	}()
	got := make(chan *Lease, 1)
	go func() {
		le, err := f.l.Acquire(ctx, f.dir, "third")
		if err != nil {
			t.Error(err)
		}
		got <- le
	}()
	cancel()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire = %v, want context.Canceled", err)
	}
	// "first" still holds the only slot, so "third" has not started.
	if starts := f.startLines(t); len(starts) != 1 {
		t.Fatalf("with MaxRunning 1 and one lease held, %d servers started: %q", len(starts), starts)
	}
	a.Release()
	c := <-got
	if c == nil {
		t.FailNow()
	}
	defer c.Release()
	starts := f.startLines(t)
	if len(starts) != 2 || starts[1][2] != "third" || alive(a.PID) {
		t.Errorf("starts %q (first alive: %v): want first stopped, then third", starts, alive(a.PID))
	}
}

// TestNeverHealthyServerIsKilledWithItsGroup: a server that never lists
// its model is killed after StartTimeout, child processes too, and the
// error quotes its stderr.
func TestNeverHealthyServerIsKilledWithItsGroup(t *testing.T) {
	childPID := filepath.Join(t.TempDir(), "child.pid")
	f := newFixture(t, 1, "--mode never --child "+childPID)
	f.l.cfg.StartTimeout = time.Second
	_, err := f.l.Acquire(context.Background(), f.dir, "slow-model")
	if err == nil || !strings.Contains(err.Error(), "marker-7f3a") || !strings.Contains(err.Error(), `did not list model "slow-model"`) {
		t.Fatalf("err = %v, want the timeout and the server's stderr tail", err)
	}
	starts := f.startLines(t)
	if len(starts) != 1 {
		t.Fatalf("starts %q", starts)
	}
	pid, _ := strconv.Atoi(starts[0][0])
	waitGone(t, pid, "the server")
	b, err := os.ReadFile(childPID)
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(string(b))
	waitGone(t, child, "the server's child")
	if _, err := os.Stat(starts[0][1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("scratch directory %s remains", starts[0][1])
	}
}

// TestCancelWhileStartingStopsTheServer: the only acquirer gives up while
// the server loads; nobody else wants it, so it is stopped.
func TestCancelWhileStartingStopsTheServer(t *testing.T) {
	f := newFixture(t, 1, "--mode never")
	f.l.cfg.StartTimeout = time.Minute // longer than waitGone waits
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.l.Acquire(ctx, f.dir, "m")
		done <- err
	}()
	for deadline := time.Now().Add(20 * time.Second); len(f.startLines(t)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server never started")
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire = %v, want context.Canceled", err)
	}
	pid, _ := strconv.Atoi(f.startLines(t)[0][0])
	waitGone(t, pid, "the abandoned server")
}

// TestStubbornServerIsKilledAfterTheGrace: SIGTERM ignored by the server
// and its child; the stop SIGKILLs the group.
func TestStubbornServerIsKilledAfterTheGrace(t *testing.T) {
	childPID := filepath.Join(t.TempDir(), "child.pid")
	f := newFixture(t, 1, "--mode stubborn --child "+childPID)
	f.l.cfg.StopTimeout = 200 * time.Millisecond
	le, err := f.l.Acquire(context.Background(), f.dir, "m")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(childPID)
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(string(b))
	le.Release()
	if alive(le.PID) {
		t.Errorf("server %d survived the stop", le.PID)
	}
	waitGone(t, child, "the server's child")
}

func TestExitedServerIsRestarted(t *testing.T) {
	f := newFixture(t, 1, "")
	ctx := context.Background()
	a, err := f.l.Acquire(ctx, f.dir, "m")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	if err := syscall.Kill(a.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, a.PID, "the killed server")
	// The launcher notices the exit (its slot comes back, so MaxRunning 1
	// does not block) and starts a new one.
	for deadline := time.Now().Add(20 * time.Second); ; {
		b, err := f.l.Acquire(ctx, f.dir, "m")
		if err != nil {
			t.Fatal(err)
		}
		pid := b.PID
		if pid != a.PID {
			if got := chat(t, b); got != "hello from m" {
				t.Errorf("chat = %q", got)
			}
			b.Release()
			break
		}
		b.Release()
		if time.Now().After(deadline) {
			t.Fatal("the dead server was never restarted")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	f := newFixture(t, 2, "")
	ctx := context.Background()
	a, err := f.l.Acquire(ctx, f.dir, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.l.Acquire(ctx, f.dir, "b")
	if err != nil {
		t.Fatal(err)
	}
	f.l.Close()
	if alive(a.PID) || alive(b.PID) {
		t.Errorf("servers alive after Close: %v %v", alive(a.PID), alive(b.PID))
	}
	a.Release()
	if _, err := f.l.Acquire(ctx, f.dir, "a"); !errors.Is(err, ErrClosed) {
		t.Errorf("acquire after close = %v, want ErrClosed", err)
	}
}

func TestTemplateAndGGUF(t *testing.T) {
	for cmd, want := range map[string]string{
		"":                               "empty",
		"vllm serve {dir}":               "no {port}",
		"vllm serve {dir} --port {prot}": "unknown placeholder {prot}",
		"{dir}/server --port {port}":     "must not be a placeholder",
	} {
		if _, err := New(Config{Command: cmd}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%q) = %v, want %q", cmd, err, want)
		}
	}
	dir := t.TempDir()
	if _, err := ggufFile(dir); err == nil || !strings.Contains(err.Error(), "no .gguf") {
		t.Errorf("no gguf: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "model-q4.gguf"), nil, 0o644)
	if g, err := ggufFile(dir); err != nil || g != "model-q4.gguf" {
		t.Errorf("one gguf: %q %v", g, err)
	}
	os.WriteFile(filepath.Join(dir, "model-q8.GGUF"), nil, 0o644)
	if _, err := ggufFile(dir); err == nil || !strings.Contains(err.Error(), "2 .gguf files") {
		t.Errorf("two gguf: %v", err)
	}
	// The launcher substitutes {gguf}: with two files, the start fails.
	l, err := New(Config{Command: fakeServer(t) + " --port {port} --name {name} --model {dir}/{gguf}"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Acquire(context.Background(), dir, "m"); err == nil || !strings.Contains(err.Error(), "2 .gguf files") {
		t.Errorf("acquire with two gguf files = %v", err)
	}
}

func TestProvenance(t *testing.T) {
	l, err := New(Config{Command: fakeServer(t) + " --port {port}"})
	if err != nil {
		t.Fatal(err)
	}
	p := l.Provenance(context.Background())
	if p.Program != "fakeserver" || p.Version != "fakeserver 1.2.3" || p.Hardware.Cores < 1 {
		t.Errorf("provenance %+v", p)
	}
	if b, _ := os.ReadFile("/proc/cpuinfo"); strings.Contains(string(b), "model name") && p.Hardware.CPU == "" {
		t.Errorf("no CPU model read from /proc/cpuinfo")
	}
	// A program without --version records no version, and no error.
	l2, err := New(Config{Command: "false --port {port}"})
	if err != nil {
		t.Fatal(err)
	}
	if p := l2.Provenance(context.Background()); p.Program != "false" || p.Version != "" {
		t.Errorf("provenance of false: %+v", p)
	}
}
