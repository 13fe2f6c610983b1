// Package web owns Crucible's server-rendered web UI: the competitions list,
// a competition's page (rules, dataset, leaderboard with interval bars, a
// chart of scores over time), and a submission's page (state, live progress,
// score card, per-item results). Pages are html/template with inline SVG
// charts drawn on the server, so every page reads without JavaScript; htmx
// (vendored under static/, embedded with go:embed) only refreshes the live
// progress fragment.
//
// The UI only reads. Anything that changes state goes through the signed
// REST API (internal/api) and the CLI. This package must never import the
// API or the job queue, and takes nothing from eval kinds but documented
// defaults (the mcq prompt template); it reads through the Store interface,
// which *store.DB implements.
package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/kind"
	"crucible/internal/labeling"
	"crucible/internal/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// favicon is served at /favicon.ico, where browsers look without a <link>.
//
//go:embed static/favicon.svg
var favicon []byte

// ResultsPerPage is the number of item results on one page of a submission.
const ResultsPerPage = 20

// Store is what the UI reads: seal.Public implements it, so every page
// shows sealed data (no card of an open pool's entrant, no result of a
// private item) and cannot be handed the raw store by mistake (*store.DB
// lacks VisibleResults). A missing row is an error wrapping store.ErrNotFound.
type Store interface {
	ListCompetitions(ctx context.Context) ([]competition.Competition, error)
	GetCompetition(ctx context.Context, id string) (competition.Competition, error)
	ListSubmissions(ctx context.Context, competitionID string) ([]competition.Submission, error)
	GetSubmission(ctx context.Context, id string) (competition.Submission, error)
	Results(ctx context.Context, submissionID string, offset, limit int) ([]eval.Result, error)
	// VisibleResults counts the results of sub that Results pages over.
	VisibleResults(ctx context.Context, sub competition.Submission) (int, error)
	// CompetitionResponseHashes returns the hashes of the non-empty raw
	// responses by submission and item, which mark copies on a model
	// competition's leaderboard.
	CompetitionResponseHashes(ctx context.Context, competitionID string) (map[string]map[int]string, error)
}

// Config configures the web UI.
type Config struct {
	// Store is read for every page. If it also implements PoolStore,
	// EpochStore and ValidatorStore (as *store.DB does), the UI shows funded
	// pools, model-competition epochs and validator consensus.
	Store Store
	// Clock tells a pool's phase and budget (default the wall clock).
	Clock clock.Clock
	// Logger receives errors that become a 500 page (default slog.Default()).
	Logger *slog.Logger
	// PollInterval is how often a submission page refreshes its progress
	// while the evaluation runs, in htmx trigger syntax (default "1s").
	PollInterval string
	// Kinds answer every kind-specific question of a page (rules, ranking,
	// epochs, tasks, rewards).
	Kinds *kind.Registry
	// Labeling, when set, scores preference competitions' closed tasks for
	// their pages (contributors' agreement, task progress).
	Labeling *labeling.Service
	// Leaderboards ranks a competition that is not a pool. The hub passes
	// the API's versioned cache, so a page view reads the ranking the API
	// serves instead of computing it again; the default computes it on
	// every view (for a UI without an API beside it).
	Leaderboards Leaderboards
}

// Leaderboards returns a competition's public leaderboard rows (ranked by
// its kind, copies marked on a model competition's). The rows may be
// shared: the UI does not modify them.
type Leaderboards interface {
	LeaderboardRows(ctx context.Context, c competition.Competition) ([]competition.Row, error)
}

// computedBoards is the default Config.Leaderboards: the kind's ranking,
// copies marked on a model competition's (see competition.MarkCopies),
// computed on every call.
type computedBoards struct {
	store Store
	kinds *kind.Registry
}

