// Command router compares the inference router with nginx in front of the
// same model servers. It starts N baseline model servers as separate
// processes (this binary re-executed with -role model-server), the router as
// another process (-role router) and nginx (Debian package "nginx"; an
// upstream with least_conn and keepalive, generated in a temporary
// directory, run in the foreground with its own pid and log files). Then one
// Go load generator drives three targets in turn, at the same concurrency
// for the same duration, with the same chat completion requests:
//
//   - direct: each client goroutine talks to one server (goroutine i to
//     server i mod N), no proxy;
//   - nginx: every request through nginx;
//   - router: every request through the router.
//
// Targets alternate for -rounds rounds (the order reversed every other
// round, so drift in the machine's load does not favour one target) and the
// median of each measure is printed: requests/s, p50 and p99 latency,
// errors, and the proxy's CPU time per request. Then the ratios, each taken
// within a round and reported as the median over rounds with the spread
// (min–max): router/nginx throughput (target >= 0.9) and router p99 -
// direct p99 (target <= 1 ms).
//
//	go run ./bench/router [-workers 3] [-concurrency 32] [-duration 5s] [-rounds 5] [-delay 0]
//
// Everything shares the machine's CPUs. With -delay 0 the servers answer at
// once, so the run is CPU-bound and throughput measures each proxy's CPU
// cost per request; a -delay of a few milliseconds simulates model latency.
//
// Without nginx installed the nginx target is skipped and so are the ratios
// that need it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/router"
)

const model = "baseline-oracle"

func main() {
	role := flag.String("role", "bench", "bench, or (internal) model-server or router")
	listen := flag.String("listen", "", "(model-server, router) address to serve on")
	workerList := flag.String("worker-urls", "", "(router) comma-separated worker URLs")
	dataset := flag.String("dataset", "", "Social IQa-style JSONL answer key (default internal/app/demodata/siqa-sample.jsonl in the repo)")
	delay := flag.Duration("delay", 0, "baseline server delay per request, simulating model latency (0 = CPU-bound)")
	workers := flag.Int("workers", 3, "baseline model server processes")
	concurrency := flag.Int("concurrency", 32, "concurrent requests for every target")
	duration := flag.Duration("duration", 5*time.Second, "measured time per target per round")
	warmup := flag.Duration("warmup", time.Second, "unmeasured load before each measurement")
	rounds := flag.Int("rounds", 5, "rounds (targets alternate within a round); medians and spreads are reported")
	nginxBin := flag.String("nginx", "nginx", "nginx binary (Debian: apt-get install nginx)")
	asJSON := flag.Bool("json", false, "print the results as JSON")
	profile := flag.String("router-cpuprofile", "", "write a CPU profile of the router process to this file")
	routerProcs := flag.Int("router-gomaxprocs", 0, "GOMAXPROCS of the router process (0 = the Go default, one per CPU)")
	routerGC := flag.Int("router-gc-percent", router.GCPercent, "the router process's GC target, as crucible router --gc-percent (100: Go's default)")
	routerServer := flag.String("router-server", "lean", "the router process's HTTP server: lean (router.Server, as crucible router) or net/http (http.Server, for comparison)")
	flag.Parse()

	var err error
	switch *role {
	case "model-server":
		err = serveModel(*listen, *dataset, *delay)
	case "router":
		err = serveRouter(*listen, *workerList, *profile, *routerGC, *routerServer)
	case "bench":
		err = bench(benchConfig{
			dataset: *dataset, delay: *delay, workers: *workers, concurrency: *concurrency,
			duration: *duration, warmup: *warmup, rounds: *rounds, nginx: *nginxBin, json: *asJSON, profile: *profile,
			routerProcs: *routerProcs, routerGC: *routerGC, routerServer: *routerServer,
		})
	default:
		err = fmt.Errorf("unknown -role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/router:", err)
		os.Exit(1)
	}
}

// datasetPath returns the answer key to load.
func datasetPath(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "internal", "app", "demodata", "siqa-sample.jsonl"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory; pass -dataset")
		}
		dir = parent
	}
}

