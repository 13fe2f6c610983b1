// Package sandbox owns running one untrusted command under bubblewrap
// (bwrap): no network, a read-only base system, a private writable /work,
// a tmpfs /tmp, memory/pids/CPU limits and a wall-clock timeout that kills
// every process the command started. It never runs anything unsandboxed:
// when bwrap is missing, Run refuses.
//
// How the limits are enforced (chosen by what the kernel offers):
//   - memory and pids: a fresh per-run cgroup (v1 memory and pids
//     controllers, or v2 memory.max/pids.max) below the caller's own cgroup,
//     joined by a tiny /bin/sh wrapper before it execs bwrap, so no process
//     of the run ever exists outside it. The kernel OOM-kills inside the
//     group; forks beyond the pids limit fail. Without a writable cgroup the
//     fallbacks are RLIMIT_AS (memory) and RLIMIT_NPROC (pids); the latter
//     is counted per real uid and ignored for host root, which is why the
//     cgroup is preferred (this machine: root, cgroup v1, cgroups work).
//   - CPU: RLIMIT_CPU (SIGKILL once the seconds are spent).
//   - wall clock: on timeout the bwrap process group is SIGKILLed; bwrap
//     runs the command in a new PID namespace with --die-with-parent, so
//     its init and therefore every descendant dies too, and every pid left
//     in the cgroup is killed as well.
//
// Inside, the command runs as uid/gid 65534 in a fresh user namespace with
// no capabilities, in new network, IPC, UTS, PID, mount and cgroup
// namespaces, as the leader of a new session (no terminal injection).
//
// This package must never import other Crucible packages; it depends only
// on the standard library.
package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrUnavailable is wrapped by the error Available and Run return when
// bubblewrap cannot be used.
var ErrUnavailable = errors.New("sandbox unavailable: install the Debian package bubblewrap; refusing to run untrusted code unsandboxed")

// DefaultOutputLimit caps each of Stdout and Stderr when Config.OutputLimit is 0.
const DefaultOutputLimit = 4 << 20

// Config describes one sandboxed run.
type Config struct {
	// Dir is the host directory bound read-write at /work, the working
	// directory of the command. Required.
	Dir string
	// ReadOnly lists extra host paths bound read-only at the same path,
	// e.g. the Go toolchain /usr/local/go or a module cache.
	ReadOnly []string
	// Writable lists extra host paths bound read-write at the same path
	// (e.g. a private directory for a report the host reads afterwards).
	Writable []string
	// Mounts binds host paths at fixed paths inside (e.g. a private build
	// cache at /cache), so nothing inside reveals where the caller keeps
	// its files on the host.
	Mounts []Mount
	// Env is the complete environment of the command; PATH, HOME and
	// TMPDIR get defaults (/usr/local/go/bin:/usr/bin:/bin, /tmp, /tmp)
	// when absent.
	Env []string
	// Timeout is the wall-clock limit; 0 means 10 minutes.
	Timeout time.Duration
	// MemoryBytes limits memory (cgroup, else RLIMIT_AS); 0 means no limit.
	MemoryBytes int64
	// Pids limits the number of processes/threads (cgroup, else
	// RLIMIT_NPROC); 0 means no limit.
	Pids int
	// CPUSeconds limits CPU time per process (RLIMIT_CPU: SIGXCPU at the
	// limit, SIGKILL one second later); 0 means no limit.
	CPUSeconds int
	// Network, when true, shares the host network namespace. The default
	// (false) leaves the command only a loopback interface of its own.
	Network bool
	// OutputLimit caps each of Stdout and Stderr; 0 means DefaultOutputLimit.
	OutputLimit int
}

// Mount binds the host path Source at Target inside the sandbox,
// read-only unless Writable.
type Mount struct {
	Source, Target string
	Writable       bool
}

// Result is the outcome of a sandboxed run.
type Result struct {
	// ExitCode is the command's exit status; 128+N when killed by signal N.
	ExitCode int
	// Stdout and Stderr hold the first OutputLimit bytes of each stream.
	Stdout, Stderr []byte
	// Truncated reports that at least one stream exceeded OutputLimit.
	Truncated bool
	// TimedOut reports that the wall-clock limit was reached.
	TimedOut bool
	// Killed says why the run was stopped when a limit was hit ("" if none).
	Killed string
	// Wall is the elapsed wall-clock time.
	Wall time.Duration
	// Limits names the mechanisms that enforced the limits of this run.
	Limits string
}