func (cb computedBoards) LeaderboardRows(ctx context.Context, c competition.Competition) ([]competition.Row, error) {
	subs, err := cb.store.ListSubmissions(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	rows := cb.kinds.Leaderboard(c, subs)
	if cb.kinds.RanksModels(c.Kind) && len(rows) > 1 {
		hashes, err := cb.store.CompetitionResponseHashes(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		competition.MarkCopies(rows, subs, hashes)
	}
	return rows, nil
}

// Server serves the UI. Mount it at "/" beside the API: it answers
// GET /, /c/{id} (a pool's page when the competition is a pool),
// /c/{id}/leaderboard.csv (the leaderboard the page shows, as CSV),
// /c/{id}/tasks (a code-fix competition's tasks), /c/{id}/fresh/{n} (a
// fresh-items epoch, sealed until it ends), /favicon.ico, /s/{id},
// /s/{id}/progress, /epochs, /epochs/{id} and /static/, and 404 otherwise.
type Server struct {
	cfg   Config
	mux   *http.ServeMux
	pages map[string]*template.Template
}

// New parses the templates and builds the UI's routes.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("web: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Leaderboards == nil {
		cfg.Leaderboards = computedBoards{cfg.Store, cfg.Kinds}
	}
	if cfg.PollInterval == "" {
		cfg.PollInterval = "1s"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), pages: map[string]*template.Template{}}
	for _, page := range []string{"home", "competition", "submission", "error", "tasks", "freshepoch"} {
		if err := s.parsePage(page); err != nil {
			return nil, err
		}
	}
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, err
	}
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	s.mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	s.mux.Handle("GET /{$}", s.handle(s.home))
	s.mux.Handle("GET /c/{id}", s.handle(s.competition))
	s.mux.Handle("GET /c/{id}/tasks", s.handle(s.tasks))
	s.mux.Handle("GET /c/{id}/fresh/{n}", s.handle(s.freshEpoch))
	s.mux.Handle("GET /c/{id}/leaderboard.csv", s.handle(s.leaderboardCSV))
	s.mux.Handle("GET /favicon.ico", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		_, _ = w.Write(favicon)
	}))
	s.mux.Handle("GET /s/{id}", s.handle(s.submission))
	s.mux.Handle("GET /s/{id}/progress", s.handle(s.progress))
	if err := s.addPoolAndEpochPages(); err != nil {
		return nil, err
	}
	s.mux.Handle("/", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return notFound("There is no page at %s.", r.URL.Path)
	}))
	return s, nil
}

// ServeHTTP serves the UI.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	s.mux.ServeHTTP(w, r)
}

// pageError is an error page with its status code and a message for people.
type pageError struct {
	code int
	msg  string
}

func (e *pageError) Error() string { return e.msg }

func notFound(format string, args ...any) error {
	return &pageError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

// handle turns a handler's error into an error page: store.ErrNotFound is a
// 404, a pageError has its own code, anything else is logged and a 500.
func (s *Server) handle(fn func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if err == nil {
			return
		}
		var pe *pageError
		switch {
		case errors.As(err, &pe):
		case errors.Is(err, store.ErrNotFound):
			pe = &pageError{http.StatusNotFound, "Not found: " + err.Error() + "."}
		default:
			s.cfg.Logger.Error("web page failed", "method", r.Method, "path", r.URL.Path, "err", err)
			pe = &pageError{http.StatusInternalServerError, "Something went wrong on the server; the error is in its log."}
		}
		s.render(w, pe.code, "error", errorPage{Page: Page{Title: http.StatusText(pe.code)}, Code: pe.code, Message: pe.msg})
	})
}

// render executes a page template into a buffer first, so that a template
// error never leaves half a page behind.
func (s *Server) render(w http.ResponseWriter, code int, page string, data any) {
	s.renderTemplate(w, code, page, "layout.html", data)
}

