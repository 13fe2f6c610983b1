package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"time"

	"crucible/internal/app"
	"crucible/internal/competition"
)

type workerFlags struct {
	database        *string
	submissions     *int
	itemConcurrency *int
	slice           *time.Duration
	rescueAfter     *time.Duration
	logLevel        *string
	allow           *string
	generatorURL    *string
	referenceURL    *string
	judgeURL        *string
	repos           *listFlag
	epochLength     *time.Duration
	consensus       consensusFlags
	models          modelFlags
}

func addWorkerFlags(fs *flag.FlagSet) workerFlags {
	fs.String("config", "", "YAML file of flag values (also CRUCIBLE_CONFIG)")
	repos := &listFlag{}
	fs.Var(repos, "repos", "`DIR` holding git repositories that operator keys (--admin-key) may name in patch tasks; repeat or comma-separate.\n"+
		"Everyone else uploads each task's repository as a git bundle with the competition")
	return workerFlags{
		repos:           repos,
		database:        fs.String("database", "crucible.db", "SQLite file path, or a postgres:// URL to share store and job queue with other processes"),
		submissions:     fs.Int("submissions", 4, "submissions this process evaluates at once"),
		itemConcurrency: fs.Int("item-concurrency", 8, "requests in flight per submission"),
		slice:           fs.Duration("slice", 30*time.Second, "how long one job run evaluates before yielding (progress is saved as it goes)"),
		rescueAfter:     fs.Duration("rescue-after", 5*time.Minute, "a job running longer than this is presumed dead (crashed worker) and resumed"),
		logLevel:        fs.String("log-level", "info", "debug, info, warn or error"),
		allow:           fs.String("allow-endpoints", "", "CIDRs that submitted model URLs may reach although private (e.g. 127.0.0.0/8,10.1.0.0/16); loopback, private, link-local, metadata and multicast addresses are refused otherwise"),
		generatorURL:    fs.String("generator-url", "", "this hub's own generator model (roleplay planning, preference seeds); its key is read from CRUCIBLE_GENERATOR_API_KEY and sent to this URL only"),
		referenceURL:    fs.String("reference-url", "", "this hub's own roleplay reference model; key from CRUCIBLE_REFERENCE_API_KEY, sent to this URL only"),
		judgeURL:        fs.String("judge-url", "", "this hub's own roleplay judge model; key from CRUCIBLE_JUDGE_API_KEY, sent to this URL only"),
		epochLength:     fs.Duration("epoch-length", 72*time.Minute, "length of an epoch, for model-competition weights and validator consensus alike (360 blocks of 12 s)"),
		consensus:       addConsensusFlags(fs),
		models:          addModelFlags(fs),
	}
}

func (w workerFlags) config(listen string, noWork bool) (app.Config, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(*w.logLevel)); err != nil {
		return app.Config{}, usagef("--log-level: %v", err)
	}
	consensus, err := w.consensus.config()
	if err != nil {
		return app.Config{}, err
	}
	return app.Config{
		Database: *w.database, Listen: listen, NoWork: noWork,
		Submissions: *w.submissions, ItemConcurrency: *w.itemConcurrency, Slice: *w.slice, RescueAfter: *w.rescueAfter,
		AllowEndpoints: *w.allow, GeneratorURL: *w.generatorURL, ReferenceURL: *w.referenceURL, JudgeURL: *w.judgeURL,
		RepoRoots: *w.repos, Models: w.models.config(),
		EpochLength: *w.epochLength, Consensus: consensus,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}, nil
}

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("serve", "Serve the REST API (/api/v1), /healthz and /metrics, and evaluate queued submissions.",
		"crucible serve --database postgres://postgres@127.0.0.1:5432/crucible --listen 127.0.0.1:8080", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP address")
	noWork := fs.Bool("no-work", false, "serve the API only; leave evaluation to crucible worker processes")
	publicURL := fs.String("public-url", "", "the `URL` people reach this server at when a proxy sits in front (an https URL makes the /label cookie Secure)")
	trustProto := fs.Bool("trust-forwarded-proto", false, "treat X-Forwarded-Proto: https as a TLS request (only behind a proxy that sets the header itself)")
	d := app.DefaultTimeouts
	readHeader := fs.Duration("read-header-timeout", d.ReadHeader, "how long a client may take to send a request's headers")
	read := fs.Duration("read-timeout", d.Read, "how long a client may take to send a whole request, body included (size it for the largest dataset upload)")
	write := fs.Duration("write-timeout", d.Write, "how long a request may take from its headers to the end of the response (more than --read-timeout)")
	idle := fs.Duration("idle-timeout", d.Idle, "how long an idle kept-alive connection stays open")
	wf := addWorkerFlags(fs)
	qf := addQuotaFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := wf.config(*listen, *noWork)
	if err != nil {
		return err
	}
	if cfg.Quotas, err = qf.quotas(); err != nil {
		return err
	}
	cfg.PublicURL, cfg.TrustForwardedProto = *publicURL, *trustProto
	cfg.Timeouts = app.Timeouts{ReadHeader: *readHeader, Read: *read, Write: *write, Idle: *idle}
	a, err := app.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := a.Listen()
	if err != nil {
		return err
	}
	return a.Serve(ctx, ln)
}

