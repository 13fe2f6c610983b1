// Package api owns the REST interface under /api/v1 (JSON in and out), its
// OpenAPI document, /healthz and /metrics. Handlers decode input, call the
// services (internal/intake creates every competition and submission), the
// store and the kind registry, and encode the answer; every state-changing call
// must carry a valid request signature (internal/identity). The API must never
// be imported by the store, the job queue or eval kinds.
package api

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"crucible/internal/clock"
	"crucible/internal/consensus"
	"crucible/internal/eval/patch"
	"crucible/internal/identity"
	"crucible/internal/intake"
	"crucible/internal/kind"
	"crucible/internal/pool"
	"crucible/internal/seal"
	"crucible/internal/store"
	"crucible/internal/weights"
)

// MaxBodyBytes bounds a request body: the limit of the routes that carry a
// dataset, the largest (see guard.go for the others).
const MaxBodyBytes = 64 << 20

//go:embed openapi.json
var openAPIDoc []byte

// Config configures the API server.
type Config struct {
	DB       *store.DB
	Pools    *pool.Service
	Epochs   *weights.Service
	Clock    clock.Clock
	Registry *prometheus.Registry
	Logger   *slog.Logger

	// Validators runs registration, stakes, weights and consensus epochs.
	Validators *consensus.Service

	// Quotas bound what one key may create (zero: no limits).
	Quotas Quotas
	// Intake creates competitions and submissions (required): handlers
	// decode a request, call it and encode its answer.
	Intake *intake.Service
	// HubID names this hub in request signatures (store.DB.HubID); a
	// request signed for another hub is refused. Required.
	HubID string
	// Kinds are the competition kinds this hub runs: every kind-specific
	// decision (preparing, entry shape, ranking, epochs) is asked of them.
	Kinds *kind.Registry
	// Repos holds the repository roots operator keys may name in patch
	// tasks (none: every repository must be uploaded as a bundle).
	Repos patch.Repos
}

// Server serves the API.
type Server struct {
	cfg Config
	// pub is the store as the public sees it: every GET reads submissions,
	// results and items through it (see internal/seal).
	pub      seal.Public
	boards   boardCache
	states   stateReads
	verifier *identity.Verifier
	mux      *http.ServeMux
	requests *prometheus.CounterVec
}

// route is one API endpoint; the table is also what the OpenAPI test checks.
type route struct {
	method, pattern string
	signed          bool
	handle          func(s *Server, w http.ResponseWriter, r *http.Request) error
}

var routes = []route{
	{"GET", "/api/v1/hub", false, (*Server).hub},
	{"GET", "/api/v1/competitions", false, (*Server).listCompetitions},
	{"POST", "/api/v1/competitions", true, (*Server).createCompetition},
	{"GET", "/api/v1/competitions/{id}", false, (*Server).getCompetition},
	{"GET", "/api/v1/competitions/{id}/submissions", false, (*Server).listSubmissions},
	{"POST", "/api/v1/competitions/{id}/submissions", true, (*Server).createSubmission},
	{"GET", "/api/v1/competitions/{id}/leaderboard", false, (*Server).leaderboard},
	{"GET", "/api/v1/competitions/{id}/tasks", false, (*Server).listTasks},
	{"GET", "/api/v1/competitions/{id}/prompts", false, (*Server).listPrompts},
	{"GET", "/api/v1/competitions/{id}/tasks/{task}/tree", false, (*Server).taskTree},
	{"GET", "/api/v1/competitions/{id}/weights", false, (*Server).weights},
	{"GET", "/api/v1/submissions/{id}", false, (*Server).getSubmission},
	{"GET", "/api/v1/submissions/{id}/results", false, (*Server).listResults},
	{"GET", "/api/v1/pools", false, (*Server).listPools},
	{"POST", "/api/v1/pools", true, (*Server).createPool},
	{"GET", "/api/v1/pools/{id}", false, (*Server).getPool},
	{"POST", "/api/v1/pools/{id}/entries", true, (*Server).joinPool},
	{"GET", "/api/v1/pools/{id}/leaderboard", false, (*Server).poolLeaderboard},
	{"POST", "/api/v1/pools/{id}/settle", true, (*Server).settlePool},
	{"GET", "/api/v1/ledger/balances", false, (*Server).balances},
	{"GET", "/api/v1/ledger/history", false, (*Server).history},
	{"POST", "/api/v1/ledger/deposits", true, (*Server).deposit},
	{"POST", "/api/v1/allocate", false, (*Server).allocate},
}