func (s *Server) renderTemplate(w http.ResponseWriter, code int, page, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&buf, name, data); err != nil {
		s.cfg.Logger.Error("web template failed", "page", page, "template", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	comps, err := s.cfg.Store.ListCompetitions(ctx)
	if err != nil {
		return err
	}
	data := homePage{Page: Page{Title: "Competitions"}}
	for _, c := range comps {
		subs, err := s.cfg.Store.ListSubmissions(ctx, c.ID)
		if err != nil {
			return err
		}
		data.Competitions = append(data.Competitions, s.summarize(c, subs))
	}
	return s.renderHome(w, r, data)
}

func (s *Server) competition(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.cfg.Store.GetCompetition(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if p, isPool, err := s.lookupPool(ctx, c.ID); err != nil {
		return err
	} else if isPool {
		return s.poolPage(w, r, c, p)
	}
	subs, err := s.cfg.Store.ListSubmissions(ctx, c.ID)
	if err != nil {
		return err
	}
	b, err := s.competitionBoard(r, c, subs)
	if err != nil {
		return err
	}
	data := competitionPage{
		Page:        Page{Title: c.Title, APIPath: "/api/v1/competitions/" + c.ID},
		Competition: c,
		Summary:     s.summarize(c, subs),
		Rules:       s.rulesOf(c),
		Board:       b,
		BarTicks:    barTicks(),
		Chart:       scoreChart(subs),
	}
	if data.Reward, err = s.preferenceReward(ctx, c); err != nil {
		return err
	}
	if data.Standings, err = s.preferenceStandings(ctx, c); err != nil {
		return err
	}
	data.Labeled = s.cfg.Kinds.Labeled(c.Kind)
	if data.WinRates, err = s.winRates(ctx, c, b.rankOrder()); err != nil {
		return err
	}
	for _, r := range b.Rows {
		data.AnyTie = data.AnyTie || r.Tie
	}
	for _, sub := range subs {
		data.Submissions = append(data.Submissions, submissionRow(sub))
	}
	if data.Fresh, err = s.fresh(ctx, c); err != nil {
		return err
	}
	if data.Fresh != nil {
		flagged := map[string]bool{}
		for _, r := range data.Fresh.Contamination {
			flagged[r.SubmissionID] = r.Flagged
		}
		for i := range data.Board.Rows {
			data.Board.Rows[i].Contaminated = flagged[data.Board.Rows[i].SubmissionID]
		}
	}
	s.render(w, http.StatusOK, "competition", data)
	return nil
}

func (s *Server) submission(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sub, err := s.cfg.Store.GetSubmission(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	c, err := s.cfg.Store.GetCompetition(ctx, sub.CompetitionID)
	if err != nil {
		return err
	}
	pageNum := 1
	if v := r.URL.Query().Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return &pageError{http.StatusBadRequest, fmt.Sprintf("page must be a whole number from 1, got %q.", v)}
		}
		pageNum = n
	}
	visible, err := s.cfg.Store.VisibleResults(ctx, sub)
	if err != nil {
		return err
	}
	pager := newPager(pageNum, visible, ResultsPerPage)
	results, err := s.cfg.Store.Results(ctx, sub.ID, (pager.Page-1)*ResultsPerPage, ResultsPerPage)
	if err != nil {
		return err
	}
	data := submissionPage{
		Page:        Page{Title: sub.Name, APIPath: "/api/v1/submissions/" + sub.ID},
		Competition: c,
		Submission:  sub,
		Progress:    s.progressOf(c, sub),
		Pager:       pager,
		Results:     results,
	}
	if sub.Patch != nil {
		data.Patch = patchViewOf(results)
		data.Diff, data.DiffMore = diffLines(sub.Patch.Diff)
	}
	data.Items = s.itemViews(c, results)
	s.render(w, http.StatusOK, "submission", data)
	return nil
}

// progress serves the live part of a submission page; htmx swaps it in
// place every PollInterval until the submission is final.
func (s *Server) progress(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.cfg.Store.GetSubmission(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	c, err := s.cfg.Store.GetCompetition(r.Context(), sub.CompetitionID)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	view := s.progressOf(c, sub)
	view.JustFinished = sub.State.Final()
	s.renderTemplate(w, http.StatusOK, "submission", "progress", view)
	return nil
}

func (s *Server) progressOf(c competition.Competition, sub competition.Submission) progressView {
	return progressView{Submission: sub, Poll: !sub.State.Final(), PollInterval: s.cfg.PollInterval,
		CountsCorrect: s.cfg.Kinds.CountsCorrect(c)}
}

// rulesOf lists a competition's configuration as label/value pairs: as its
// kind describes it (defaults spelled out), else in the order the JSON has
// them.
func (s *Server) rulesOf(c competition.Competition) []rule {
	if described := s.cfg.Kinds.Rules(c); described != nil {
		rules := make([]rule, len(described))
		for i, r := range described {
			rules[i] = rule(r)
		}
		return rules
	}
	var rules []rule
	var raw map[string]any
	if err := json.Unmarshal(c.Config, &raw); err != nil {
		return []rule{{Label: "Configuration", Value: string(c.Config), Block: true}}
	}
	for _, k := range sortedKeys(raw) {
		rules = append(rules, rule{Label: strings.ReplaceAll(k, "_", " "), Value: plainValue(raw[k])})
	}
	return rules
}

// plainValue writes a decoded JSON value for people: strings without
// quotes, an object as "key value" pairs joined by " · " (one level deep,
// in key order), anything else as JSON.
func plainValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		parts := make([]string, 0, len(v))
		for _, k := range sortedKeys(v) {
			b, _ := json.Marshal(v[k])
			parts = append(parts, strings.ReplaceAll(k, "_", " ")+" "+strings.Trim(string(b), `"`))
		}
		return strings.Join(parts, " · ")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// parsePage parses one page template with the layout, the shared fragments
// and any extra template files the page uses.
func (s *Server) parsePage(page string, extra ...string) error {
	files := []string{"templates/layout.html", "templates/fragments.html", "templates/" + page + ".html"}
	for _, e := range extra {
		files = append(files, "templates/"+e+".html")
	}
	t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, files...)
	if err != nil {
		return fmt.Errorf("web: parse %s template: %w", page, err)
	}
	s.pages[page] = t
	return nil
}
