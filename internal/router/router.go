// Package router is an OpenAI-compatible reverse proxy that sends each
// request to the least-loaded healthy worker (model server) serving the
// requested model. This file holds the worker set and its health checks; the
// request path is in proxy.go, upstream connections in router_conn.go, the
// signed admin API in router_admin.go, metrics in router_metrics.go,
// request-body scanning in router_json.go, and the lean HTTP/1.1 server
// `crucible router` serves it with in server.go (parser in server_parse.go,
// response writer in server_response.go).
//
// It speaks the wire types of internal/inference and verifies admin requests
// with internal/identity; it never imports the store, the job queue or a kind.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"crucible/internal/identity"
	"crucible/internal/inference"
)

// GCPercent is the garbage collector's target `crucible router` runs with
// (debug.SetGCPercent) unless told otherwise. A router's live heap is a few
// megabytes while every request leaves several kilobytes of garbage, so at
// Go's default of 100 it collects every few thousand requests and the
// collector's work was a visible share of its CPU per request: on two
// cores bench/router measured 49 µs of router CPU per request at 100 and
// 42 at 400 (router/nginx 0.81 and 0.85, medians of 5 rounds; 1000 gained
// nothing more). Memory stays bounded: the heap peaks at five times the
// live heap instead of twice.
const GCPercent = 400

// WorkerSpec describes one worker (an OpenAI-compatible model server) behind
// the router.
type WorkerSpec struct {
	// URL is the worker's API root, e.g. "http://10.0.0.7:8000/v1"; see
	// NormalizeBaseURL for the accepted forms. It identifies the worker.
	URL string `json:"url"`
	// Model, when set, is the only model routed to this worker (and the
	// health check requires the worker to list it). When empty, the worker
	// serves every model its GET /v1/models lists.
	Model string `json:"model,omitempty"`
	// MaxConcurrency caps the requests in flight to this worker; 0 means
	// no cap.
	MaxConcurrency int `json:"max_concurrency,omitempty"`
}

// ParseWorkerSpec parses "URL[=model[:maxconc]]", e.g.
// "http://10.0.0.7:8000/v1=baseline-oracle:32". The part after the last
// colon is the concurrency only if it is a number, so "URL=llama3:8b" names
// the model "llama3:8b"; write "URL=qwen:7:0" for a model named "qwen:7"
// without a cap.
func ParseWorkerSpec(s string) (WorkerSpec, error) {
	s = strings.TrimSpace(s)
	raw, rest, hasModel := strings.Cut(s, "=")
	spec := WorkerSpec{URL: raw}
	if hasModel {
		spec.Model = rest
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			if n, err := strconv.Atoi(rest[i+1:]); err == nil {
				if n < 0 {
					return WorkerSpec{}, fmt.Errorf("worker %q: max concurrency must not be negative", s)
				}
				spec.Model, spec.MaxConcurrency = rest[:i], n
			}
		}
		if spec.Model == "" {
			return WorkerSpec{}, fmt.Errorf("worker %q: empty model name after '='; write URL, URL=model or URL=model:maxconc", s)
		}
	}
	base, err := inference.NormalizeBaseURL(spec.URL)
	if err != nil {
		return WorkerSpec{}, fmt.Errorf("worker %q: %w", s, err)
	}
	spec.URL = base
	return spec, nil
}

// ParseWorkerList parses a comma-separated list of worker specs (see
// ParseWorkerSpec); empty entries are ignored.
func ParseWorkerList(s string) ([]WorkerSpec, error) {
	var out []WorkerSpec
	for _, f := range strings.Split(s, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		spec, err := ParseWorkerSpec(f)
		if err != nil {
			return nil, err
		}
		out = append(out, spec)
	}
	return out, nil
}

