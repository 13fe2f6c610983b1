package inference

// This file holds the router: an OpenAI-compatible reverse proxy that sends
// each request to the least-loaded healthy worker (model server) serving the
// requested model. Its admin API is in router_admin.go, its metrics in
// router_metrics.go and request-body scanning in router_json.go.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
)

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
	base, err := NormalizeBaseURL(spec.URL)
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

// RouterConfig configures a Router. Zero durations and counts mean the
// defaults given beside them.
type RouterConfig struct {
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
//   - POST /v1/chat/completions and POST /v1/completions: proxied to the
//     healthy worker serving the body's "model" with the fewest requests in
//     flight, ties broken round-robin; responses, including server-sent
//     event streams (flushed chunk by chunk), are relayed as they arrive;
//   - GET /metrics: Prometheus metrics, per worker;
//   - GET /healthz: 200 while at least one worker is healthy, else 503;
//   - GET, POST, DELETE /api/v1/router/workers: the signed admin API.
//
// When every healthy worker of a model is at its MaxConcurrency, a request
// waits in a queue for up to RouterConfig.QueueTimeout and then gets 503
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
	cfg      RouterConfig
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
	chat     string // request path of chat completions
	compl    string // request path of text completions
	max      int64
	inflight atomic.Int64
	healthy  atomic.Bool
	served   atomic.Uint64 // responses relayed (any status)
	errs     atomic.Uint64 // connection failures, 5xx, broken bodies
	latency  prometheus.Observer

	// Guarded by Router.mu.
	list    []Model // from the last successful health check
	checked bool    // a health check has succeeded at least once
	lastErr string
	fails   int
}

// NewRouter returns a router over cfg.Workers. It makes no requests; call
// Run to start health checks.
func NewRouter(cfg RouterConfig) (*Router, error) {
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
	base, err := NormalizeBaseURL(spec.URL)
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
		chat:    u.EscapedPath() + "/chat/completions",
		compl:   u.EscapedPath() + "/completions",
		max:     int64(spec.MaxConcurrency),
		latency: r.metrics.latency.WithLabelValues(base),
	}
	if spec.Model != "" {
		w.list = []Model{{ID: spec.Model, Object: "model", OwnedBy: "crucible-router"}}
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
	base, err := NormalizeBaseURL(rawURL)
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
func (r *Router) probe(ctx context.Context, w *worker) ([]Model, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.HealthTimeout)
	defer cancel()
	c, err := New(Config{BaseURL: w.spec.URL, HTTPClient: &http.Client{Transport: r.health}})
	if err != nil {
		return nil, err
	}
	list, err := c.Models(ctx)
	if err != nil {
		return nil, err
	}
	if w.spec.Model != "" {
		if !slices.ContainsFunc(list.Data, func(m Model) bool { return m.ID == w.spec.Model }) {
			return nil, fmt.Errorf("GET %s does not list model %q", w.models, w.spec.Model)
		}
		return []Model{{ID: w.spec.Model, Object: "model", OwnedBy: ownedBy(list.Data, w.spec.Model)}}, nil
	}
	return list.Data, nil
}

func ownedBy(list []Model, id string) string {
	for _, m := range list {
		if m.ID == id && m.OwnedBy != "" {
			return m.OwnedBy
		}
	}
	return "crucible-router"
}

// recordHealth applies one health check result.
func (r *Router) recordHealth(w *worker, models []Model, err error) {
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
	changed := !w.checked || !slices.EqualFunc(w.list, models, func(a, b Model) bool { return a.ID == b.ID })
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

// ServeHTTP implements http.Handler.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case "/v1/chat/completions":
		if req.Method == http.MethodPost {
			r.proxy(w, req, false)
			return
		}
	case "/v1/completions":
		if req.Method == http.MethodPost {
			r.proxy(w, req, true)
			return
		}
	case "/v1/models":
		if req.Method == http.MethodGet || req.Method == http.MethodHead {
			r.serveModels(w)
			return
		}
	case "/metrics":
		r.metricsH.ServeHTTP(w, req)
		return
	case "/healthz":
		r.serveHealthz(w)
		return
	case adminPath:
		r.serveAdmin(w, req)
		return
	default:
		openAIError(w, http.StatusNotFound, "invalid_request_error", "not_found",
			"router: no route for "+req.Method+" "+req.URL.Path+"; it serves /v1/models, /v1/chat/completions, /v1/completions, /metrics and "+adminPath)
		return
	}
	w.Header().Set("Allow", allowFor(req.URL.Path))
	openAIError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed",
		"router: "+req.Method+" is not allowed on "+req.URL.Path)
}

func allowFor(path string) string {
	if path == "/v1/models" {
		return "GET, HEAD"
	}
	return "POST"
}

