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
// Targets alternate for -rounds rounds and the median of each measure is
// printed: requests/s, p50 and p99 latency, errors, and the proxy's CPU time
// per request. Then the ratios: router/nginx throughput (target >= 0.9) and
// router p99 - direct p99 (target <= 1 ms).
//
//	go run ./bench/router [-workers 3] [-concurrency 32] [-duration 5s] [-rounds 3] [-delay 0]
//
// Everything shares the machine's CPUs. With -delay 0 the servers answer at
// once, so the run is CPU-bound and throughput measures each proxy's CPU
// cost per request; a -delay of a few milliseconds simulates model latency.
//
// Without nginx installed the nginx target is skipped and so are the ratios
// that need it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/template"
	"time"

	"crucible/internal/baseline"
	"crucible/internal/eval/mcq"
	"crucible/internal/inference"
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
	rounds := flag.Int("rounds", 3, "rounds (targets alternate within a round); medians are reported")
	nginxBin := flag.String("nginx", "nginx", "nginx binary (Debian: apt-get install nginx)")
	asJSON := flag.Bool("json", false, "print the results as JSON")
	profile := flag.String("router-cpuprofile", "", "write a CPU profile of the router process to this file")
	flag.Parse()

	var err error
	switch *role {
	case "model-server":
		err = serveModel(*listen, *dataset, *delay)
	case "router":
		err = serveRouter(*listen, *workerList, *profile)
	case "bench":
		err = bench(benchConfig{
			dataset: *dataset, delay: *delay, workers: *workers, concurrency: *concurrency,
			duration: *duration, warmup: *warmup, rounds: *rounds, nginx: *nginxBin, json: *asJSON, profile: *profile,
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
	h, err := baseline.New(baseline.Config{Policies: []string{baseline.PolicyOracle}, Key: ds, Delay: delay})
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// serveRouter is the router role: the router over the given workers, as
// `crucible router --worker URL=model` runs it.
func serveRouter(listen, workerURLs, profile string) error {
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
	srv := &http.Server{Addr: listen, Handler: r, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
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
	start := func(name string, args ...string) (*exec.Cmd, error) {
		c := exec.Command(name, args...)
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
		if _, err := start(self, "-role", "model-server", "-listen", addr, "-dataset", path, "-delay", cfg.delay.String()); err != nil {
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
	routerArgs := []string{"-role", "router", "-listen", routerAddr, "-worker-urls", strings.Join(servers, ",")}
	if cfg.profile != "" {
		routerArgs = append(routerArgs, "-router-cpuprofile", cfg.profile)
	}
	routerCmd, err := start(self, routerArgs...)
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
		nginxCmd, err := start(nginxBin, "-p", tmp, "-c", conf, "-e", filepath.Join(tmp, "error.log"))
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
		fmt.Printf("bench/router: %d baseline servers (separate processes), concurrency %d, %s per target x %d rounds, server delay %s, GOMAXPROCS of each Go process = %d CPUs\n",
			cfg.workers, cfg.concurrency, cfg.duration, cfg.rounds, cfg.delay, numCPU())
	}
	all := map[string][]result{}
	for round := range cfg.rounds {
		for _, t := range targets {
			load(client, t, bodies, cfg.concurrency, cfg.warmup, nil)
			var res result
			load(client, t, bodies, cfg.concurrency, cfg.duration, &res)
			all[t.name] = append(all[t.name], res)
			if !cfg.json {
				fmt.Fprintf(os.Stderr, "  round %d %-6s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d\n",
					round+1, t.name, res.RPS, res.P50ms, res.P99ms, res.Errors)
			}
		}
	}
	summary := map[string]result{}
	var out []result
	for _, t := range targets {
		summary[t.name] = median(t.name, all[t.name])
		out = append(out, summary[t.name])
	}
	report := struct {
		Results              []result `json:"results"`
		RouterOverNginx      *float64 `json:"router_over_nginx_throughput,omitempty"`
		RouterP99MinusDirect float64  `json:"router_p99_minus_direct_p99_ms"`
		ThroughputTargetMet  *bool    `json:"throughput_target_met,omitempty"`
		LatencyTargetMet     bool     `json:"latency_target_met"`
	}{Results: out}
	d, r := summary["direct"], summary["router"]
	report.RouterP99MinusDirect = r.P99ms - d.P99ms
	report.LatencyTargetMet = report.RouterP99MinusDirect <= 1
	if n, ok := summary["nginx"]; ok && n.RPS > 0 {
		ratio := r.RPS / n.RPS
		met := ratio >= 0.9
		report.RouterOverNginx, report.ThroughputTargetMet = &ratio, &met
	}
	if cfg.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	fmt.Printf("\n%-8s %10s %9s %9s %7s %18s\n", "target", "req/s", "p50 ms", "p99 ms", "errors", "proxy CPU µs/req")
	for _, res := range out {
		cpu := "-"
		if res.CPUusReq > 0 {
			cpu = fmt.Sprintf("%.1f", res.CPUusReq)
		}
		fmt.Printf("%-8s %10.0f %9.2f %9.2f %7d %18s\n", res.Target, res.RPS, res.P50ms, res.P99ms, res.Errors, cpu)
	}
	fmt.Println()
	if report.RouterOverNginx != nil {
		fmt.Printf("router/nginx throughput: %.3f (target >= 0.90: %s)\n", *report.RouterOverNginx, verdict(*report.ThroughputTargetMet))
	} else {
		fmt.Println("router/nginx throughput: n/a (nginx not run)")
	}
	fmt.Printf("router p99 - direct p99: %+.3f ms (target <= 1 ms: %s)\n", report.RouterP99MinusDirect, verdict(report.LatencyTargetMet))
	return nil
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

// median takes the per-measure medians of a target's rounds.
func median(name string, rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	out := result{Target: name}
	out.RPS = pick(func(r result) float64 { return r.RPS })
	out.P50ms = pick(func(r result) float64 { return r.P50ms })
	out.P99ms = pick(func(r result) float64 { return r.P99ms })
	out.CPUusReq = pick(func(r result) float64 { return r.CPUusReq })
	for _, r := range rs {
		out.Errors += r.Errors
	}
	return out
}

// load runs concurrency goroutines posting bodies to t for d. With res
// non-nil it records throughput, latency percentiles, errors and the
// proxy processes' CPU time per request.
func load(client *http.Client, t target, bodies [][]byte, concurrency int, d time.Duration, res *result) {
	var stop atomic.Bool
	var errs atomic.Int64
	lat := make([][]time.Duration, concurrency)
	var wg sync.WaitGroup
	var cpu0 time.Duration
	if res != nil && t.pids != nil {
		cpu0 = cpuTime(t.pids())
	}
	begin := time.Now()
	for g := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := t.urls[g%len(t.urls)] + "/v1/chat/completions"
			mine := make([]time.Duration, 0, 4096)
			buf := make([]byte, 32<<10)
			for i := g; !stop.Load(); i += concurrency {
				body := bodies[i%len(bodies)]
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				for {
					if _, err := resp.Body.Read(buf); err != nil {
						if err != io.EOF {
							errs.Add(1)
						}
						break
					}
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			lat[g] = mine
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(begin)
	if res == nil {
		return
	}
	var merged []time.Duration
	for _, l := range lat {
		merged = append(merged, l...)
	}
	slices.Sort(merged)
	*res = result{Target: t.name, Errors: errs.Load(), RPS: float64(len(merged)) / elapsed.Seconds()}
	if n := len(merged); n > 0 {
		res.P50ms = ms(merged[n/2])
		res.P99ms = ms(merged[min(n-1, n*99/100)])
	}
	if t.pids != nil && len(merged) > 0 {
		res.CPUusReq = float64((cpuTime(t.pids()) - cpu0).Microseconds()) / float64(len(merged))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// renderBodies renders every item as the evaluator's chat request.
func renderBodies(tmpl *template.Template, ds *mcq.Dataset) ([][]byte, error) {
	zero := 0.0
	var bodies [][]byte
	for _, it := range ds.Items {
		p, err := mcq.Render(tmpl, it)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(inference.ChatRequest{
			Model: model, Messages: []inference.ChatMessage{{Role: "user", Content: p}},
			MaxTokens: mcq.DefaultMaxTokens, Temperature: &zero,
		})
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, b)
	}
	return bodies, nil
}

// writeNginxConf writes an nginx configuration proxying listen to servers
// with least_conn and upstream keepalive, and returns its path.
func writeNginxConf(dir, listen string, servers []string, concurrency int) (string, error) {
	var ups strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&ups, "    server %s;\n", strings.TrimPrefix(s, "http://"))
	}
	conf := fmt.Sprintf(`# Generated by bench/router.
daemon off;
master_process on;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 8192; multi_accept on; }
http {
  access_log off;
  client_body_temp_path %[1]s/client_body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_requests 1000000;
  upstream workers {
    least_conn;
%[2]s    keepalive %[3]d;
    keepalive_requests 1000000;
  }
  server {
    listen %[4]s;
    location / {
      proxy_pass http://workers;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`, dir, ups.String(), max(64, concurrency*2), listen)
	path := filepath.Join(dir, "nginx.conf")
	return path, os.WriteFile(path, []byte(conf), 0o644)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls GET /v1/models until it answers 200 listing the model.
func waitReady(base string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(base + "/v1/models")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(model)) {
				return nil
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v", base, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// childPIDs lists a process's children (nginx's workers).
func childPIDs(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// cpuTime sums user and system CPU time of the processes (from /proc; the
// kernel counts in clock ticks of 10ms).
func cpuTime(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			s = s[i+2:]
		}
		f := strings.Fields(s)
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * 10 * time.Millisecond
	}
	return total
}