// Config configures a Router. Zero durations and counts mean the
// defaults given beside them.
type Config struct {
	// Workers is the static list of workers, routable from the start (a
	// worker without a Model becomes routable after its first health check).
	Workers []WorkerSpec
	// HealthInterval is the time between health checks (GET /v1/models on
	// every worker) while Run runs (default 2s).
	HealthInterval time.Duration
	// HealthTimeout bounds one health check (default 2s).
	HealthTimeout time.Duration
	// QueueTimeout is how long a request waits for a free slot when every
	// healthy worker serving its model is at MaxConcurrency; after that it
	// fails with 503 and code "workers_busy". Negative means do not wait
	// (default 30s).
	QueueTimeout time.Duration
	// MaxAttempts is how many workers one request may try when connecting
	// fails (default 3).
	MaxAttempts int
	// MaxBodyBytes bounds request bodies (default 8 MiB); larger ones get 413.
	MaxBodyBytes int64
	// MaxResponseDuration bounds one proxied exchange, from sending the
	// request to relaying the response's last byte (default 10 min). A
	// worker that has not answered by then gets the client a 504; a
	// response (typically a stream) still running is cut, so a stream that
	// never ends, or a client that stops reading, cannot hold a worker
	// slot for ever.
	MaxResponseDuration time.Duration
	// DialContext opens connections to workers (requests and health
	// checks); nil uses a net.Dialer with a 5s timeout. Pass
	// EndpointPolicy.Dialer(...).DialContext to confine workers to allowed
	// addresses.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Registry receives the router's metrics and is served at /metrics;
	// nil makes a new registry.
	Registry *prometheus.Registry
	// Verifier checks the signatures of admin API requests
	// (/api/v1/router/workers). With a nil Verifier or no AdminKeys the
	// admin API answers 403.
	Verifier *identity.Verifier
	// AdminKeys lists the key ids ("ed25519:...") allowed to register and
	// unregister workers.
	AdminKeys []string
	// Logger receives ejections, re-admissions and registrations; nil
	// uses slog.Default().
	Logger *slog.Logger
}

// Router is an OpenAI-compatible reverse proxy over many workers. It serves
//
//   - GET /v1/models: the union of the healthy workers' models;
//   - GET /v1/models/{id}: that model's entry from a healthy worker, or a
//     404 with code "model_not_found";
//   - POST /v1/chat/completions, /v1/completions and /v1/embeddings:
//     proxied to the healthy worker serving the body's "model" with the
//     fewest requests in flight, ties broken round-robin; responses,
//     including server-sent event streams (flushed chunk by chunk, never
//     buffered whole), are relayed as they arrive, and a client that goes
//     away mid-stream cancels the worker's request and frees its slot;
//   - GET /metrics: Prometheus metrics, per worker;
//   - GET /healthz: 200 while at least one worker is healthy, else 503;
//   - GET, POST, DELETE /api/v1/router/workers: the signed admin API.
//
// When every healthy worker of a model is at its MaxConcurrency, a request
// waits in a queue for up to Config.QueueTimeout and then gets 503
// with code "workers_busy" and Retry-After: 1. A connection failure (no
// response from the worker) is retried on another worker, up to MaxAttempts;
// a refused connection also ejects the worker until a health check succeeds.
// A worker's 4xx and 5xx responses are relayed as they are, never retried or
// turned into success, and a response that breaks off mid-body is aborted so
// the client sees an error, not a truncated success.
//
// The router does not authenticate /v1 requests (it forwards the client's
// Authorization header to the worker); bind it to a trusted network.
//
// Router is safe for concurrent use. Start health checks with Run.
type Router struct {
	cfg      Config
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	health   http.RoundTripper // for health checks
	log      *slog.Logger
	metrics  *routerMetrics
	metricsH http.Handler
	admins   map[string]bool

	mu      sync.Mutex // guards workers and table rebuilds
	workers []*worker  // in registration order
	table   atomic.Pointer[routeTable]

	rr      atomic.Uint64 // round-robin start for tie breaking
	waiters atomic.Int32  // requests queued for a free slot
	freeMu  sync.Mutex
	freed   chan struct{} // closed (and replaced) when a slot frees while requests wait

	states sync.Pool // *proxyState
}

// routeTable is an immutable snapshot of which workers serve which model.
type routeTable struct {
	byModel map[string][]*worker
	all     []*worker
}

// worker is one model server behind the router.
type worker struct {
	spec     WorkerSpec
	models   string // GET /v1/models URL
	up       *upstream
	paths    [numEndpoints]string // request path of each proxied endpoint
	max      int64
	inflight atomic.Int64
	healthy  atomic.Bool
	served   atomic.Uint64 // responses relayed (any status)
	errs     atomic.Uint64 // connection failures, 5xx, broken bodies
	latency  prometheus.Observer

	// Guarded by Router.mu.
	list    []inference.Model // from the last successful health check
	checked bool              // a health check has succeeded at least once
	lastErr string
	fails   int
}