func (r *Router) serveModels(w http.ResponseWriter) {
	t := r.table.Load()
	list := ModelList{Object: "list", Data: []Model{}}
	seen := map[string]bool{}
	for _, wk := range t.all {
		if !wk.healthy.Load() {
			continue
		}
		r.mu.Lock()
		ms := wk.list
		r.mu.Unlock()
		for _, m := range ms {
			if !seen[m.ID] {
				seen[m.ID] = true
				if m.Object == "" {
					m.Object = "model"
				}
				list.Data = append(list.Data, m)
			}
		}
	}
	slices.SortFunc(list.Data, func(a, b Model) int { return strings.Compare(a.ID, b.ID) })
	writeJSONResponse(w, http.StatusOK, list)
}

func (r *Router) serveHealthz(w http.ResponseWriter) {
	healthy := 0
	t := r.table.Load()
	for _, wk := range t.all {
		if wk.healthy.Load() {
			healthy++
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if healthy == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "no healthy worker (%d registered)\n", len(t.all))
		return
	}
	fmt.Fprintf(w, "ok: %d of %d workers healthy\n", healthy, len(t.all))
}

// proxyState is the per-request scratch space, pooled. The upstream
// client writes the body synchronously, so the buffer is free again when
// the request is done.
type proxyState struct {
	body bytes.Buffer
	copy []byte
}

func (r *Router) getState() *proxyState {
	if st, ok := r.states.Get().(*proxyState); ok {
		return st
	}
	return &proxyState{copy: make([]byte, 32<<10)}
}

func (r *Router) putState(st *proxyState) {
	if st.body.Cap() <= 1<<20 {
		st.body.Reset()
		r.states.Put(st)
	}
}

// pickResult says why no worker was picked.
type pickResult int

const (
	picked pickResult = iota
	noSuchModel
	noneHealthy
	allBusy
)

// pick chooses the healthy, untried worker serving model with the fewest
// requests in flight (ties by round-robin) and claims a slot on it.
func (r *Router) pick(t *routeTable, model []byte, tried []*worker) (*worker, pickResult) {
	list := t.byModel[string(model)]
	n := len(list)
	if n == 0 {
		return nil, noSuchModel
	}
	start := 0
	if n > 1 {
		start = int(r.rr.Add(1) % uint64(n))
	}
	for {
		var best *worker
		bestLoad := int64(1<<63 - 1)
		healthy := 0
		for i := 0; i < n; i++ {
			j := start + i
			if j >= n {
				j -= n
			}
			w := list[j]
			if !w.healthy.Load() || slices.Contains(tried, w) {
				continue
			}
			healthy++
			in := w.inflight.Load()
			if w.max > 0 && in >= w.max {
				continue
			}
			if in < bestLoad {
				best, bestLoad = w, in
			}
		}
		if best == nil {
			if healthy == 0 {
				return nil, noneHealthy
			}
			return nil, allBusy
		}
		if best.acquire() {
			return best, picked
		}
	}
}

// acquire claims a slot on w, honouring its max concurrency.
func (w *worker) acquire() bool {
	if w.max <= 0 {
		w.inflight.Add(1)
		return true
	}
	for {
		in := w.inflight.Load()
		if in >= w.max {
			return false
		}
		if w.inflight.CompareAndSwap(in, in+1) {
			return true
		}
	}
}

// release frees w's slot and wakes queued requests.
func (r *Router) release(w *worker) {
	w.inflight.Add(-1)
	if r.waiters.Load() > 0 {
		r.notifyFree()
	}
}

func (r *Router) notifyFree() {
	r.freeMu.Lock()
	close(r.freed)
	r.freed = make(chan struct{})
	r.freeMu.Unlock()
}

// errQueueTimeout is returned by acquire when no slot frees in time.
var errQueueTimeout = errors.New("queue timeout")

// acquire picks a worker, waiting up to QueueTimeout while all are busy.
func (r *Router) acquire(ctx context.Context, model []byte, tried []*worker) (*worker, pickResult, error) {
	w, res := r.pick(r.table.Load(), model, tried)
	if res != allBusy || r.cfg.QueueTimeout < 0 {
		return w, res, nil
	}
	r.waiters.Add(1)
	defer r.waiters.Add(-1)
	timer := time.NewTimer(r.cfg.QueueTimeout)
	defer timer.Stop()
	for {
		r.freeMu.Lock()
		ch := r.freed
		r.freeMu.Unlock()
		if w, res = r.pick(r.table.Load(), model, tried); res != allBusy {
			return w, res, nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil, allBusy, errQueueTimeout
		case <-ctx.Done():
			return nil, allBusy, ctx.Err()
		}
	}
}

