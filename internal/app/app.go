// Package app wires Crucible together: configuration → store → job queue →
// API → HTTP server, for `crucible serve`, `crucible worker` and the demo.
// It holds no domain logic of its own.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"crucible/internal/api"
	"crucible/internal/clock"
	"crucible/internal/epoch"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/patch"
	"crucible/internal/inference"
	"crucible/internal/jobs"
	"crucible/internal/labeling"
	"crucible/internal/pool"
	"crucible/internal/store"
	"crucible/internal/validator"
	"crucible/internal/web"
)

// Config configures a Crucible process.
type Config struct {
	// Database is a SQLite file path or a postgres:// URL (default ./crucible.db).
	Database string
	// Listen is the HTTP address (default 127.0.0.1:8080).
	Listen string
	// NoWork makes a server that only serves the API and enqueues jobs.
	NoWork bool
	// Submissions, ItemConcurrency, Slice and RescueAfter tune the workers (see jobs.Config).
	Submissions     int
	ItemConcurrency int
	Slice           time.Duration
	RescueAfter     time.Duration
	// MaxAttempts bounds infrastructure retries of an evaluation (default 5).
	MaxAttempts int
	// AllowEndpoints lists CIDRs of private addresses that submitted model
	// URLs may reach (loopback, private, link-local… are refused otherwise).
	AllowEndpoints string
	// GeneratorURL, ReferenceURL and JudgeURL are the operator's own models,
	// which competitions may use (see kinds.Egress). Their API keys are read
	// from EnvGeneratorKey, EnvReferenceKey and EnvJudgeKey when the app
	// opens, and only these URLs ever receive them.
	GeneratorURL, ReferenceURL, JudgeURL string
	// RepoRoots are directories whose git repositories operator keys (the
	// consensus admins) may name in patch tasks; everyone else uploads
	// bundles.
	RepoRoots []string
	// RepoCache keeps uploaded bundles fetched from the database, by
	// digest ("": a private temporary directory removed on Close).
	RepoCache string
	// EpochLength is the length of model-competition epochs (default 72 min).
	EpochLength time.Duration
	Clock       clock.Clock
	Logger      *slog.Logger

	// Consensus configures registration, stakes, admins and emissions of
	// the validator network (DB, Clock and EpochLength are filled in).
	Consensus validator.Config
}

// Environment variables holding the API keys of the operator's own models.
// They are read here only, never by the packages that make the requests.
const (
	EnvGeneratorKey = "CRUCIBLE_GENERATOR_API_KEY"
	EnvReferenceKey = "CRUCIBLE_REFERENCE_API_KEY"
	EnvJudgeKey     = "CRUCIBLE_JUDGE_API_KEY"
)

// operatorEndpoints pairs the configured URLs of the operator's models
// with their keys from the environment.
func operatorEndpoints(generator, reference, judge string) map[kinds.Role]kinds.OperatorEndpoint {
	ops := map[kinds.Role]kinds.OperatorEndpoint{}
	for _, e := range []struct {
		role     kinds.Role
		url, env string
	}{{kinds.RoleGenerator, generator, EnvGeneratorKey}, {kinds.RoleReference, reference, EnvReferenceKey}, {kinds.RoleJudge, judge, EnvJudgeKey}} {
		if e.url != "" {
			ops[e.role] = kinds.OperatorEndpoint{BaseURL: e.url, APIKey: os.Getenv(e.env)}
		}
	}
	return ops
}

// App is an opened Crucible: database, queue and API.
type App struct {
	DB       *store.DB
	Queue    *jobs.Queue
	API      *api.Server
	Registry *prometheus.Registry
	Epochs   *epoch.Service
	cfg      Config
	// tempCache is the bundle cache Open created, removed by Close.
	tempCache string
}