// New returns a router over cfg.Workers. It makes no requests; call
// Run to start health checks.
func New(cfg Config) (*Router, error) {
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = 2 * time.Second
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 2 * time.Second
	}
	if cfg.QueueTimeout == 0 {
		cfg.QueueTimeout = 30 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 8 << 20
	}
	if cfg.MaxResponseDuration <= 0 {
		cfg.MaxResponseDuration = 10 * time.Minute
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	r := &Router{
		cfg:    cfg,
		dial:   cfg.DialContext,
		log:    cfg.Logger,
		admins: map[string]bool{},
		freed:  make(chan struct{}),
	}
	if r.dial == nil {
		r.dial = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	r.health = &http.Transport{
		DialContext:         r.dial,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	for _, k := range cfg.AdminKeys {
		if _, err := identity.ParseKeyID(k); err != nil {
			return nil, fmt.Errorf("router: admin key %q: %w", k, err)
		}
		r.admins[k] = true
	}
	r.table.Store(&routeTable{byModel: map[string][]*worker{}})
	m, err := newRouterMetrics(cfg.Registry, r)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	r.metricsH = promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})
	for _, spec := range cfg.Workers {
		if _, err := r.AddWorker(spec); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// ErrWorkerExists is returned by AddWorker for a URL already registered.
var ErrWorkerExists = errors.New("worker already registered")

// AddWorker registers a worker and returns its normalised spec. A worker
// with a Model is routable at once; one without becomes routable when a
// health check has listed its models. Registering a URL twice fails with
// ErrWorkerExists.
func (r *Router) AddWorker(spec WorkerSpec) (WorkerSpec, error) {
	base, err := inference.NormalizeBaseURL(spec.URL)
	if err != nil {
		return WorkerSpec{}, fmt.Errorf("router: worker: %w", err)
	}
	spec.URL = base
	spec.Model = strings.TrimSpace(spec.Model)
	if spec.MaxConcurrency < 0 {
		return WorkerSpec{}, fmt.Errorf("router: worker %s: max concurrency must not be negative", base)
	}
	u, err := url.Parse(base)
	if err != nil {
		return WorkerSpec{}, fmt.Errorf("router: worker %s: %w", base, err)
	}
	w := &worker{
		spec:    spec,
		models:  base + "/models",
		up:      newUpstream(u, r.dial),
		paths:   endpointPaths(u.EscapedPath()),
		max:     int64(spec.MaxConcurrency),
		latency: r.metrics.latency.WithLabelValues(base),
	}
	if spec.Model != "" {
		w.list = []inference.Model{{ID: spec.Model, Object: "model", OwnedBy: "crucible-router"}}
		w.healthy.Store(true)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.workers {
		if o.spec.URL == base {
			return WorkerSpec{}, fmt.Errorf("router: %s: %w", base, ErrWorkerExists)
		}
	}
	r.workers = append(r.workers, w)
	r.rebuildLocked()
	return spec, nil
}

// RemoveWorker unregisters the worker with the given URL (in any form
// NormalizeBaseURL accepts) and reports whether it was registered. Requests
// already sent to it complete.
func (r *Router) RemoveWorker(rawURL string) bool {
	base, err := inference.NormalizeBaseURL(rawURL)
	if err != nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.workers, func(w *worker) bool { return w.spec.URL == base })
	if i < 0 {
		return false
	}
	w := r.workers[i]
	w.healthy.Store(false)
	r.workers = slices.Delete(r.workers, i, i+1)
	r.metrics.latency.DeleteLabelValues(base)
	w.up.close()
	r.rebuildLocked()
	return true
}

// rebuildLocked publishes a new route table; r.mu must be held.
func (r *Router) rebuildLocked() {
	t := &routeTable{byModel: map[string][]*worker{}, all: slices.Clone(r.workers)}
	for _, w := range r.workers {
		for _, m := range w.list {
			t.byModel[m.ID] = append(t.byModel[m.ID], w)
		}
	}
	r.table.Store(t)
}

// WorkerStatus is the state of one worker as the router sees it.
type WorkerStatus struct {
	URL            string   `json:"url"`
	Model          string   `json:"model,omitempty"`
	Models         []string `json:"models"`
	MaxConcurrency int      `json:"max_concurrency"`
	Healthy        bool     `json:"healthy"`
	InFlight       int64    `json:"in_flight"`
	Served         uint64   `json:"served"`
	Errors         uint64   `json:"errors"`
	LastError      string   `json:"last_error,omitempty"`
}

// Workers returns the status of every registered worker, in registration
// order.
func (r *Router) Workers() []WorkerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]WorkerStatus, len(r.workers))
	for i, w := range r.workers {
		models := make([]string, len(w.list))
		for j, m := range w.list {
			models[j] = m.ID
		}
		out[i] = WorkerStatus{
			URL: w.spec.URL, Model: w.spec.Model, Models: models, MaxConcurrency: w.spec.MaxConcurrency,
			Healthy: w.healthy.Load(), InFlight: w.inflight.Load(), Served: w.served.Load(), Errors: w.errs.Load(),
			LastError: w.lastErr,
		}
	}
	return out
}

