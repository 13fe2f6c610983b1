package web

// The /label pages are the one part of the UI that changes state: people who
// label for a miner log in with a contributor key (a form; the key is then
// kept in an HttpOnly, SameSite=Strict cookie scoped to /label, Secure when
// the pages are served over https), see their miner's obfuscated copy of the
// next open task, rank it (drag and drop, move buttons or rank selects;
// scores use sliders) and submit. Every page
// works without JavaScript: static/label.js only adds reordering. The
// labeling workflow itself (copies, deadlines by the injected clock,
// de-obfuscation, storage) lives in internal/labeling.

import (
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"crucible/internal/eval/preference"
	"crucible/internal/labeling"
	"crucible/internal/store"
)

// LabelCookie names the cookie that holds a contributor's key.
const LabelCookie = "crucible_label"

// LabelConfig configures the labeling pages.
type LabelConfig struct {
	// Labeling runs the workflow; it is required.
	Labeling *labeling.Service
	// Logger receives errors that become a 500 page (default slog.Default()).
	Logger *slog.Logger
	// SecureCookie marks the key cookie Secure on every response: the
	// operator serves the pages over https (a TLS proxy in front). Without
	// it the cookie is Secure when the request came over TLS.
	SecureCookie bool
	// TrustForwardedProto treats "X-Forwarded-Proto: https" as a request
	// that came over TLS. Set it only behind a proxy that sets the header
	// itself, or a client could claim it.
	TrustForwardedProto bool
}

// Label serves GET /label, POST /label/login, POST /label/logout and
// POST /label/submit. Mount it at "/label" and "/label/".
type Label struct {
	cfg LabelConfig
	ui  *Server
	mux *http.ServeMux
}