// Available reports whether bwrap is installed and can create the
// namespaces Run needs; the error says what to install.
func Available() error {
	path, err := exec.LookPath("bwrap")
	if err != nil {
		return ErrUnavailable
	}
	out, err := exec.Command(path, "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
		"--ro-bind", "/", "/", "--", "/bin/true").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: bwrap cannot create namespaces here: %v: %s", ErrUnavailable, err, bytes.TrimSpace(out))
	}
	return nil
}

// Run runs argv inside the sandbox described by cfg. A non-zero exit, a
// timeout or a limit hit are reported in Result, not as errors; an error
// means the sandbox could not run (bwrap missing, bad config) or ctx was
// cancelled (then Result describes what ran).
func Run(ctx context.Context, cfg Config, argv []string) (Result, error) {
	if len(argv) == 0 {
		return Result{}, errors.New("sandbox: empty command")
	}
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		return Result{}, ErrUnavailable
	}
	if cfg.Dir == "" {
		return Result{}, errors.New("sandbox: Config.Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: %w", err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return Result{}, fmt.Errorf("sandbox: work dir %s is not a directory", dir)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	limit := cfg.OutputLimit
	if limit <= 0 {
		limit = DefaultOutputLimit
	}

	cg := newCgroup(cfg.MemoryBytes, cfg.Pids)
	defer cg.remove()

	// The wrapper joins the cgroup, sets rlimits, then becomes bwrap.
	var script strings.Builder
	for _, f := range cg.procFiles() {
		fmt.Fprintf(&script, "echo $$ > %s || exit 125\n", shellQuote(f))
	}
	limits := []string{}
	if d := cg.describe(); d != "" {
		limits = append(limits, d)
	}
	if cfg.MemoryBytes > 0 && (cg == nil || cg.memory == "") {
		fmt.Fprintf(&script, "ulimit -v %d || exit 125\n", (cfg.MemoryBytes+1023)/1024)
		limits = append(limits, "rlimit as")
	}
	if cfg.Pids > 0 && (cg == nil || cg.pids == "") {
		fmt.Fprintf(&script, "ulimit -p %d || exit 125\n", cfg.Pids)
		limits = append(limits, "rlimit nproc (per uid; not enforced for host root)")
	}
	if cfg.CPUSeconds > 0 {
		// Soft limit: SIGXCPU (exit 152); hard limit a second later: SIGKILL.
		fmt.Fprintf(&script, "ulimit -S -t %d && ulimit -H -t %d || exit 125\n", cfg.CPUSeconds, cfg.CPUSeconds+1)
		limits = append(limits, "rlimit cpu")
	}
	script.WriteString("ulimit -c 0\nexec \"$@\"\n")

	args := []string{"/bin/sh", "-c", script.String(), "sandbox", bwrap}
	args = append(args, bwrapArgs(cfg, dir)...)
	args = append(args, "--")
	args = append(args, argv...)

	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, args[0], args[1:]...)
	cmd.Env = sandboxEnv(cfg.Env)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		if cg != nil {
			cg.killAll()
		}
		return nil
	}
	cmd.WaitDelay = 2 * time.Second
	stdout := &cappedBuffer{limit: limit}
	stderr := &cappedBuffer{limit: limit}
	cmd.Stdout, cmd.Stderr = stdout, stderr

	start := time.Now()
	err = cmd.Run()
	res := Result{Wall: time.Since(start), Limits: strings.Join(limits, ", ")}
	if cg != nil {
		cg.killAll()
	}
	res.Stdout, res.Stderr = stdout.buf.Bytes(), stderr.buf.Bytes()
	res.Truncated = stdout.dropped > 0 || stderr.dropped > 0

	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.ExitCode = exitCode(exitErr.ProcessState)
	case errors.Is(err, exec.ErrWaitDelay):
		res.ExitCode = exitCode(cmd.ProcessState)
	default:
		if runCtx.Err() == nil {
			return res, fmt.Errorf("sandbox: start bwrap: %w", err)
		}
		res.ExitCode = -1
	}
	if res.ExitCode == 125 && cg != nil && bytes.Contains(res.Stderr, []byte("cgroup.procs")) {
		return res, fmt.Errorf("sandbox: join cgroup: %s", bytes.TrimSpace(res.Stderr))
	}

	var why []string
	if cg.oomKilled() {
		why = append(why, "memory limit (OOM kill)")
	}
	if n := cg.forksRefused(); n > 0 {
		why = append(why, fmt.Sprintf("pids limit (%d forks refused)", n))
	}
	if cfg.CPUSeconds > 0 && res.ExitCode == 128+int(syscall.SIGXCPU) {
		why = append(why, "cpu limit")
	}
	if ctx.Err() == nil && errors.Is(runCtx.Err(), context.DeadlineExceeded) {
		res.TimedOut = true
		why = append(why, fmt.Sprintf("wall-clock timeout after %s", timeout))
	}
	if ctx.Err() != nil {
		why = append(why, "cancelled")
	}
	res.Killed = strings.Join(why, "; ")
	if ctx.Err() != nil {
		return res, fmt.Errorf("sandbox: %w", ctx.Err())
	}
	return res, nil
}

