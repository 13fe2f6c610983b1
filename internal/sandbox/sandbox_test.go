package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func requireSandbox(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
}

func TestRunReportsOutputAndExitCodes(t *testing.T) {
	requireSandbox(t)
	tests := []struct {
		name       string
		argv       []string
		wantExit   int
		wantStdout string
		wantTrunc  bool
		limit      int
	}{
		{name: "stdout of a successful command is captured", argv: []string{"sh", "-c", "echo hello; echo oops >&2"}, wantStdout: "hello\n"},
		{name: "a non-zero exit status is reported, not an error", argv: []string{"sh", "-c", "exit 7"}, wantExit: 7},
		{name: "a command killed by a signal reports 128 plus the signal", argv: []string{"sh", "-c", "kill -9 $$"}, wantExit: 137},
		{name: "output beyond the limit is truncated", argv: []string{"sh", "-c", "head -c 5000 /dev/zero | tr '\\0' a"}, wantStdout: strings.Repeat("a", 100), wantTrunc: true, limit: 100},
		{name: "the command runs in /work as an unprivileged user", argv: []string{"sh", "-c", "pwd; id -u"}, wantStdout: "/work\n65534\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), Config{Dir: t.TempDir(), Timeout: time.Minute, OutputLimit: tt.limit}, tt.argv)
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tt.wantExit {
				t.Errorf("exit = %d, want %d (stderr %q)", res.ExitCode, tt.wantExit, res.Stderr)
			}
			if tt.wantStdout != "" && string(res.Stdout) != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", res.Stdout, tt.wantStdout)
			}
			if res.Truncated != tt.wantTrunc {
				t.Errorf("truncated = %v, want %v", res.Truncated, tt.wantTrunc)
			}
		})
	}
}

func TestRunHasNoNetwork(t *testing.T) {
	requireSandbox(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name string
		cmd  string
	}{
		{name: "a connection to a listener on the host loopback fails", cmd: fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", port)},
		{name: "a connection to a public address fails without leaving the machine", cmd: "exec 3<>/dev/tcp/1.1.1.1/53"},
		{name: "the only interface is an isolated loopback", cmd: "test $(ls /sys/class/net | wc -l) -le 1 && test ! -e /sys/class/net/eth0 && exit 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), Config{Dir: t.TempDir(), Timeout: 30 * time.Second}, []string{"bash", "-c", tt.cmd})
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode == 0 {
				t.Fatalf("network command succeeded inside the sandbox: %s / %s", res.Stdout, res.Stderr)
			}
		})
	}
	// Nothing may have reached the host listener.
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Fatal("the host listener accepted a connection from the sandbox")
	}
}

func TestRunCannotWriteOutsideWork(t *testing.T) {
	requireSandbox(t)
	roDir := t.TempDir()
	victim := filepath.Join(roDir, "victim.txt")
	if err := os.WriteFile(victim, []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cmd  string
	}{
		{name: "a read-only bound host file cannot be overwritten", cmd: "echo pwned > " + victim},
		{name: "a read-only bound host directory cannot gain files", cmd: "touch " + roDir + "/new"},
		{name: "the system directories are read-only", cmd: "touch /usr/pwned"},
		{name: "host /etc files cannot be changed", cmd: "echo x >> /etc/passwd"},
		{name: "the host root is not visible", cmd: "test -e /root || test -e /home || test -e /var"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), Config{Dir: t.TempDir(), ReadOnly: []string{roDir}, Timeout: 30 * time.Second}, []string{"sh", "-c", tt.cmd})
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode == 0 {
				t.Fatalf("write outside /work succeeded: %s", res.Stderr)
			}
		})
	}
	if b, _ := os.ReadFile(victim); string(b) != "original" {
		t.Fatalf("host file changed to %q", b)
	}
	if _, err := os.Stat(filepath.Join(roDir, "new")); err == nil {
		t.Fatal("file created in read-only host directory")
	}
	if _, err := os.Stat("/usr/pwned"); err == nil {
		t.Fatal("file created in host /usr")
	}

	t.Run("writes to /work land in the host work dir", func(t *testing.T) {
		dir := t.TempDir()
		res, err := Run(context.Background(), Config{Dir: dir, Timeout: 30 * time.Second}, []string{"sh", "-c", "echo ok > /work/out.txt"})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("err %v exit %d %s", err, res.ExitCode, res.Stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "out.txt")); string(b) != "ok\n" {
			t.Fatalf("out.txt = %q", b)
		}
	})
}

