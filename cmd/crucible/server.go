package main

import (
	"context"
	"encoding/json"
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
		RepoRoots:   *w.repos,
		EpochLength: *w.epochLength, Consensus: consensus,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}, nil
}

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("serve", "Serve the REST API (/api/v1), /healthz and /metrics, and evaluate queued submissions.",
		"crucible serve --database postgres://postgres@127.0.0.1:5432/crucible --listen 127.0.0.1:8080", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP address")
	noWork := fs.Bool("no-work", false, "serve the API only; leave evaluation to `crucible worker` processes")
	wf := addWorkerFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := wf.config(*listen, *noWork)
	if err != nil {
		return err
	}
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

func runWorker(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("worker", "Evaluate queued submissions. Several workers on one PostgreSQL database share the queue.",
		"crucible worker --database postgres://postgres@127.0.0.1:5432/crucible", stderr)
	wf := addWorkerFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := wf.config("", false)
	if err != nil {
		return err
	}
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
	asJSON := fs.Bool("json", false, "print the leaderboard as JSON")
	database := fs.String("database", "", "SQLite file to keep the demo's data in (default: a temporary file)")
	serve := fs.String("serve", "", "after the leaderboard, keep serving the API and web UI on this address (e.g. 127.0.0.1:8080) until interrupted")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg := app.DemoConfig{Database: *database, Progress: stderr, Interactive: isTerminal(stderr), Listen: *serve, Keep: *serve != ""}
	var printErr error
	cfg.Ready = func(_ string, rows []competition.Row) {
		if *asJSON {
			printErr = json.NewEncoder(stdout).Encode(rows)
			return
		}
		printLeaderboard(stdout, rows)
	}
	if _, err := app.Demo(ctx, cfg); err != nil {
		return err
	}
	return printErr
}