// etcFiles are the only parts of the host /etc visible inside.
var etcFiles = []string{
	"/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/hosts", "/etc/host.conf",
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
	"/etc/alternatives", "/etc/python3", "/etc/python3.11", "/etc/ssl", "/etc/mime.types",
}

// bwrapArgs builds bwrap's options for cfg with the work dir at dir.
func bwrapArgs(cfg Config, dir string) []string {
	a := []string{
		"--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL",
		"--die-with-parent", "--new-session", "--hostname", "sandbox",
		"--ro-bind", "/usr", "/usr",
	}
	if cfg.Network {
		a = append(a, "--share-net", "--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf")
	}
	for _, p := range []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		if target, err := os.Readlink(p); err == nil {
			a = append(a, "--symlink", target, p)
		} else if st, err := os.Stat(p); err == nil && st.IsDir() {
			a = append(a, "--ro-bind", p, p)
		}
	}
	for _, p := range etcFiles {
		a = append(a, "--ro-bind-try", p, p)
	}
	a = append(a, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp")
	for _, p := range cfg.ReadOnly {
		a = append(a, "--ro-bind", p, p)
	}
	for _, p := range cfg.Writable {
		a = append(a, "--bind", p, p)
	}
	for _, m := range cfg.Mounts {
		if m.Writable {
			a = append(a, "--bind", m.Source, m.Target)
		} else {
			a = append(a, "--ro-bind", m.Source, m.Target)
		}
	}
	a = append(a, "--bind", dir, "/work", "--chdir", "/work")
	return a
}

// sandboxEnv returns env with defaults for PATH, HOME and TMPDIR.
func sandboxEnv(env []string) []string {
	out := append([]string(nil), env...)
	has := func(k string) bool {
		for _, kv := range env {
			if strings.HasPrefix(kv, k+"=") {
				return true
			}
		}
		return false
	}
	if !has("PATH") {
		out = append(out, "PATH=/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin")
	}
	if !has("HOME") {
		out = append(out, "HOME=/tmp")
	}
	if !has("TMPDIR") {
		out = append(out, "TMPDIR=/tmp")
	}
	return out
}

func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// cappedBuffer keeps the first limit bytes written and counts the rest.
type cappedBuffer struct {
	buf     bytes.Buffer
	limit   int
	dropped int64
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	room := c.limit - c.buf.Len()
	if room >= len(p) {
		return c.buf.Write(p)
	}
	if room > 0 {
		c.buf.Write(p[:room])
	}
	c.dropped += int64(len(p) - max(room, 0))
	return len(p), nil
}

// String renders a short human summary of r, for logs.
func (r Result) String() string {
	s := "exit " + strconv.Itoa(r.ExitCode) + " in " + r.Wall.Round(time.Millisecond).String()
	if r.Killed != "" {
		s += " (killed: " + r.Killed + ")"
	}
	return s
}
