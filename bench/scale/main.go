// Command scale measures how evaluation throughput grows with the number of
// `crucible worker` processes sharing one PostgreSQL database. For each
// worker count N (-workers) and each mode (-modes) it:
//
//   - creates a fresh database on the -postgres server (dropped at the end),
//   - starts the real binary as an API-only hub (`crucible serve --no-work`),
//   - starts the simulated model: the deterministic baseline server answering
//     after -delay (default 50 ms) behind a semaphore of N × -capacity slots
//     (default 4 per worker), so the model capacity grows with the workers
//     as when every worker brings its own model server,
//   - creates the work: a plain multiple-choice competition on the Social IQa
//     dev set with -submissions entries (mode plain), or a funded pool on the
//     same items with as many entrants and a budget large enough that the
//     first tick hands every entrant all its items (mode pool: the pool tick
//     enqueues one range per entrant and the workers run them),
//   - starts N worker processes, waits for the first result and -warmup,
//   - counts stored item results over -duration: the steady-state items/s.
//
// The reference is the same run's 1-worker rate: the ratio of N workers is
// items/s(N) ÷ (N × items/s(1)), target ≥ 0.9. It also prints the share of
// the model capacity (N × capacity ÷ delay) reached and the CPU time the hub,
// the workers and the database's backends spent per item.
//
//	go run ./bench/scale [-postgres URL] [-workers 1,2,4,8] [-modes plain,pool] [-duration 20s]
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"crucible/bench/internal/benchdb"
	"crucible/internal/api/apiv1"
	"crucible/internal/client"
	"crucible/internal/eval/mcq"
	"crucible/internal/identity"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

type config struct {
	bin, postgres, dataset string
	ds                     *mcq.Dataset
	duration, warmup       time.Duration
	delay                  time.Duration
	capacity               int
	workerSubs, itemConc   int
	submissions            int
	logs                   io.Writer
}

// point is one measured (mode, workers) run.
type point struct {
	mode                     string
	workers                  int
	rate                     float64 // items/s
	hubCPU, workerCPU, pgCPU time.Duration
	items                    int64
	firstResult              time.Duration // from the workers' start
	asking                   float64       // mean requests at the model server
	slot                     time.Duration // mean time a request held a model slot
}

