package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/patch"
	"crucible/internal/eval/roleplay"
	"crucible/internal/intake"
	"crucible/internal/kind"
)

// CreateCompetitionRequest is the body of POST /api/v1/competitions.
type CreateCompetitionRequest struct {
	Kind        string `json:"kind" input:"max=32"`
	Title       string `json:"title" input:"max=200"`
	DatasetName string `json:"dataset_name" input:"max=200"`
	// Dataset is the dataset file's text (JSONL for mcq).
	Dataset  string `json:"dataset" input:"text,max=32MiB"`
	Template string `json:"template,omitempty" input:"text,max=64KiB"`
	Mode     string `json:"mode,omitempty" input:"max=32"`
	// MaxTokens bounds generated answers (0: the kind's default).
	MaxTokens int `json:"max_tokens,omitempty" input:"min=0,max=32768"`
	// Roleplay configures a roleplay competition; Dataset may then hold a
	// persona JSONL (empty: the shipped personas).
	Roleplay *roleplay.CompetitionConfig `json:"roleplay,omitempty"`
	// Repos are the git bundles (`git bundle create x --all`; base64 in
	// JSON) of a patch competition's repositories, by the name its tasks'
	// "repo" field uses. Only operator keys may name a repository on the
	// server instead, beneath a root registered with crucible serve --repos.
	Repos map[string][]byte `json:"repos,omitempty" input:"max=16"`
	// PatchPolicy relaxes rules of a patch competition's policy screen,
	// e.g. {"allow": ["pytest-config"]}; absent: every rule applies.
	PatchPolicy *patch.Policy `json:"patch_policy,omitempty"`
}

// MaxRepoBundles bounds the bundles of one patch competition.
const MaxRepoBundles = 16

// CreateSubmissionRequest is the body of POST /api/v1/competitions/{id}/submissions:
// a model (base_url, model) for mcq competitions, a patch (task, patch) for
// code-fix ones.
type CreateSubmissionRequest struct {
	Name    string `json:"name,omitempty" input:"max=200"`
	BaseURL string `json:"base_url,omitempty" input:"max=2048"`
	Model   string `json:"model,omitempty" input:"max=256"`
	// Task and Patch make a code-fix submission: a unified diff for one task.
	Task  string `json:"task,omitempty" input:"max=256"`
	Patch string `json:"patch,omitempty" input:"text,max=8MiB"`
	// APIKey is sent to the model server as a bearer token; it is stored
	// and never returned.
	APIKey string `json:"api_key,omitempty" input:"max=4096"`
}

// ResultsPage is the body of GET /api/v1/submissions/{id}/results.
type ResultsPage struct {
	Offset int `json:"offset"`
	// Total counts the results the public may see (see internal/seal).
	Total   int           `json:"total"`
	Results []eval.Result `json:"results"`
}