// quotaFlags are the per-key quotas of the API (serve only).
type quotaFlags struct {
	competitions, submissions, open, entries *int
}

func addQuotaFlags(fs *flag.FlagSet) quotaFlags {
	return quotaFlags{
		competitions: fs.Int("quota-competitions", app.DefaultCompetitionsPerDay, "competitions and pools one key may create in any 24 hours (0: no limit; --admin-key keys are exempt from every quota)"),
		submissions:  fs.Int("quota-submissions", app.DefaultSubmissionsPerDay, "submissions and pool entries one key may make in any 24 hours (0: no limit)"),
		open:         fs.Int("quota-open", app.DefaultOpenSubmissions, "submissions of one key that may be queued or running at once (0: no limit)"),
		entries: fs.Int("max-entries-per-key", competition.DefaultMaxEntriesPerKey,
			"active (not failed) entries one key may have in one model competition or pool (at least 1; one model may have one entry whatever this says)"),
	}
}

func (q quotaFlags) quotas() (app.Quotas, error) {
	for name, v := range map[string]int{"quota-competitions": *q.competitions, "quota-submissions": *q.submissions, "quota-open": *q.open} {
		if v < 0 {
			return app.Quotas{}, usagef("--%s %d must be 0 (no limit) or positive", name, v)
		}
	}
	if *q.entries < 1 {
		return app.Quotas{}, usagef("--max-entries-per-key %d must be at least 1", *q.entries)
	}
	return app.Quotas{CompetitionsPerDay: *q.competitions, SubmissionsPerDay: *q.submissions, OpenSubmissions: *q.open,
		EntriesPerKey: *q.entries}, nil
}

func runWorker(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("worker", "Evaluate queued submissions. Several workers on one PostgreSQL database share the queue.",
		"crucible worker --database postgres://postgres@127.0.0.1:5432/crucible", stderr)
	wf := addWorkerFlags(fs)
	metrics := fs.String("metrics-listen", "", "serve GET /metrics (Prometheus text: this worker's jobs, evaluations and model errors) on this address, e.g. 127.0.0.1:9091")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := wf.config("", false)
	if err != nil {
		return err
	}
	cfg.MetricsListen = *metrics
	a, err := app.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Work(ctx)
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "Start Crucible in-process on SQLite with the built-in baseline model server, create a competition\n"+
		"from the bundled Social IQa sample (300 items, CC BY 4.0), submit the baseline models, evaluate them\nand print the leaderboard.",
		"crucible demo --json", stderr)
	o := addOutputFlags(fs, "print the leaderboard as JSON")
	database := fs.String("database", "", "SQLite file to keep the demo's data in (default: a temporary file)")
	serve := fs.String("serve", "", "after the leaderboard, keep serving the API and web UI on this address (e.g. 127.0.0.1:8080) until interrupted")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg := app.DemoConfig{Database: *database, Progress: stderr, Interactive: isTerminal(stderr), Listen: *serve, Keep: *serve != ""}
	var printErr error
	cfg.Ready = func(_ string, rows []competition.Row) {
		printErr = o.emit(stdout, rows, func() error {
			printLeaderboard(stdout, rows)
			return nil
		})
	}
	if _, err := app.Demo(ctx, cfg); err != nil {
		return err
	}
	return printErr
}
