// Command sandbox measures the cost of internal/sandbox: the wall time of
// `go test -count=1 ./...` on a small real package run directly and run
// inside the sandbox (median of -n interleaved runs each, same warm build
// cache for both), and their ratio (target ≤ 1.2). It then judges a patch
// to the same package with the code-fix judge and reports its test phase
// as the verdict log times it: the test run with the canaries planted,
// against an unsandboxed `go test -json` after the same kind of source
// change (both rebuild the package; target ≤ 1.3), and the whole phase,
// planting and cross-checks (canaries, exit code, each decisive test
// rerun in its own process) included.
//
// It imports nothing from Crucible but internal/sandbox and, for the
// judge, internal/eval/patch.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"crucible/internal/eval/patch"
	"crucible/internal/sandbox"
)

func main() {
	n := flag.Int("n", 7, "runs per variant")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sandbox:", err)
		os.Exit(1)
	}
}

var files = map[string]string{
	"go.mod": "module benchpkg\n\ngo 1.22\n",
	"stats.go": `package benchpkg

import "sort"

// Median returns the median of xs.
func Median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
`,
	"stats_test.go": `package benchpkg

import "testing"

func TestMedian(t *testing.T) {
	for _, c := range []struct{ in []float64; want float64 }{{nil, 0}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(c.in); got != c.want {
			t.Fatalf("Median(%v) = %v", c.in, got)
		}
	}
}
`,
}

func run(n int) error {
	if err := sandbox.Available(); err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "crucible-bench-sandbox-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	work, cache := filepath.Join(root, "work"), filepath.Join(root, "gocache")
	for _, d := range []string{work, cache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	env := []string{"PATH=/usr/local/go/bin:/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp",
		"GOPATH=/tmp/gopath", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local", "GOTELEMETRY=off", "CGO_ENABLED=0"}
	argv := []string{"go", "test", "-count=1", "./..."}
	ctx := context.Background()

	direct := func() (time.Duration, error) {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir, cmd.Env = work, append(env, "GOCACHE="+cache)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("direct go test: %v: %s", err, out)
		}
		return time.Since(start), nil
	}
	// As the patch judge runs it: the cache at a fixed path inside.
	cfg := sandbox.Config{Dir: work, ReadOnly: []string{"/usr/local/go"}, Mounts: []sandbox.Mount{{Source: cache, Target: "/cache", Writable: true}},
		Env: append(env, "GOCACHE=/cache"), Timeout: 5 * time.Minute, MemoryBytes: 2 << 30, Pids: 512}
	boxed := func() (time.Duration, error) {
		start := time.Now()
		res, err := sandbox.Run(ctx, cfg, argv)
		if err != nil {
			return 0, err
		}
		if res.ExitCode != 0 {
			return 0, fmt.Errorf("sandboxed go test: %s: %s%s", res, res.Stdout, res.Stderr)
		}
		return time.Since(start), nil
	}
	// Warm the shared build cache through both paths before measuring.
	for _, f := range []func() (time.Duration, error){direct, boxed, direct, boxed} {
		if _, err := f(); err != nil {
			return err
		}
	}
	var d, b []time.Duration
	for i := 0; i < n; i++ {
		x, err := direct()
		if err != nil {
			return err
		}
		y, err := boxed()
		if err != nil {
			return err
		}
		d, b = append(d, x), append(b, y)
	}
	md, mb := median(d), median(b)
	res, _ := sandbox.Run(ctx, cfg, []string{"true"})
	fmt.Printf("go test -count=1 ./... (small package, warm cache), median of %d\n", n)
	fmt.Printf("unsandboxed: %v\n", md.Round(time.Millisecond))
	fmt.Printf("sandboxed:   %v  (limits: %s)\n", mb.Round(time.Millisecond), res.Limits)
	fmt.Printf("ratio:       %.2f (target <= 1.2)\n", float64(mb)/float64(md))
	return judgePhase(ctx, root, cache, n, func(i int) (time.Duration, error) {
		// A fresh comment each time: the package is rebuilt, as in a judging.
		body := strings.Replace(files["stats.go"], "the median of xs", fmt.Sprintf("the median of xs (%d)", i), 1)
		if err := os.WriteFile(filepath.Join(work, "stats.go"), []byte(body), 0o644); err != nil {
			return 0, err
		}
		cmd := exec.CommandContext(ctx, "go", "test", "-json", "-count=1", "./...")
		cmd.Dir, cmd.Env = work, append(env, "GOCACHE="+cache)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("direct go test -json: %v: %s", err, out)
		}
		return time.Since(start), nil
	})
}

