package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"crucible/internal/api/apiv1"
	"crucible/internal/identity"
	"crucible/internal/intake"
	"crucible/internal/kind"
	"crucible/internal/store"
)

// MaxRepoBundles bounds the bundles of one patch competition.
const MaxRepoBundles = 16

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
	var req apiv1.CreateCompetitionRequest
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
	options, err := kindOptions(map[string]any{"roleplay": req.Roleplay, "patch_policy": req.PatchPolicy, "task": req.Task, "entries": req.Entries})
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

// listSubmissions serves one page of a competition's submissions in
// commit order: ?limit= (1..store.MaxSubmissionsPage, default the most)
// and ?after= (the previous page's last id). A full page carries a Link
// header to the next one.
func (s *Server) listSubmissions(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := s.cfg.DB.GetCompetition(r.Context(), id); err != nil {
		return err
	}
	limit, err := intParam(r, "limit", store.MaxSubmissionsPage, store.MaxSubmissionsPage)
	if err != nil {
		return err
	}
	if limit < 1 {
		return badRequest("limit must be 1..%d", store.MaxSubmissionsPage)
	}
	after := r.URL.Query().Get("after")
	if len(after) > maxCursor {
		return badRequest("after must be a submission id")
	}
	list, err := s.pub.ListSubmissionsPage(r.Context(), id, after, limit)
	if err != nil {
		return err
	}
	if len(list) == limit {
		next := url.Values{"after": {list[len(list)-1].ID}, "limit": {strconv.Itoa(limit)}}
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.Path, next.Encode()))
	}
	return writeJSON(w, http.StatusOK, list)
}

// maxCursor bounds an ?after= cursor (ids are far shorter).
const maxCursor = 64

func (s *Server) createSubmission(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	// The nonce is burned by the intake with the submission (authenticate
	// left it, burnsOwnNonce); a request that never reaches the intake
	// burns it here.
	nonce, expires := s.verifier.NonceOf(r.Header)
	use := &store.NonceUse{KeyID: signer(ctx), Nonce: nonce, Expires: expires}
	var req apiv1.CreateSubmissionRequest
	if err := decodeJSON(r, &req); err != nil {
		return s.burnThen(ctx, use, err)
	}
	// Quotas.EntriesPerKey bounds a key's active entries in one
	// competition; operator keys are exempt.
	limit := s.cfg.Quotas.EntriesPerKey
	if s.exempt(signer(ctx)) {
		limit = 0
	}
	// The key's quota is checked in the submission's transaction
	// (intake.Entry.Quota): a check here, before it, would let a key's
	// concurrent submissions all pass on one count.
	quota := s.submissionQuota(signer(ctx))
	var art *intake.ArtifactEntry
	if a := req.Artifact; a != nil {
		art = &intake.ArtifactEntry{Repo: a.Repo, Revision: a.Revision, Path: a.Path, URL: a.URL, Digest: a.Digest}
	}
	sub, err := s.cfg.Intake.Submit(ctx, intake.Entry{CompetitionID: r.PathValue("id"), Submitter: signer(ctx), Name: req.Name,
		BaseURL: req.BaseURL, Model: req.Model, Task: req.Task, Patch: req.Patch, Predictions: req.Predictions, Artifact: art,
		APIKey: req.APIKey, Limit: limit, Quota: quota, Nonce: use})
	if errors.Is(err, identity.ErrUnauthorized) {
		return &httpError{http.StatusUnauthorized, err.Error()}
	}
	if refusal := quotaRefusal(w, err); refusal != nil {
		return refusal
	}
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

// leaderboard serves a competition's public ranking from the versioned
// cache (boards.go), with an ETag for conditional reads; ?offset= and
// ?limit= serve a page of its rows.
func (s *Server) leaderboard(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	// One query, shared with concurrent readers of the competition that
	// arrive before it starts: the competition, its seal and its
	// leaderboard version. A cached read makes no other.
	st := s.states.read(r.Context(), id, func(ctx context.Context) boardState {
		c, pol, version, err := s.pub.LeaderboardState(ctx, id)
		return boardState{c, pol, version, err}
	})
	c, pol, version, err := st.c, st.pol, st.version, st.err
	if err != nil {
		return err
	}
	if pol.Sealed() {
		return &httpError{http.StatusConflict, fmt.Sprintf("%s is a funded pool that has not settled: its public leaderboard is GET /api/v1/pools/%s/leaderboard", id, id)}
	}
	offset, limit, paged, err := boardPage(r)
	if err != nil {
		return err
	}
	if s.cfg.Kinds.FreshItems(c) {
		rows, err := s.rankedRows(r.Context(), c)
		if err != nil {
			return err
		}
		if paged {
			rows = pageOf(rows, offset, limit)
		}
		return s.freshLeaderboard(w, r, c, rows)
	}
	b, err := s.cachedLeaderboard(r.Context(), c, version)
	if err != nil {
		return err
	}
	if paged {
		if b, err = s.boards.page(c.ID, b, offset, limit); err != nil {
			return err
		}
	}
	return writeBoard(w, r, b)
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
	return writeJSON(w, http.StatusOK, apiv1.ResultsPage{Offset: offset, Total: total, Results: results})
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