func run() error {
	pg := flag.String("postgres", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"PostgreSQL server `URL`; each run creates a fresh database on it and drops it at the end")
	workersFlag := flag.String("workers", "1,2,4,8", "worker counts to measure, comma-separated (the first should be 1: it is the reference)")
	modes := flag.String("modes", "plain,pool", "plain (a competition's submissions), pool (a funded pool's entrants, ranges enqueued by the pool tick), or both")
	duration := flag.Duration("duration", 20*time.Second, "measured steady-state window per point")
	warmup := flag.Duration("warmup", 3*time.Second, "wait after the first stored result before measuring")
	delay := flag.Duration("delay", 50*time.Millisecond, "simulated model latency per request")
	capacity := flag.Int("capacity", 4, "model requests in flight per worker (the model server's slots are workers × this)")
	workerSubs := flag.Int("worker-submissions", 2, "crucible worker --submissions: jobs one worker runs at once")
	itemConc := flag.Int("item-concurrency", 4, "crucible worker --item-concurrency: requests in flight per job")
	submissions := flag.Int("submissions", 0, "submissions (or pool entrants) per point (0: 2 × workers × worker-submissions + 2, so no job slot idles)")
	dataset := flag.String("dataset", "", "Social IQa-style JSONL (default ../shared/data/siqa/dev.jsonl relative to the repo root)")
	logs := flag.Bool("v", false, "pass the hub's and workers' logs (level warn) through to stderr")
	flag.Parse()

	counts, err := parseCounts(*workersFlag)
	if err != nil {
		return err
	}
	if *dataset == "" {
		*dataset = filepath.Join("..", "shared", "data", "siqa", "dev.jsonl")
	}
	raw, err := os.ReadFile(*dataset)
	if err != nil {
		return fmt.Errorf("dataset: %w (run from the repository root or pass -dataset)", err)
	}
	ds, err := mcq.Parse(strings.NewReader(string(raw)), "siqa-dev")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "crucible-bench-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := buildBinary(dir)
	if err != nil {
		return err
	}
	cfg := config{bin: bin, postgres: *pg, dataset: string(raw), ds: ds, duration: *duration, warmup: *warmup, delay: *delay,
		capacity: *capacity, workerSubs: *workerSubs, itemConc: *itemConc, submissions: *submissions, logs: io.Discard}
	if *logs {
		cfg.logs = os.Stderr
	}
	fmt.Printf("scale: %d items per submission, model %s per request, %d slots per worker; worker --submissions %d --item-concurrency %d; %s per point after %s warm-up\n",
		len(ds.Items), cfg.delay, cfg.capacity, cfg.workerSubs, cfg.itemConc, cfg.duration, cfg.warmup)
	var points []point
	for _, mode := range strings.Split(*modes, ",") {
		if mode != "plain" && mode != "pool" {
			return fmt.Errorf("-modes: %q is neither plain nor pool", mode)
		}
		for _, n := range counts {
			p, err := measure(context.Background(), cfg, mode, n)
			if err != nil {
				return fmt.Errorf("%s, %d workers: %w", mode, n, err)
			}
			fmt.Printf("  %s %d workers: %.1f items/s\n", mode, n, p.rate)
			points = append(points, p)
		}
	}
	report(os.Stdout, cfg, points)
	return nil
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-workers: %q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// measure runs one point on a fresh database.
func measure(ctx context.Context, cfg config, mode string, n int) (p point, err error) {
	p = point{mode: mode, workers: n}
	url, drop, err := benchdb.Fresh(ctx, cfg.postgres, "scale")
	if err != nil {
		return p, err
	}
	defer drop()
	model, err := newModelServer(cfg.ds, cfg.delay, n*cfg.capacity)
	if err != nil {
		return p, err
	}
	defer model.close()
	key, err := identity.NewKey()
	if err != nil {
		return p, err
	}
	addr, err := freeAddr()
	if err != nil {
		return p, err
	}
	common := []string{"--database", url, "--log-level", "warn", "--allow-endpoints", "127.0.0.0/8", "--admin-key", key.ID()}
	hub, err := start("hub", cfg.bin, append([]string{"serve", "--no-work", "--listen", addr,
		"--quota-competitions", "0", "--quota-submissions", "0", "--quota-open", "0", "--max-entries-per-key", "100000"}, common...), cfg.logs)
	if err != nil {
		return p, err
	}
	defer hub.stop()
	if err := waitHealthy(addr, time.Minute); err != nil {
		return p, err
	}
	c, err := client.New(client.Config{Server: "http://" + addr, Key: key})
	if err != nil {
		return p, err
	}
	subs := cfg.submissions
	if subs <= 0 {
		subs = 2*n*cfg.workerSubs + 2
	}
	if err := createWork(ctx, c, cfg, mode, key.ID(), model.URL, subs); err != nil {
		return p, err
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return p, err
	}
	defer db.Close()

	started := time.Now()
	var workers []*proc
	defer func() {
		for _, w := range workers {
			w.stop()
		}
	}()
	for i := range n {
		w, err := start(fmt.Sprintf("worker %d", i), cfg.bin, append([]string{"worker",
			"--submissions", strconv.Itoa(cfg.workerSubs), "--item-concurrency", strconv.Itoa(cfg.itemConc)}, common...), cfg.logs)
		if err != nil {
			return p, err
		}
		workers = append(workers, w)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		done, err := results(ctx, db)
		if err != nil {
			return p, err
		}
		if done > 0 {
			break
		}
		if time.Now().After(deadline) {
			return p, errors.New("no item result within 2 minutes of starting the workers")
		}
	}
	p.firstResult = time.Since(started)
	time.Sleep(cfg.warmup)
	snap := func() (int64, time.Time, time.Duration, time.Duration, map[int]time.Duration, error) {
		done, err := results(ctx, db)
		var wcpu time.Duration
		for _, w := range workers {
			wcpu += w.cpu()
		}
		pgcpu := backendsCPU(ctx, db)
		return done, time.Now(), hub.cpu(), wcpu, pgcpu, err
	}
	d0, t0, h0, w0, g0, err := snap()
	if err != nil {
		return p, err
	}
	held0, served0 := model.held.Load(), model.served.Load()
	var asked, samples int64
	for end := time.Now().Add(cfg.duration); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		asked += model.asking.Load()
		samples++
	}
	p.asking = float64(asked) / float64(samples)
	if n := model.served.Load() - served0; n > 0 {
		p.slot = time.Duration((model.held.Load() - held0) / n)
	}
	d1, t1, h1, w1, g1, err := snap()
	if err != nil {
		return p, err
	}
	p.items = d1 - d0
	p.rate = float64(p.items) / t1.Sub(t0).Seconds()
	p.hubCPU, p.workerCPU, p.pgCPU = h1-h0, w1-w0, cpuSince(g0, g1)
	if left := int64(subs*len(cfg.ds.Items)) - d1; left <= 0 {
		return p, fmt.Errorf("every item was evaluated before the window ended: raise -submissions")
	}
	return p, nil
}