// New builds the API handler. It panics without cfg.HubID: a server that
// accepted signatures for any hub would accept requests replayed from others.
func New(cfg Config) *Server {
	if cfg.HubID == "" {
		panic("api: Config.HubID is required (use store.DB.HubID)")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:      cfg,
		pub:      seal.Public{DB: cfg.DB},
		verifier: &identity.Verifier{Audience: cfg.HubID, Clock: cfg.Clock, Nonces: cfg.DB},
		mux:      http.NewServeMux(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crucible_api_requests_total",
			Help: "API requests by route pattern and status code.",
		}, []string{"route", "code"}),
	}
	cfg.Registry.MustRegister(s.requests)
	for _, rt := range slices.Concat(routes, validatorRoutes, labelRoutes, roleplayRoutes) {
		s.mux.Handle(rt.method+" "+rt.pattern, s.wrap(rt))
	}
	s.mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPIDoc)
	})
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &httpError{http.StatusNotFound, fmt.Sprintf("no API endpoint %s %s (see /api/v1/openapi.json)", r.Method, r.URL.Path)})
	})
	return s
}

// Handler returns the HTTP handler; Mount adds other handlers (the web UI).
// Every request's URL is checked first (see checkURL), for the API and the
// mounted pages alike.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkURL(r.URL); err != nil {
			writeError(w, &httpError{http.StatusBadRequest, err.Error()})
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

// Mount serves h at pattern beside the API.
func (s *Server) Mount(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

type signerKey struct{}

// signer returns the verified key id of a signed request.
func signer(ctx context.Context) string {
	id, _ := ctx.Value(signerKey{}).(string)
	return id
}

// httpError is an error with the status code to answer it with.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() { s.requests.WithLabelValues(rt.pattern, strconv.Itoa(rec.code)).Inc() }()
		var body []byte
		var err error
		if rt.signed {
			var keyID string
			keyID, body, err = s.authenticate(w, r, rt)
			r = r.WithContext(context.WithValue(r.Context(), signerKey{}, keyID))
		} else {
			body, err = readBody(w, r, rt)
		}
		if err == nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			err = rt.handle(s, rec, r)
		}
		if err != nil {
			var he *httpError
			switch {
			case errors.As(err, &he):
			case errors.Is(err, store.ErrNotFound):
				he = &httpError{http.StatusNotFound, err.Error()}
			default:
				s.cfg.Logger.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
				he = &httpError{http.StatusInternalServerError, "internal error: " + err.Error()}
			}
			writeError(rec, he)
		}
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeError(w http.ResponseWriter, he *httpError) {
	_ = writeJSON(w, he.code, map[string]string{"error": he.msg})
}

// decodeJSON decodes a request body into v and checks every field of it
// against its input limits (see checkInput).
func decodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body: %v", err)}
	}
	if err != nil {
		return badRequest("request body: %v", err)
	}
	if !utf8.Valid(body) {
		return badRequest("request body is not valid UTF-8 (first bad byte at offset %d)", invalidUTF8At(body))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body is not the expected JSON: %v", err)
	}
	return checkInput(v)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.DB.SQL().PingContext(ctx); err != nil {
		_ = writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy", "error": err.Error()})
		return
	}
	_ = writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "database": string(s.cfg.DB.Dialect())})
}