// NewLabel parses the labeling templates and builds the routes.
func NewLabel(cfg LabelConfig) (*Label, error) {
	if cfg.Labeling == nil {
		return nil, errors.New("web: LabelConfig.Labeling is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ui := &Server{cfg: Config{Logger: cfg.Logger}, pages: map[string]*template.Template{}}
	for _, page := range []string{"label", "error"} {
		if err := ui.parsePage(page); err != nil {
			return nil, err
		}
	}
	l := &Label{cfg: cfg, ui: ui, mux: http.NewServeMux()}
	l.mux.Handle("GET /label", ui.handle(l.page))
	l.mux.Handle("POST /label/login", ui.handle(l.login))
	l.mux.Handle("POST /label/logout", ui.handle(l.logout))
	l.mux.Handle("POST /label/submit", ui.handle(l.submit))
	l.mux.Handle("/label/", ui.handle(func(w http.ResponseWriter, r *http.Request) error {
		return notFound("There is no page at %s; labeling starts at /label.", r.URL.Path)
	}))
	return l, nil
}

// ServeHTTP serves the labeling pages.
func (l *Label) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	setSecurityHeaders(w.Header())
	l.mux.ServeHTTP(w, r)
}

// labelPage is the data of label.html.
type labelPage struct {
	Page
	// Contributor is set once logged in.
	Contributor *store.ContributorKey
	// Notice reports a success; Problem what went wrong, for people.
	Notice, Problem string
	Task            *labelTask
}

// labelTask is a miner's copy of one task as the form shows it.
type labelTask struct {
	CompetitionID, Title string
	TaskID, Instruction  string
	Score                bool
	Deadline             time.Time
	Left                 string
	Responses            []labelResponse
}

type labelResponse struct {
	ID, Letter, Text string
	// Position is the 1-based shown position, the initial rank.
	Position int
	// Ranks lists 1..n for the rank select.
	Ranks []int
}

func (l *Label) render(w http.ResponseWriter, code int, data labelPage) {
	data.Title = "Label"
	l.ui.render(w, code, "label", data)
}

// contributor returns the logged-in contributor, or nil with a reason
// when the cookie holds no live key.
func (l *Label) contributor(r *http.Request) (*store.ContributorKey, string, error) {
	ck, err := r.Cookie(LabelCookie)
	if err != nil || ck.Value == "" {
		return nil, "", nil
	}
	k, err := l.cfg.Labeling.Authenticate(r.Context(), ck.Value)
	switch {
	case errors.Is(err, labeling.ErrRevoked):
		return nil, "Your contributor key was revoked by its miner. Ask the miner for a new one.", nil
	case errors.Is(err, labeling.ErrBadKey):
		return nil, "Your contributor key is no longer recognised. Log in again.", nil
	case err != nil:
		return nil, "", err
	}
	return &k, "", nil
}

// overTLS reports whether the browser reached the server over https.
func (l *Label) overTLS(r *http.Request) bool {
	return l.cfg.SecureCookie || r.TLS != nil ||
		l.cfg.TrustForwardedProto && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (l *Label) setKeyCookie(w http.ResponseWriter, r *http.Request, key string) {
	c := &http.Cookie{Name: LabelCookie, Value: key, Path: "/label", HttpOnly: true, Secure: l.overTLS(r), SameSite: http.SameSiteStrictMode}
	if key == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

func (l *Label) page(w http.ResponseWriter, r *http.Request) error {
	k, reason, err := l.contributor(r)
	if err != nil {
		return err
	}
	if k == nil {
		if reason != "" {
			l.setKeyCookie(w, r, "")
		}
		l.render(w, http.StatusOK, labelPage{Problem: reason})
		return nil
	}
	data := labelPage{Contributor: k}
	if done := r.URL.Query().Get("done"); done != "" {
		data.Notice = fmt.Sprintf("Thank you: your answer to task %s was recorded.", done)
	}
	return l.withNext(w, r, http.StatusOK, data)
}

// withNext renders data with the contributor's next task, if any.
func (l *Label) withNext(w http.ResponseWriter, r *http.Request, code int, data labelPage) error {
	a, err := l.cfg.Labeling.Next(r.Context(), *data.Contributor)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err == nil {
		data.Task = l.taskOf(a)
	}
	l.render(w, code, data)
	return nil
}

func (l *Label) taskOf(a labeling.Assignment) *labelTask {
	v := a.View
	t := &labelTask{CompetitionID: a.CompetitionID, Title: a.Title, TaskID: v.TaskID, Instruction: v.Instruction,
		Score: v.Criteria == preference.CriteriaScore, Deadline: v.Deadline, Left: left(v.Deadline.Sub(l.cfg.Labeling.Now()))}
	n := len(v.Responses)
	ranks := make([]int, n)
	for i := range ranks {
		ranks[i] = i + 1
	}
	for i, resp := range v.Responses {
		t.Responses = append(t.Responses, labelResponse{ID: resp.ID, Letter: string(rune('A' + i)), Text: resp.Text, Position: i + 1, Ranks: ranks})
	}
	return t
}

// left says how long until a deadline, roughly.
func left(d time.Duration) string {
	switch {
	case d <= 0:
		return "closed"
	case d < time.Minute:
		return "less than a minute left"
	case d < 2*time.Hour:
		return fmt.Sprintf("%d minutes left", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours left", int(d.Hours()))
	}
	return fmt.Sprintf("%d days left", int(d.Hours()/24))
}

func (l *Label) login(w http.ResponseWriter, r *http.Request) error {
	key := strings.TrimSpace(r.PostFormValue("key"))
	_, err := l.cfg.Labeling.Authenticate(r.Context(), key)
	switch {
	case errors.Is(err, labeling.ErrRevoked):
		l.render(w, http.StatusUnauthorized, labelPage{Problem: "That contributor key was revoked by its miner. Ask the miner for a new one."})
		return nil
	case errors.Is(err, labeling.ErrBadKey):
		l.render(w, http.StatusUnauthorized, labelPage{Problem: "That contributor key is not recognised. Keys start with " +
			labeling.KeyPrefix + "; your miner makes them with `crucible keys contributor new`."})
		return nil
	case err != nil:
		return err
	}
	l.setKeyCookie(w, r, key)
	http.Redirect(w, r, "/label", http.StatusSeeOther)
	return nil
}

func (l *Label) logout(w http.ResponseWriter, r *http.Request) error {
	l.setKeyCookie(w, r, "")
	http.Redirect(w, r, "/label", http.StatusSeeOther)
	return nil
}

func (l *Label) submit(w http.ResponseWriter, r *http.Request) error {
	k, reason, err := l.contributor(r)
	if err != nil {
		return err
	}
	if k == nil {
		if reason == "" {
			reason = "Log in with your contributor key first."
		}
		l.setKeyCookie(w, r, "")
		l.render(w, http.StatusUnauthorized, labelPage{Problem: reason})
		return nil
	}
	ctx := r.Context()
	compID, taskID := r.PostFormValue("competition"), r.PostFormValue("task")
	cp, err := l.cfg.Labeling.Copy(ctx, compID, taskID, k.Miner)
	if errors.Is(err, store.ErrNotFound) {
		return l.withNext(w, r, http.StatusNotFound, labelPage{Contributor: k, Problem: "That task is not one of your miner's tasks."})
	}
	if err != nil {
		return err
	}
	field := "rank_"
	if cp.Criteria == preference.CriteriaScore {
		field = "score_"
	}
	values := make([]int, len(cp.Responses))
	for i, resp := range cp.Responses {
		v, err := strconv.Atoi(r.PostFormValue(field + resp.ID))
		if err != nil {
			return l.withNext(w, r, http.StatusBadRequest, labelPage{Contributor: k,
				Problem: fmt.Sprintf("Response %c has no %s; give every response one.", 'A'+i, strings.TrimSuffix(field, "_"))})
		}
		values[i] = v
	}
	_, err = l.cfg.Labeling.Submit(ctx, *k, compID, taskID, values)
	var late *labeling.LateError
	switch {
	case err == nil:
		http.Redirect(w, r, "/label?done="+taskID, http.StatusSeeOther)
		return nil
	case errors.As(err, &late):
		return l.withNext(w, r, http.StatusConflict, labelPage{Contributor: k, Problem: fmt.Sprintf(
			"Too late: the deadline of task %s passed at %s. Your answer was not recorded.", taskID, late.Deadline.UTC().Format("2006-01-02 15:04 MST"))})
	case errors.Is(err, store.ErrAlreadyRated):
		return l.withNext(w, r, http.StatusConflict, labelPage{Contributor: k, Problem: fmt.Sprintf(
			"Task %s was already answered for your miner; your answer was not recorded.", taskID)})
	case errors.Is(err, labeling.ErrInvalid):
		msg := "Each rank from 1 to " + strconv.Itoa(len(values)) + " must be used exactly once."
		if cp.Criteria == preference.CriteriaScore {
			msg = fmt.Sprintf("Scores must be between %d and %d.", preference.MinScore, preference.MaxScore)
		}
		return l.withNext(w, r, http.StatusBadRequest, labelPage{Contributor: k, Problem: msg + " Nothing was recorded; try again."})
	}
	return err
}