// serveModel is the model-server role: one baseline server.
func serveModel(listen, dataset string, delay time.Duration) error {
	path, err := datasetPath(dataset)
	if err != nil {
		return err
	}
	ds, err := mcq.ParseFile(path)
	if err != nil {
		return err
	}
	h, err := mcqtest.New(mcqtest.Config{Policies: []string{mcqtest.PolicyOracle}, Key: ds, Delay: delay})
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// serveRouter is the router role: the router over the given workers, as
// `crucible router --worker URL=model` runs it.
func serveRouter(listen, workerURLs, profile string, gcPercent int, server string) error {
	debug.SetGCPercent(gcPercent)
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		go func() {
			<-sig
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(0)
		}()
	}
	var specs []router.WorkerSpec
	for _, u := range strings.Split(workerURLs, ",") {
		specs = append(specs, router.WorkerSpec{URL: u, Model: model})
	}
	r, err := router.New(router.Config{
		Workers: specs,
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	go r.Run(context.Background())
	switch server {
	case "lean":
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return err
		}
		srv := &router.Server{Router: r, ReadHeaderTimeout: 10 * time.Second}
		return srv.Serve(ln)
	case "net/http":
		srv := &http.Server{Addr: listen, Handler: r, ReadHeaderTimeout: 10 * time.Second}
		return srv.ListenAndServe()
	}
	return fmt.Errorf("unknown -router-server %q (lean or net/http)", server)
}

type benchConfig struct {
	dataset              string
	delay                time.Duration
	workers, concurrency int
	duration, warmup     time.Duration
	rounds               int
	nginx                string
	json                 bool
	profile              string
	routerProcs          int
	routerGC             int
	routerServer         string
}

// target is one thing the load generator drives.
type target struct {
	name string
	urls []string // goroutine i uses urls[i % len(urls)]
	pids func() []int
}

// result is one target's measurement.
type result struct {
	Target   string  `json:"target"`
	RPS      float64 `json:"requests_per_second"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	Errors   int64   `json:"errors"`
	CPUusReq float64 `json:"proxy_cpu_us_per_request,omitempty"`
}

func bench(cfg benchConfig) error {
	path, err := datasetPath(cfg.dataset)
	if err != nil {
		return err
	}
	ds, err := mcq.ParseFile(path)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "crucible-bench-router-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var children []*exec.Cmd
	defer func() {
		for _, c := range children {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range children {
			_ = c.Wait()
		}
	}()
	// start runs a child; a nil env inherits this process's.
	start := func(env []string, name string, args ...string) (*exec.Cmd, error) {
		c := exec.Command(name, args...)
		c.Env = env
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		if err := c.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		children = append(children, c)
		return c, nil
	}

	var servers []string
	for range cfg.workers {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		if _, err := start(nil, self, "-role", "model-server", "-listen", addr, "-dataset", path, "-delay", cfg.delay.String()); err != nil {
			return err
		}
		servers = append(servers, "http://"+addr)
	}
	routerAddr, err := freeAddr()
	if err != nil {
		return err
	}
	for _, u := range servers {
		if err := waitReady(u, 15*time.Second); err != nil {
			return fmt.Errorf("model server: %w", err)
		}
	}
	routerArgs := []string{"-role", "router", "-listen", routerAddr, "-worker-urls", strings.Join(servers, ","),
		"-router-gc-percent", strconv.Itoa(cfg.routerGC), "-router-server", cfg.routerServer}
	if cfg.profile != "" {
		routerArgs = append(routerArgs, "-router-cpuprofile", cfg.profile)
	}
	var routerEnv []string
	if cfg.routerProcs > 0 {
		routerEnv = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(cfg.routerProcs))
	}
	routerCmd, err := start(routerEnv, self, routerArgs...)
	if err != nil {
		return err
	}
	targets := []target{
		{name: "direct", urls: servers},
		{name: "router", urls: []string{"http://" + routerAddr}, pids: func() []int { return []int{routerCmd.Process.Pid} }},
	}
	nginxBin, lookErr := exec.LookPath(cfg.nginx)
	if lookErr != nil {
		fmt.Fprintf(os.Stderr, "bench/router: %s not found (%v); skipping the nginx target (Debian: apt-get install nginx)\n", cfg.nginx, lookErr)
	} else {
		nginxAddr, err := freeAddr()
		if err != nil {
			return err
		}
		conf, err := writeNginxConf(tmp, nginxAddr, servers, cfg.concurrency)
		if err != nil {
			return err
		}
		nginxCmd, err := start(nil, nginxBin, "-p", tmp, "-c", conf, "-e", filepath.Join(tmp, "error.log"))
		if err != nil {
			return err
		}
		targets = slices.Insert(targets, 1, target{name: "nginx", urls: []string{"http://" + nginxAddr},
			pids: func() []int { return append([]int{nginxCmd.Process.Pid}, childPIDs(nginxCmd.Process.Pid)...) }})
	}
	for _, t := range targets {
		for _, u := range t.urls {
			if err := waitReady(u, 15*time.Second); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
		}
	}

	// Request bodies: the answer key's items rendered as the evaluator does.
	tmpl := mcq.MustDefaultTemplate()
	bodies, err := renderBodies(tmpl, ds)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second, DisableCompression: true,
	}}

	if !cfg.json {
		procs := "the default"
		if cfg.routerProcs > 0 {
			procs = strconv.Itoa(cfg.routerProcs)
		}
		fmt.Printf("bench/router: %d baseline servers (separate processes), concurrency %d, %s per target x %d rounds, server delay %s, %d CPUs, router GOMAXPROCS %s, router GC percent %d, router server %s\n",
			cfg.workers, cfg.concurrency, cfg.duration, cfg.rounds, cfg.delay, numCPU(), procs, cfg.routerGC, cfg.routerServer)
	}
	all := map[string][]result{}
	var ratios, addedP99 []float64
	for round := range cfg.rounds {
		order := slices.Clone(targets)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		this := map[string]result{}
		for _, t := range order {
			load(client, t, bodies, cfg.concurrency, cfg.warmup, nil)
			var res result
			load(client, t, bodies, cfg.concurrency, cfg.duration, &res)
			all[t.name] = append(all[t.name], res)
			this[t.name] = res
			if !cfg.json {
				fmt.Fprintf(os.Stderr, "  round %d %-6s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d%s\n",
					round+1, t.name, res.RPS, res.P50ms, res.P99ms, res.Errors, cpuColumn(res))
			}
		}
		addedP99 = append(addedP99, this["router"].P99ms-this["direct"].P99ms)
		if n, ok := this["nginx"]; ok && n.RPS > 0 {
			ratios = append(ratios, this["router"].RPS/n.RPS)
		}
	}
	var out []result
	for _, t := range targets {
		out = append(out, median(t.name, all[t.name]))
	}
	report := struct {
		Results              []result `json:"results"`
		Rounds               int      `json:"rounds"`
		RouterOverNginx      *spread  `json:"router_over_nginx_throughput,omitempty"`
		RouterP99MinusDirect spread   `json:"router_p99_minus_direct_p99_ms"`
		ThroughputTargetMet  *bool    `json:"throughput_target_met,omitempty"`
		LatencyTargetMet     bool     `json:"latency_target_met"`
	}{Results: out, Rounds: cfg.rounds}
	report.RouterP99MinusDirect = spreadOf(addedP99)
	report.LatencyTargetMet = report.RouterP99MinusDirect.Median <= 1
	if len(ratios) > 0 {
		s := spreadOf(ratios)
		met := s.Median >= 0.9
		report.RouterOverNginx, report.ThroughputTargetMet = &s, &met
	}
	if cfg.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	fmt.Printf("\n%-8s %10s %9s %9s %7s %18s   (medians of %d rounds)\n", "target", "req/s", "p50 ms", "p99 ms", "errors", "proxy CPU µs/req", cfg.rounds)
	for _, res := range out {
		cpu := "-"
		if res.CPUusReq > 0 {
			cpu = fmt.Sprintf("%.1f", res.CPUusReq)
		}
		fmt.Printf("%-8s %10.0f %9.2f %9.2f %7d %18s\n", res.Target, res.RPS, res.P50ms, res.P99ms, res.Errors, cpu)
	}
	fmt.Println()
	if s := report.RouterOverNginx; s != nil {
		fmt.Printf("router/nginx throughput: median %.3f over %d rounds, spread %.3f–%.3f (target >= 0.90: %s)\n",
			s.Median, cfg.rounds, s.Min, s.Max, verdict(*report.ThroughputTargetMet))
	} else {
		fmt.Println("router/nginx throughput: n/a (nginx not run)")
	}
	s := report.RouterP99MinusDirect
	fmt.Printf("router p99 - direct p99: median %+.3f ms over %d rounds, spread %+.3f…%+.3f ms (target <= 1 ms: %s)\n",
		s.Median, cfg.rounds, s.Min, s.Max, verdict(report.LatencyTargetMet))
	return nil
}

// cpuColumn is a round's proxy CPU for the per-round lines (none for direct).
func cpuColumn(res result) string {
	if res.CPUusReq <= 0 {
		return ""
	}
	return fmt.Sprintf("  proxy CPU %5.1f µs/req", res.CPUusReq)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func numCPU() int {
	n := 0
	if b, err := os.ReadFile("/sys/fs/cgroup/cpu.max"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 && f[0] != "max" {
			q, _ := strconv.Atoi(f[0])
			p, _ := strconv.Atoi(f[1])
			if p > 0 {
				n = (q + p - 1) / p
			}
		}
	}
	if c := runtime.NumCPU(); n == 0 || c < n {
		n = c
	}
	return n
}