func (s *Server) listCompetitions(w http.ResponseWriter, r *http.Request) error {
	list, err := s.cfg.DB.ListCompetitions(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) getCompetition(w http.ResponseWriter, r *http.Request) error {
	c, err := s.cfg.DB.GetCompetition(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) createCompetition(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCompetitionQuota(w, r); err != nil {
		return err
	}
	var req CreateCompetitionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	k, err := s.cfg.Kinds.Parse(req.Kind)
	if err != nil {
		return badRequest("%v", err)
	}
	if req.DatasetName == "" {
		req.DatasetName = "dataset"
	}
	repos, err := s.openBundles(r.Context(), k, req.Repos)
	if err != nil {
		return err
	}
	defer repos.close()
	options, err := kindOptions(map[string]any{"roleplay": req.Roleplay, "patch_policy": req.PatchPolicy})
	if err != nil {
		return err
	}
	spec := kind.Spec{
		Title: req.Title, DatasetName: req.DatasetName, Dataset: []byte(req.Dataset),
		Template: req.Template, Mode: req.Mode, MaxTokens: req.MaxTokens, Options: options,
		ResolveRepo: repos.resolver(s.isOperator(signer(r.Context())), s.cfg.Repos.Roots),
	}
	c, err := s.cfg.Intake.CreateCompetition(r.Context(), intake.NewCompetition{Kind: k, Spec: spec,
		CreatedBy: signer(r.Context()), Bundles: repos.data}, nil)
	if err != nil {
		return intakeError(err)
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (s *Server) listSubmissions(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := s.cfg.DB.GetCompetition(r.Context(), id); err != nil {
		return err
	}
	list, err := s.pub.ListSubmissions(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) createSubmission(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := s.checkSubmissionQuota(w, r); err != nil {
		return err
	}
	var req CreateSubmissionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	// Quotas.EntriesPerKey bounds a key's active entries in one
	// competition; operator keys are exempt.
	limit := s.cfg.Quotas.EntriesPerKey
	if s.exempt(signer(ctx)) {
		limit = 0
	}
	sub, err := s.cfg.Intake.Submit(ctx, intake.Entry{CompetitionID: r.PathValue("id"), Submitter: signer(ctx), Name: req.Name,
		BaseURL: req.BaseURL, Model: req.Model, Task: req.Task, Patch: req.Patch, APIKey: req.APIKey, Limit: limit})
	if err != nil {
		return intakeError(err)
	}
	return writeJSON(w, http.StatusCreated, sub)
}

// intakeError maps the hub service's refusals to HTTP answers with their
// reason as the message; other errors (a missing competition, the
// database) keep their usual mapping.
func intakeError(err error) error {
	switch {
	case errors.Is(err, intake.ErrInvalid):
		return badRequest("%v", err)
	case errors.Is(err, intake.ErrConflict):
		return &httpError{http.StatusConflict, err.Error()}
	}
	return err
}

func (s *Server) leaderboard(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	c, err := s.cfg.DB.GetCompetition(r.Context(), id)
	if err != nil {
		return err
	}
	pol, err := s.pub.Policy(r.Context(), id)
	if err != nil {
		return err
	}
	if pol.Sealed() {
		return &httpError{http.StatusConflict, fmt.Sprintf("%s is a funded pool that has not settled: its public leaderboard is GET /api/v1/pools/%s/leaderboard", id, id)}
	}
	subs, err := s.pub.ListSubmissions(r.Context(), id)
	if err != nil {
		return err
	}
	rows := s.cfg.Kinds.Leaderboard(c, subs)
	if s.cfg.Kinds.RanksModels(c.Kind) && len(rows) > 1 {
		responses, err := s.cfg.DB.CompetitionResponses(r.Context(), id)
		if err != nil {
			return err
		}
		competition.MarkCopies(rows, subs, responses)
	}
	if s.cfg.Kinds.FreshItems(c) {
		return s.freshLeaderboard(w, r, c, rows)
	}
	return writeJSON(w, http.StatusOK, rows)
}

func (s *Server) getSubmission(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.pub.GetSubmission(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sub)
}

func (s *Server) listResults(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.pub.GetSubmission(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	offset, err := intParam(r, "offset", 0, maxOffset)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 50, 1000)
	if err != nil {
		return err
	}
	if limit < 1 {
		return badRequest("limit must be 1..1000")
	}
	results, err := s.pub.Results(r.Context(), sub.ID, offset, limit)
	if err != nil {
		return err
	}
	total, err := s.pub.VisibleResults(r.Context(), sub)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ResultsPage{Offset: offset, Total: total, Results: results})
}

// maxOffset bounds offsets in query strings (far beyond any item count).
const maxOffset = 1<<31 - 1

// intParam reads an integer query parameter in 0..maxValue (def when absent).
func intParam(r *http.Request, name string, def, maxValue int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxValue {
		return 0, badRequest("%s must be an integer in 0..%d, got %q", name, maxValue, v)
	}
	return n, nil
}

func (s *Server) weights(w http.ResponseWriter, r *http.Request) error {
	n := int64(-1)
	if v := r.URL.Query().Get("epoch"); v != "" {
		e, err := strconv.ParseInt(v, 10, 64)
		if err != nil || e < 0 {
			return badRequest("epoch must be a non-negative integer, got %q", v)
		}
		n = e
	}
	rec, err := s.cfg.Epochs.Get(r.Context(), r.PathValue("id"), n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rec)
}
