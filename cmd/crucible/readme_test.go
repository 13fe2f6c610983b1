package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeMarker precedes each README shell block that TestREADMEBlocksRun runs.
const readmeMarker = "<!-- test: run -->"

// readmePorts are the addresses the README's blocks name; the test gives
// each a free port so that it can run beside other servers on the machine.
var readmePorts = []string{"127.0.0.1:8080", "127.0.0.1:8000"}

// readmeBlocks returns the ```sh blocks of the README that follow the
// marker, in order. A marker not followed by a sh block is an error, so a
// block cannot drop out of the test by a typo.
func readmeBlocks(t *testing.T, readme string) []string {
	t.Helper()
	var blocks []string
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != readmeMarker {
			continue
		}
		if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != "```sh" {
			t.Fatalf("README line %d: %s must be followed by a ```sh block", i+1, readmeMarker)
		}
		var b []string
		j := i + 2
		for ; j < len(lines) && strings.TrimSpace(lines[j]) != "```"; j++ {
			b = append(b, lines[j])
		}
		if j == len(lines) {
			t.Fatalf("README line %d: the block never closes", i+2)
		}
		blocks = append(blocks, strings.Join(b, "\n")+"\n")
		i = j
	}
	return blocks
}

// TestREADMEBlocksRun follows the README literally on a fresh machine: the
// marked shell blocks run in order, each in bash with -e and pipefail, the
// first (the build) in the checkout and the others in a fresh directory
// holding the repository's files (as links), with a fresh GOBIN first on PATH, no CRUCIBLE_* variables but the hub's address, and
// the README's ports replaced by free ones. Each must exit 0; the servers
// they start in the background are killed at the end. Afterwards the hub's
// /metrics must show the evaluated submission.
func TestREADMEBlocksRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the README's commands with a freshly built binary; skipped under -short")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, string(readme))
	if len(blocks) < 3 {
		t.Fatalf("README has %d marked blocks, want the build, the servers and the competition", len(blocks))
	}
	dir := t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == ".git" || e.Name() == "bin" || strings.HasSuffix(e.Name(), ".db") {
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	ports := map[string]string{}
	for _, p := range readmePorts {
		ports[p] = freeAddr(t)
	}
	gobin := filepath.Join(t.TempDir(), "bin")
	env := []string{"GOBIN=" + gobin, "PATH=" + gobin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"CRUCIBLE_LISTEN=" + ports["127.0.0.1:8080"], "CRUCIBLE_SERVER=http://" + ports["127.0.0.1:8080"]}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CRUCIBLE_") && !strings.HasPrefix(kv, "GOBIN=") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	for i, b := range blocks {
		for from, to := range ports {
			b = strings.ReplaceAll(b, from, to)
		}
		// The first block builds the binary: it runs in the checkout itself,
		// where the build cache applies (paths are part of its keys), and
		// installs into the fresh GOBIN; the others run in the fresh directory.
		wd := dir
		if i == 0 {
			wd = root
		}
		runREADMEBlock(t, i, b, wd, env)
		if !backgrounds(b) {
			continue
		}
		for _, addr := range ports {
			if strings.Contains(b, addr) || addr == ports["127.0.0.1:8080"] && strings.Contains(b, "crucible serve") {
				waitListening(t, addr)
			}
		}
	}
	metrics := httpGet(t, "http://"+ports["127.0.0.1:8080"]+"/metrics")
	for _, want := range []string{`crucible_submissions{kind="task",state="scored"} 1`, `crucible_evaluation_seconds_count{kind="task",state="scored"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("after the README's evaluation /metrics lacks %s:\n%s", want, metrics)
		}
	}
}

// runREADMEBlock runs block i in its own process group, which is killed
// when the test ends, so servers it leaves in the background stop with it.
func runREADMEBlock(t *testing.T, i int, block, dir string, env []string) {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// A bound against a hang, not a timing assertion: the first block
	// compiles the binary on a shared machine.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", block)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	err = cmd.Wait()
	if _, serr := out.Seek(0, io.SeekStart); serr != nil {
		t.Fatal(serr)
	}
	text, _ := io.ReadAll(out)
	if err != nil {
		t.Fatalf("README block %d failed: %v\n--- block\n%s--- output\n%s", i+1, err, block, text)
	}
	t.Logf("README block %d:\n%s--- output\n%s", i+1, block, text)
}

// backgrounds reports whether a block leaves a command running (a line
// ending in &).
func backgrounds(block string) bool {
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if strings.HasSuffix(strings.TrimSpace(line), "&") {
			return true
		}
	}
	return false
}

// waitListening waits until addr accepts connections (a server started in
// the background), failing after a generous bound.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("nothing listens on %s a minute after the README started it", addr)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
