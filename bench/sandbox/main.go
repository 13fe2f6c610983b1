// Command sandbox measures the cost of internal/sandbox: the wall time of
// `go test -count=1 ./...` on a small real package run directly and run
// inside the sandbox (median of -n interleaved runs each, same warm build
// cache for both), and their ratio (target ≤ 1.2).
//
// It must never import anything from Crucible but internal/sandbox.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

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
	return nil
}

func median(xs []time.Duration) time.Duration {
	s := append([]time.Duration(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
