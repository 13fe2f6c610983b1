// Package app wires Crucible together: configuration → store → job queue →
// API → HTTP server, for `crucible serve`, `crucible worker` and the demo.
// It holds no domain logic of its own.
package app

import (
	"context"
	"crucible/internal/eval/mcq"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"crucible/internal/api"
	"crucible/internal/clock"
	"crucible/internal/consensus"
	"crucible/internal/egress"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/patch"
	"crucible/internal/eval/taskkind"
	"crucible/internal/intake"
	"crucible/internal/jobs"
	"crucible/internal/kind"
	"crucible/internal/labeling"
	"crucible/internal/modelhost"
	"crucible/internal/pool"
	"crucible/internal/seal"
	"crucible/internal/store"
	"crucible/internal/web"
	"crucible/internal/weights"
)

// Config configures a Crucible process.
type Config struct {
	// Database is a SQLite file path or a postgres:// URL (default ./crucible.db).
	Database string
	// Listen is the HTTP address (default 127.0.0.1:8080).
	Listen string
	// MetricsListen, for Work (`crucible worker`, which serves no API), is
	// where it serves GET /metrics; empty: nowhere.
	MetricsListen string
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
	// Models configures the workers' serving of artifact submissions.
	Models Models
	// EpochLength is the length of model-competition epochs (default 72 min).
	EpochLength time.Duration
	Clock       clock.Clock
	Logger      *slog.Logger

	// Consensus configures registration, stakes, admins and emissions of
	// the validator network (DB, Clock and EpochLength are filled in). Its
	// admins are the operators: they also deposit money and may force a
	// pool's settlement.
	Consensus consensus.Config
	// DemoFunding lets pools be funded from external with nothing behind
	// it (the demo); otherwise funders need an operator's deposit first.
	DemoFunding bool

	// Quotas bound what one key may create through the API (zero fields:
	// no limit). The admin keys of Consensus are exempt: they are the
	// operator's.
	Quotas api.Quotas

	// Timeouts bound how long one connection may hold the server (zero
	// fields take the DefaultTimeouts).
	Timeouts Timeouts
	// PublicURL is the address people reach the server at, if it differs
	// from Listen (a TLS proxy in front); an https URL makes the label
	// cookie Secure.
	PublicURL string
	// TrustForwardedProto believes a proxy's X-Forwarded-Proto header when
	// deciding whether a request came over TLS. Set it only when every
	// request passes through a proxy that sets the header.
	TrustForwardedProto bool

	// Kinds adds competition kinds beside the built-in ones, built with
	// the server's egress (the HTTP client every model request must use).
	Kinds func(egress kinds.Egress) []kind.Kind
}

// Timeouts are the HTTP server's limits per connection.
type Timeouts struct {
	// ReadHeader bounds reading a request's headers.
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included: it must fit the
	// largest legitimate upload (a 64 MiB dataset) over a slow link.
	Read time.Duration
	// Write bounds a request from the end of its headers to the end of the
	// response, so it must exceed Read.
	Write time.Duration
	// Idle bounds how long a kept-alive connection waits for its next request.
	Idle time.Duration
}

// orDefaults fills the zero fields from DefaultTimeouts.
func (t Timeouts) orDefaults() Timeouts {
	d := DefaultTimeouts
	if t.ReadHeader > 0 {
		d.ReadHeader = t.ReadHeader
	}
	if t.Read > 0 {
		d.Read = t.Read
	}
	if t.Write > 0 {
		d.Write = t.Write
	}
	if t.Idle > 0 {
		d.Idle = t.Idle
	}
	return d
}