// Run checks every worker's health at once and then every HealthInterval
// until ctx is done, and returns ctx.Err().
func (r *Router) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.HealthInterval)
	defer t.Stop()
	for {
		r.CheckHealth(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// CheckHealth checks every worker once, concurrently: a worker whose GET
// /v1/models fails, answers non-2xx or (for a worker with a Model) does not
// list its model is ejected; a healthy answer re-admits it and refreshes
// its model list.
func (r *Router) CheckHealth(ctx context.Context) {
	t := r.table.Load()
	var wg sync.WaitGroup
	for _, w := range t.all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			models, err := r.probe(ctx, w)
			if ctx.Err() != nil {
				return
			}
			r.recordHealth(w, models, err)
		}()
	}
	wg.Wait()
}

// probe fetches a worker's model list.
func (r *Router) probe(ctx context.Context, w *worker) ([]inference.Model, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.HealthTimeout)
	defer cancel()
	c, err := inference.New(inference.Config{BaseURL: w.spec.URL, HTTPClient: &http.Client{Transport: r.health}})
	if err != nil {
		return nil, err
	}
	list, err := c.Models(ctx)
	if err != nil {
		return nil, err
	}
	if w.spec.Model != "" {
		if !slices.ContainsFunc(list.Data, func(m inference.Model) bool { return m.ID == w.spec.Model }) {
			return nil, fmt.Errorf("GET %s does not list model %q", w.models, w.spec.Model)
		}
		return []inference.Model{{ID: w.spec.Model, Object: "model", OwnedBy: ownedBy(list.Data, w.spec.Model)}}, nil
	}
	return list.Data, nil
}

func ownedBy(list []inference.Model, id string) string {
	for _, m := range list {
		if m.ID == id && m.OwnedBy != "" {
			return m.OwnedBy
		}
	}
	return "crucible-router"
}

// recordHealth applies one health check result.
func (r *Router) recordHealth(w *worker, models []inference.Model, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.workers, w) {
		return // removed meanwhile
	}
	if err != nil {
		w.fails++
		w.lastErr = err.Error()
		if w.healthy.Swap(false) {
			r.log.Warn("router: worker ejected", "worker", w.spec.URL, "reason", "health check failed", "err", err)
		}
		return
	}
	w.fails = 0
	w.lastErr = ""
	changed := !w.checked || !slices.EqualFunc(w.list, models, func(a, b inference.Model) bool { return a.ID == b.ID })
	w.list, w.checked = models, true
	if changed {
		r.rebuildLocked()
	}
	if !w.healthy.Swap(true) {
		r.log.Info("router: worker admitted", "worker", w.spec.URL, "models", len(models))
	}
	r.notifyFree()
}

// markDown ejects a worker after a refused connection.
func (r *Router) markDown(w *worker, err error) {
	if w.healthy.Swap(false) {
		r.mu.Lock()
		w.lastErr = err.Error()
		r.mu.Unlock()
		r.log.Warn("router: worker ejected", "worker", w.spec.URL, "reason", "connection failed", "err", err)
	}
}