// proxy relays one inference request.
func (r *Router) proxy(w http.ResponseWriter, req *http.Request, completions bool) {
	ctx := req.Context()
	st := r.getState()
	defer r.putState(st)

	if req.ContentLength > r.cfg.MaxBodyBytes {
		r.reject(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "body_too_large",
			fmt.Sprintf("router: request body of %d bytes exceeds the limit of %d", req.ContentLength, r.cfg.MaxBodyBytes))
		return
	}
	if req.ContentLength > 0 {
		st.body.Grow(int(req.ContentLength))
	}
	if _, err := st.body.ReadFrom(io.LimitReader(req.Body, r.cfg.MaxBodyBytes+1)); err != nil {
		r.reject(w, http.StatusBadRequest, "invalid_request_error", "invalid_body", "router: read request body: "+err.Error())
		return
	}
	if int64(st.body.Len()) > r.cfg.MaxBodyBytes {
		r.reject(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "body_too_large",
			fmt.Sprintf("router: request body exceeds the limit of %d bytes", r.cfg.MaxBodyBytes))
		return
	}
	body := st.body.Bytes()
	model, ok := modelField(body)
	if !ok {
		r.reject(w, http.StatusBadRequest, "invalid_request_error", "invalid_request",
			`router: the request body must be a JSON object with a "model" string`)
		return
	}

	var triedBuf [4]*worker
	tried := triedBuf[:0]
	var lastErr error
	for attempt := 0; attempt < r.cfg.MaxAttempts; attempt++ {
		wk, res, err := r.acquire(ctx, model, tried)
		if res != picked {
			if ctx.Err() != nil {
				return
			}
			r.noWorker(w, res, string(model), len(tried), lastErr, err)
			return
		}
		path := wk.chat
		if completions {
			path = wk.compl
		}
		start := time.Now()
		ex, err := wk.up.roundTrip(ctx, path, req.Header, body)
		if err != nil {
			r.release(wk)
			if ctx.Err() != nil {
				return // the client went away
			}
			wk.errs.Add(1)
			if isDialError(err) {
				r.markDown(wk, err)
			}
			lastErr = err
			tried = append(tried, wk)
			continue
		}
		r.relay(ctx, w, ex, wk, start, st.copy)
		return
	}
	r.noWorker(w, noneHealthy, string(model), len(tried), lastErr, nil)
}

// relay copies a worker's response to the client and releases the worker.
func (r *Router) relay(ctx context.Context, w http.ResponseWriter, ex *exchange, wk *worker, start time.Time, buf []byte) {
	resp := ex.resp
	h := w.Header()
	for k, vv := range resp.Header {
		if !hopByHop(k) {
			h[k] = vv
		}
	}
	w.WriteHeader(resp.StatusCode)
	var flusher http.Flusher
	if isEventStream(resp.Header["Content-Type"]) {
		flusher, _ = w.(http.Flusher)
		if flusher != nil {
			flusher.Flush()
		}
	}
	broken := false
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				ex.broken = true // the client went away
				break
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			ex.broken = true
			broken = ctx.Err() == nil
			break
		}
	}
	wk.up.finish(ex)
	wk.latency.Observe(time.Since(start).Seconds())
	wk.served.Add(1)
	if broken || resp.StatusCode >= 500 {
		wk.errs.Add(1)
	}
	r.release(wk)
	if broken {
		// Abort the response so the client sees a failure, never a
		// truncated body passed off as complete.
		panic(http.ErrAbortHandler)
	}
}

// noWorker answers a request no worker could take.
func (r *Router) noWorker(w http.ResponseWriter, res pickResult, model string, tried int, lastErr, waitErr error) {
	switch {
	case res == noSuchModel:
		r.reject(w, http.StatusNotFound, "invalid_request_error", "model_not_found",
			fmt.Sprintf("router: no worker serves model %q; GET /v1/models lists the models served", model))
	case res == allBusy && errors.Is(waitErr, errQueueTimeout):
		w.Header().Set("Retry-After", "1")
		r.reject(w, http.StatusServiceUnavailable, "server_error", "workers_busy",
			fmt.Sprintf("router: every worker serving model %q is at its max concurrency and none freed up within %s; retry later", model, r.cfg.QueueTimeout))
	case res == allBusy:
		w.Header().Set("Retry-After", "1")
		r.reject(w, http.StatusServiceUnavailable, "server_error", "workers_busy",
			fmt.Sprintf("router: every worker serving model %q is at its max concurrency; retry later", model))
	case lastErr != nil:
		r.reject(w, http.StatusBadGateway, "server_error", "worker_unreachable",
			fmt.Sprintf("router: could not reach a worker for model %q (tried %d): %v", model, tried, lastErr))
	default:
		w.Header().Set("Retry-After", "2")
		r.reject(w, http.StatusServiceUnavailable, "server_error", "no_healthy_worker",
			fmt.Sprintf("router: no healthy worker serves model %q right now (all failed their health checks); retry later", model))
	}
}

// reject writes an error the router itself produced and counts it.
func (r *Router) reject(w http.ResponseWriter, status int, typ, code, msg string) {
	r.metrics.rejected(code).Inc()
	openAIError(w, status, typ, code, msg)
}

func openAIError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSONResponse(w, status, ErrorResponse{Error: ErrorDetail{Message: msg, Type: typ, Code: &code}})
}

// isDialError reports whether err is a failure to connect (as opposed to
// a connection that broke), which means the worker is down.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// hopByHop reports whether a canonical header name is connection-specific
// (RFC 9110 section 7.6.1) and so must not be forwarded.
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

func isEventStream(ct []string) bool {
	return len(ct) > 0 && strings.HasPrefix(ct[0], "text/event-stream")
}