// createWork creates subs entries of the mode's competition.
func createWork(ctx context.Context, c *client.Client, cfg config, mode, keyID, modelURL string, subs int) error {
	entry := func(i int) (string, string) {
		policy := "oracle"
		if i%2 == 1 {
			policy = "random"
		}
		return fmt.Sprintf("%s/e%d/v1", modelURL, i), "baseline-" + policy
	}
	if mode == "plain" {
		comp, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "mcq", Title: "scale", Dataset: cfg.dataset})
		if err != nil {
			return err
		}
		for i := range subs {
			base, model := entry(i)
			if _, err := c.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{BaseURL: base, Model: model}); err != nil {
				return err
			}
		}
		return nil
	}
	const fund = 1_000_000
	if _, err := c.Deposit(ctx, apiv1.DepositRequest{To: keyID, Amount: fund, Asset: "USDC", IdempotencyKey: "bench-scale"}); err != nil {
		return err
	}
	// Started an hour ago at the largest budget: the first tick may spend
	// every entrant's items, so neither budget nor tick interval caps the run.
	now := time.Now().UTC()
	p, err := c.CreatePool(ctx, apiv1.CreatePoolRequest{Title: "scale", Dataset: cfg.dataset, Fund: fund, Asset: "USDC", Allocation: "proportional",
		Start: now.Add(-time.Hour), End: now.Add(24 * time.Hour), BudgetPerHour: 10_000_000})
	if err != nil {
		return err
	}
	for i := range subs {
		base, model := entry(i)
		if _, err := c.JoinPool(ctx, p.CompetitionID, apiv1.JoinPoolRequest{BaseURL: base, Model: model}); err != nil {
			return err
		}
	}
	return nil
}

func results(ctx context.Context, db *sql.DB) (int64, error) {
	var n int64
	err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM item_results`).Scan(&n)
	return n, err
}

// backendsCPU returns the CPU time of each PostgreSQL backend connected to
// this database, by pid (empty when the server is not on this machine).
func backendsCPU(ctx context.Context, db *sql.DB) map[int]time.Duration {
	out := map[int]time.Duration{}
	rows, err := db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			out[pid] = procCPU(pid)
		}
	}
	return out
}

// cpuSince is the CPU the backends of now spent since then (a backend
// that exited between the samples is missed: a lower bound).
func cpuSince(then, now map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, c := range now {
		d += c - then[pid]
	}
	return d
}

func report(w io.Writer, cfg config, points []point) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tworkers\titems/s\tN × 1-worker\tratio\tmodel capacity\tof capacity\trequests at model\tslot held\tCPU ms/item hub\tworkers\tpostgres\tfirst result\t")
	ref := map[string]float64{}
	for _, p := range points {
		if p.workers == 1 {
			ref[p.mode] = p.rate
		}
	}
	for _, p := range points {
		capacity := float64(p.workers*cfg.capacity) / cfg.delay.Seconds()
		linear, ratio := "-", "-"
		if r, ok := ref[p.mode]; ok && r > 0 {
			linear = fmt.Sprintf("%.1f", float64(p.workers)*r)
			ratio = fmt.Sprintf("%.3f", p.rate/(float64(p.workers)*r))
		}
		per := func(d time.Duration) string {
			if p.items == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000/float64(p.items))
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%s\t%.0f\t%.3f\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", p.mode, p.workers, p.rate, linear, ratio,
			capacity, p.rate/capacity, p.asking, p.slot.Round(100*time.Microsecond), per(p.hubCPU), per(p.workerCPU), per(p.pgCPU), p.firstResult.Round(10*time.Millisecond))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nratio = items/s ÷ (workers × the 1-worker items/s of the same mode), target ≥ 0.9;\n"+
		"slot held = mean time a model request held its slot: far above -delay, the box could not simulate the model")
}