func TestRunStopsRunawayCommands(t *testing.T) {
	requireSandbox(t)
	tests := []struct {
		name     string
		cfg      Config
		cmd      string
		wantKill []string // Killed must contain one of these
		timedOut bool
	}{
		{
			name:     "a fork bomb is stopped by the pids limit and the timeout",
			cfg:      Config{Pids: 64, Timeout: 3 * time.Second, MemoryBytes: 256 << 20},
			cmd:      `f(){ f | f; }; f`,
			wantKill: []string{"pids limit", "timeout"},
		},
		{
			name:     "a memory hog is stopped by the memory limit",
			cfg:      Config{MemoryBytes: 64 << 20, Timeout: time.Minute},
			cmd:      `x=$(head -c 400000000 /dev/zero | tr '\0' a); echo ${#x}`,
			wantKill: []string{"memory limit"},
		},
		{
			name:     "a CPU spinner is stopped by the CPU limit",
			cfg:      Config{CPUSeconds: 1, Timeout: time.Minute},
			cmd:      `while :; do :; done`,
			wantKill: []string{"cpu limit"},
		},
		{
			name:     "a sleep past the timeout is killed",
			cfg:      Config{Timeout: 500 * time.Millisecond},
			cmd:      `sleep 600`,
			wantKill: []string{"timeout"},
			timedOut: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Dir = t.TempDir()
			res, err := Run(context.Background(), tt.cfg, []string{"bash", "-c", tt.cmd})
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode == 0 {
				t.Fatalf("runaway command exited 0: %s", res.Stdout)
			}
			ok := false
			for _, w := range tt.wantKill {
				ok = ok || strings.Contains(res.Killed, w)
			}
			if !ok {
				t.Fatalf("Killed = %q, want one of %q (limits %q, exit %d, stderr %.300s)", res.Killed, tt.wantKill, res.Limits, res.ExitCode, res.Stderr)
			}
			if tt.timedOut && !res.TimedOut {
				t.Fatal("TimedOut = false")
			}
		})
	}
}

func TestRunKillsTheWholeProcessTreeOnTimeout(t *testing.T) {
	requireSandbox(t)
	marker := fmt.Sprintf("%d.%d", 700+os.Getpid()%100, time.Now().UnixNano()%1000)
	cmd := fmt.Sprintf("sleep %s & (sleep %s &) ; setsid sleep %s & wait", marker, marker, marker)
	res, err := Run(context.Background(), Config{Dir: t.TempDir(), Timeout: 500 * time.Millisecond}, []string{"sh", "-c", cmd})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut {
		t.Fatalf("TimedOut = false: %+v", res)
	}
	// SIGKILLed processes vanish once reaped; poll until none is left.
	var left []string
	for i := 0; i < 100; i++ {
		left = processesWithArg(marker)
		if len(left) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("children survived the timeout: %v", left)
}

func TestRunCancelledContextStopsTheCommand(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, Config{Dir: t.TempDir(), Timeout: time.Minute}, []string{"sleep", "600"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestRunRefusesWithoutBwrap(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if err := Available(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Available() = %v", err)
	}
	_, err := Run(context.Background(), Config{Dir: t.TempDir()}, []string{"true"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "bubblewrap") {
		t.Fatalf("Run() error = %v, want ErrUnavailable naming bubblewrap", err)
	}
}

func processesWithArg(arg string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		if bytes.Contains(b, []byte(arg)) && !bytes.Contains(b, []byte("&")) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

func BenchmarkRunTrue(b *testing.B) {
	if err := Available(); err != nil {
		b.Skip(err)
	}
	dir := b.TempDir()
	for b.Loop() {
		if _, err := Run(context.Background(), Config{Dir: dir, MemoryBytes: 256 << 20, Pids: 128}, []string{"true"}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSweepRemovesOnlyCgroupsOfDeadOwners(t *testing.T) {
	live := newCgroup(64<<20, 16)
	if live == nil {
		t.Skip("skipping: no writable cgroup here")
	}
	defer live.remove()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	var dead []string
	for _, d := range []string{live.memory, live.pids} {
		if d == "" {
			continue
		}
		p := filepath.Join(filepath.Dir(d), fmt.Sprintf("%s%d-left-by-a-killed-worker", cgroupPrefix, gone.Process.Pid))
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		dead = append(dead, p)
	}
	if _, err := Sweep(); err != nil {
		t.Fatal(err)
	}
	for _, p := range dead {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s of a dead owner survived the sweep (stat: %v)", p, err)
		}
	}
	for _, p := range []string{live.memory, live.pids} {
		if _, err := os.Stat(p); p != "" && err != nil {
			t.Errorf("the sweep removed the live cgroup %s: %v", p, err)
		}
	}
}

func TestRunMountsAtFixedPaths(t *testing.T) {
	requireSandbox(t)
	in, out, work := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(in, "f"), []byte("input\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Dir: work, Timeout: time.Minute, Mounts: []Mount{{Source: in, Target: "/in"}, {Source: out, Target: "/out", Writable: true}}}
	res, err := Run(context.Background(), cfg, []string{"sh", "-c", "cat /in/f; echo report > /out/r; pwd; if echo x > /in/g; then echo wrote-read-only; fi 2>/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "input\n/work\n" {
		t.Fatalf("stdout %q, want the input, /work and no write to the read-only mount (stderr %q)", res.Stdout, res.Stderr)
	}
	if b, err := os.ReadFile(filepath.Join(out, "r")); err != nil || string(b) != "report\n" {
		t.Fatalf("writable mount: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(in, "g")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the read-only mount was written: %v", err)
	}
}