// DefaultTimeouts fit a 64 MiB upload at about 0.5 MB/s.
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: 2 * time.Minute, Write: 5 * time.Minute, Idle: 2 * time.Minute}

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
	// Kinds are the competition kinds this process runs.
	Kinds  *kind.Registry
	Epochs *weights.Service
	Pools  *pool.Service
	cfg    Config
	// tempCache is the bundle cache Open created, removed by Close.
	tempCache string
	// models serves artifact submissions (nil: none), closed by Close.
	models *modelhost.Host
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
	cfg.Timeouts = cfg.Timeouts.orDefaults()
	if cfg.Timeouts.Write <= cfg.Timeouts.Read {
		return nil, fmt.Errorf("write timeout %s must exceed read timeout %s: a response is written after its request is read",
			cfg.Timeouts.Write, cfg.Timeouts.Read)
	}
	secureCookie := false
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("public URL %q is not an http(s) URL like https://crucible.example.org", cfg.PublicURL)
		}
		secureCookie = u.Scheme == "https"
	}
	db, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStoreMetrics(db), jobs.NewQueueDepth(db))
	qcfg := jobs.Config{
		DB: db, Clock: cfg.Clock, Submissions: cfg.Submissions, ItemConcurrency: cfg.ItemConcurrency,
		Slice: cfg.Slice, RescueAfter: cfg.RescueAfter, MaxAttempts: cfg.MaxAttempts, Logger: cfg.Logger, Metrics: jobs.NewMetrics(reg),
	}
	policy, err := egress.ParseAllowList(cfg.AllowEndpoints)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("allow-endpoints: %w", err)
	}
	outbound := kinds.Egress{Operator: operatorEndpoints(cfg.GeneratorURL, cfg.ReferenceURL, cfg.JudgeURL),
		HTTPClient: egress.NewSafeHTTPClient(policy, egress.Timeouts{})}
	var models *modelhost.Host
	if !cfg.NoWork {
		if models, err = modelhost.Open(cfg.Models, cfg.Logger); err != nil {
			db.Close()
			return nil, err
		}
		if models != nil {
			outbound.Launched = egress.NewSafeHTTPClient(modelhost.LaunchedPolicy(policy), egress.Timeouts{})
		}
	}
	repos, tempCache, err := openRepos(cfg, db)
	if err != nil {
		models.Close()
		db.Close()
		return nil, err
	}
	var extra []kind.Kind
	if cfg.Kinds != nil {
		extra = cfg.Kinds(outbound)
	}
	planner, err := Kinds(outbound, repos, extra...)
	if err != nil {
		models.Close()
		db.Close()
		return nil, err
	}
	epochs := weights.New(weights.Config{DB: db, Clock: cfg.Clock, Length: cfg.EpochLength, Kinds: planner, ItemConcurrency: cfg.ItemConcurrency})
	cfg.Consensus.DB, cfg.Consensus.Clock, cfg.Consensus.EpochLength = db, cfg.Clock, cfg.EpochLength
	consensus := consensus.New(cfg.Consensus)
	prefs, err := labeling.New(labeling.Config{DB: db, Clock: cfg.Clock})
	if err != nil {
		models.Close()
		db.Close()
		return nil, err
	}
	a := &App{DB: db, Registry: reg, Kinds: planner, Epochs: epochs, cfg: cfg, tempCache: tempCache, models: models}
	if !cfg.NoWork {
		qcfg.Planner, qcfg.Models = planner, models
		qcfg.Ticks = jobs.Ticks{
			Pools:          func(ctx context.Context) error { return a.Pools.TickAll(ctx) },
			Epochs:         epochs.CloseDue,
			Consensus:      consensus.CloseDue,
			ConsensusEvery: min(time.Minute, consensus.EpochLength()),
			Preferences:    prefs.CloseDue,
			Fresh:          a.EvaluateFresh,
		}
	}
	if a.Queue, err = jobs.New(ctx, qcfg); err != nil {
		a.Close()
		return nil, err
	}
	// Every competition and submission, through the API or a pool, is
	// created by the one intake service.
	entries := intake.New(intake.Config{DB: db, Kinds: planner, Evaluations: a.Queue, Clock: cfg.Clock, Metrics: intake.NewMetrics(reg)})
	// Pools enqueue their evaluations on the queue, whose pool tick calls them back.
	a.Pools = pool.New(pool.Config{DB: db, Kind: mcq.Name, TaskKind: taskkind.TaskName, Evaluations: a.Queue, Intake: entries, Clock: cfg.Clock, Logger: cfg.Logger,
		Operators: cfg.Consensus.Admins, ExternalFunding: cfg.DemoFunding, MaxEntriesPerKey: cfg.Quotas.EntriesPerKey})
	if err := a.mount(ctx, api.Config{Validators: consensus, Kinds: planner, Repos: repos, Intake: entries}, secureCookie); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// mount builds the API (services is its configuration beyond the app's