// testPhase matches the judge's log line timing its test phase.
var testPhase = regexp.MustCompile(`^test phase: canaries planted and test binaries prebuilt in (\S+), tests run in (\S+), cross-checked in (\S+)$`)

// judgePhase judges a comment-only patch to the bench package n times
// (TestMedian must keep passing), interleaved with direct, the
// unsandboxed run after a source change, and compares the judge's test
// phase with it.
func judgePhase(ctx context.Context, root, cache string, n int, direct func(int) (time.Duration, error)) error {
	repo := filepath.Join(root, "repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		return err
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(repo, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("git %v: %v: %s", args, err, out)
		}
		return string(out), nil
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "base"}} {
		if _, err := git(args...); err != nil {
			return err
		}
	}
	base, err := git("rev-parse", "HEAD")
	if err != nil {
		return err
	}
	stats := filepath.Join(repo, "stats.go")
	if err := os.WriteFile(stats, []byte(strings.Replace(files["stats.go"], "the median of xs", "the median of xs (0 for none)", 1)), 0o644); err != nil {
		return err
	}
	diff, err := git("diff")
	if err != nil {
		return err
	}
	if _, err := git("checkout", "-q", "--", "stats.go"); err != nil {
		return err
	}
	task := patch.Task{InstanceID: "bench", Repo: repo, BaseCommit: strings.TrimSpace(base), PassToPass: []string{"TestMedian"},
		TestCmd: patch.Command{"go", "test", "-count=1", "./..."}, LogParser: patch.ParserGoTest, CreatedAt: time.Now()}
	cfg := patch.JudgeConfig{Sandbox: sandbox.Config{Timeout: 5 * time.Minute, MemoryBytes: 2 << 30, Pids: 512},
		WorkRoot: filepath.Join(root, "judge"), GoCacheSeed: cache}
	var runs, phases, directs []time.Duration
	for i := 0; i <= n; i++ {
		x, err := direct(i)
		if err != nil {
			return err
		}
		v, err := patch.Judge(ctx, cfg, task, diff)
		if err != nil {
			return err
		}
		if !v.Resolved {
			return fmt.Errorf("the bench patch is not resolved: %s\n%s", v.Reason, strings.Join(v.Log, "\n"))
		}
		var d [3]time.Duration
		for _, l := range v.Log {
			if m := testPhase.FindStringSubmatch(l); m != nil {
				for j := range d {
					if d[j], err = time.ParseDuration(m[j+1]); err != nil {
						return err
					}
				}
			}
		}
		if d[1] == 0 {
			return fmt.Errorf("no test phase timing in the verdict log:\n%s", strings.Join(v.Log, "\n"))
		}
		if i > 0 { // the first judging warms the judge's caches
			runs, phases, directs = append(runs, d[1]), append(phases, d[0]+d[1]+d[2]), append(directs, x)
		}
	}
	mr, mp, md := median(runs), median(phases), median(directs)
	fmt.Printf("judge, median of %d: a changed package, go test -json\n", n)
	fmt.Printf("unsandboxed: %v\n", md.Round(time.Millisecond))
	fmt.Printf("tests run:   %v  ratio to unsandboxed %.2f (sandboxed, 4 canaries planted; target <= 1.3)\n", mr.Round(time.Millisecond), float64(mr)/float64(md))
	fmt.Printf("test phase:  %v  ratio to unsandboxed %.2f (planting, prebuilding, run and cross-checks)\n", mp.Round(time.Millisecond), float64(mp)/float64(md))
	return nil
}

func median(xs []time.Duration) time.Duration {
	s := append([]time.Duration(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