// Open connects the database (migrating it), builds the queue and the API.
func Open(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Database == "" {
		cfg.Database = "crucible.db"
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8080"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	db, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	qcfg := jobs.Config{
		DB: db, Clock: cfg.Clock, Submissions: cfg.Submissions, ItemConcurrency: cfg.ItemConcurrency,
		Slice: cfg.Slice, RescueAfter: cfg.RescueAfter, MaxAttempts: cfg.MaxAttempts, Logger: cfg.Logger, Metrics: jobs.NewMetrics(reg),
	}
	policy, err := inference.ParseAllowList(cfg.AllowEndpoints)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("allow-endpoints: %w", err)
	}
	egress := kinds.Egress{Operator: operatorEndpoints(cfg.GeneratorURL, cfg.ReferenceURL, cfg.JudgeURL),
		HTTPClient: inference.NewSafeHTTPClient(policy, inference.Timeouts{})}
	repos, tempCache, err := openRepos(cfg, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	planner := kinds.Planner{Egress: egress, Repos: repos}
	epochs := epoch.New(epoch.Config{DB: db, Clock: cfg.Clock, Length: cfg.EpochLength})
	pools := pool.New(pool.Config{DB: db, Planner: planner, Clock: cfg.Clock, Logger: cfg.Logger})
	cfg.Consensus.DB, cfg.Consensus.Clock, cfg.Consensus.EpochLength = db, cfg.Clock, cfg.EpochLength
	consensus := validator.New(cfg.Consensus)
	if !cfg.NoWork {
		qcfg.Planner = planner
		qcfg.Periodic = []jobs.Periodic{
			{Name: "pool-tick", Interval: time.Minute, Run: pools.TickAll},
			{Name: "epoch-close", Interval: time.Minute, Run: epochs.CloseDue},
			{Name: "consensus-close", Interval: min(time.Minute, consensus.EpochLength()), Run: consensus.CloseDue},
		}
	}
	a := &App{DB: db, Registry: reg, Epochs: epochs, cfg: cfg, tempCache: tempCache}
	if a.Queue, err = jobs.New(ctx, qcfg); err != nil {
		a.Close()
		return nil, err
	}
	a.API = api.New(api.Config{DB: db, Queue: a.Queue, Pools: pools, Epochs: epochs, Clock: cfg.Clock, Registry: reg, Logger: cfg.Logger,
		Validators: consensus, Egress: egress, Repos: repos})
	ui, err := web.New(web.Config{Store: db, Clock: cfg.Clock, Logger: cfg.Logger})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.API.Mount("/", ui)
	if err := a.mountLabel(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// mountLabel serves the /label pages of preference competitions.
func (a *App) mountLabel() error {
	lab, err := labeling.New(labeling.Config{DB: a.DB, Clock: a.cfg.Clock})
	if err != nil {
		return err
	}
	pages, err := web.NewLabel(web.LabelConfig{Labeling: lab, Logger: a.cfg.Logger})
	if err != nil {
		return err
	}
	a.API.Mount("/label", pages)
	a.API.Mount("/label/", pages)
	return nil
}

// openRepos checks the repository roots and prepares the bundle cache; it
// returns the cache directory it created, if any.
func openRepos(cfg Config, db *store.DB) (patch.Repos, string, error) {
	repos := patch.Repos{CacheDir: cfg.RepoCache, Fetch: db.RepoBundle}
	for _, root := range cfg.RepoRoots {
		abs, err := filepath.Abs(root)
		if err != nil {
			return repos, "", fmt.Errorf("repos %s: %w", root, err)
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			return repos, "", fmt.Errorf("repos %s: not a directory", root)
		}
		repos.Roots = append(repos.Roots, abs)
	}
	if repos.CacheDir != "" {
		return repos, "", nil
	}
	dir, err := os.MkdirTemp("", "crucible-bundles-")
	if err != nil {
		return repos, "", fmt.Errorf("bundle cache: %w", err)
	}
	repos.CacheDir = dir
	return repos, dir, nil
}

// Close releases the database and removes the temporary bundle cache.
func (a *App) Close() error {
	if a.tempCache != "" {
		_ = os.RemoveAll(a.tempCache)
	}
	return a.DB.Close()
}

// Listen opens the configured HTTP listener.
func (a *App) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}
	return ln, nil
}

// Serve runs the workers (unless NoWork) and the HTTP server on ln until ctx
// ends, then shuts both down gracefully.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	if err := a.Queue.Start(ctx); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	srv := &http.Server{Handler: a.API.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.cfg.Logger.Info("crucible serving", "addr", ln.Addr().String(), "database", a.DB.Dialect())
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	if err := a.Queue.Stop(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		a.cfg.Logger.Warn("stop workers", "err", err)
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// Work runs only the workers until ctx ends (`crucible worker`).
func (a *App) Work(ctx context.Context) error {
	if err := a.Queue.Start(ctx); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	a.cfg.Logger.Info("crucible worker running", "database", a.DB.Dialect())
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return a.Queue.Stop(stopCtx)
}