// own parts) with the web UI and the /label pages beside it.
func (a *App) mount(ctx context.Context, services api.Config, secureCookie bool) error {
	hubID, err := a.DB.HubID(ctx)
	if err != nil {
		return err
	}
	quotas := a.cfg.Quotas
	quotas.Exempt = slices.Concat(quotas.Exempt, a.cfg.Consensus.Admins)
	services.DB, services.Pools, services.Epochs = a.DB, a.Pools, a.Epochs
	services.Clock, services.Registry, services.Logger, services.HubID, services.Quotas = a.cfg.Clock, a.Registry, a.cfg.Logger, hubID, quotas
	a.API = api.New(services)
	lab, err := labeling.New(labeling.Config{DB: a.DB, Clock: a.cfg.Clock})
	if err != nil {
		return err
	}
	ui, err := web.New(web.Config{Store: seal.Public{DB: a.DB}, Clock: a.cfg.Clock, Logger: a.cfg.Logger, Kinds: a.Kinds, Labeling: lab,
		Leaderboards: a.API})
	if err != nil {
		return err
	}
	a.API.Mount("/", ui)
	return a.mountLabel(lab, secureCookie)
}

// mountLabel serves the /label pages of preference competitions.
func (a *App) mountLabel(lab *labeling.Service, secureCookie bool) error {
	pages, err := web.NewLabel(web.LabelConfig{Labeling: lab, Logger: a.cfg.Logger,
		SecureCookie: secureCookie, TrustForwardedProto: a.cfg.TrustForwardedProto})
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

// Close releases the job queue's hold on the database, the database, and
// removes the temporary bundle cache.
func (a *App) Close() error {
	if a.Queue != nil {
		a.Queue.Close()
	}
	a.models.Close()
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

// Handler is everything the server answers (API, web UI, labeling pages),
// with the browser security headers on every response.
func (a *App) Handler() http.Handler { return web.SecurityHeaders(a.API.Handler()) }

// Serve runs the workers (unless NoWork) and the HTTP server on ln until ctx
// ends, then shuts both down gracefully.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	if err := a.startWorkers(ctx); err != nil {
		return err
	}
	t := a.cfg.Timeouts
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write, IdleTimeout: t.Idle,
		ErrorLog: slog.NewLogLogger(a.cfg.Logger.Handler(), slog.LevelWarn)}
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

// startWorkers first removes what a killed worker on this machine left
// behind (code-fix workspaces and sandbox cgroups whose owner is dead; a live
// worker's are kept), then starts the queue.
func (a *App) startWorkers(ctx context.Context) error {
	if !a.cfg.NoWork {
		if err := patch.Sweep(""); err != nil {
			a.cfg.Logger.Warn("sweep leftovers of killed judges", "err", err)
		}
	}
	if err := a.Queue.Start(ctx); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	return nil
}

// Work runs only the workers until ctx ends (`crucible worker`).
func (a *App) Work(ctx context.Context) error {
	if err := a.startWorkers(ctx); err != nil {
		return err
	}
	stopMetrics, err := a.serveMetrics()
	if err != nil {
		_ = a.Queue.Stop(context.Background())
		return err
	}
	a.cfg.Logger.Info("crucible worker running", "database", a.DB.Dialect())
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stopMetrics(stopCtx)
	return a.Queue.Stop(stopCtx)
}
