package api

import (
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"crucible/internal/api/apiv1"
	"crucible/internal/competition"
	"crucible/internal/inference"
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
	options, err := kindOptions(map[string]any{"roleplay": req.Roleplay, "patch_policy": req.PatchPolicy})
	if err != nil {
		return err
	}
	prep, err := s.cfg.Kinds.Prepare(r.Context(), k, kind.Spec{
		Title: req.Title, DatasetName: req.DatasetName, Dataset: []byte(req.Dataset),
		Template: req.Template, Mode: req.Mode, MaxTokens: req.MaxTokens, Options: options,
		ResolveRepo: repos.resolver(s.isOperator(signer(r.Context())), s.cfg.Repos.Roots),
	})
	if err != nil {
		return badRequest("%v", err)
	}
	for _, b := range repos.used {
		if _, err := s.cfg.DB.PutRepoBundle(r.Context(), b.Data, signer(r.Context()), s.cfg.Clock.Now().UTC()); err != nil {
			return err
		}
	}
	c := competition.Competition{
		ID: store.NewID("c"), Kind: k, Title: strings.TrimSpace(req.Title), Config: prep.Config,
		DatasetName: req.DatasetName, DatasetDigest: prep.DatasetDigest, Items: len(prep.Items),
		CreatedBy: signer(r.Context()), CreatedAt: s.cfg.Clock.Now().UTC(),
	}
	if err := s.cfg.DB.CreateCompetition(r.Context(), c, prep.Items); err != nil {
		return err
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
	var req apiv1.CreateSubmissionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	c, err := s.cfg.DB.GetCompetition(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	// A pool's entrants are evaluated within its budget and only while it is
	// open; a submission here would be evaluated in full at any time.
	if _, err := s.cfg.DB.GetPool(ctx, c.ID); err == nil {
		return &httpError{http.StatusConflict, fmt.Sprintf("%s is a funded pool: enter it while it is open with POST /api/v1/pools/%s/entries (crucible pool join)", c.ID, c.ID)}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	now := s.cfg.Clock.Now().UTC()
	sub := competition.Submission{ID: store.NewID("s"), CompetitionID: c.ID, Name: req.Name, Submitter: signer(ctx),
		CommittedAt: now, State: competition.StateQueued, ItemsTotal: c.Items, UpdatedAt: now}
	switch s.cfg.Kinds.Entry(c.Kind) {
	case kind.EntryNone:
		if s.cfg.Kinds.Labeled(c.Kind) {
			return badRequest("%s is a %s competition: miners take copies and contributors rank them at /label; it takes no submissions", c.ID, c.Kind)
		}
		return badRequest("%s is a %s competition: it takes no submissions", c.ID, c.Kind)
	case kind.EntryPatch:
		items, err := s.cfg.DB.CompetitionItems(ctx, c.ID)
		if err != nil {
			return err
		}
		sub.Patch = &competition.PatchSpec{Task: req.Task, Diff: req.Patch}
		if err := s.cfg.Kinds.ValidateEntry(c, items, sub); err != nil {
			return badRequest("task: %v", err)
		}
		if strings.TrimSpace(req.Patch) == "" {
			return badRequest("patch is required: a unified diff against the task's base commit")
		}
		sub.Digest, sub.ItemsTotal = competition.PatchDigest(*sub.Patch), 1
		if sub.Name == "" {
			sub.Name = req.Task
		}
	default:
		base, err := inference.NormalizeBaseURL(req.BaseURL)
		if err != nil {
			return badRequest("base_url: %v", err)
		}
		model := strings.TrimSpace(req.Model)
		if model == "" {
			return badRequest("model is required: the model name the server expects, as in its /v1/models")
		}
		if sub.Name == "" {
			sub.Name = model
		}
		sub.Model = competition.ModelSpec{BaseURL: base, Model: model}
		sub.Digest = competition.ModelDigest(sub.Model)
	}
	// The entry rules are checked and the submission made in one
	// transaction holding the competition's lock, so simultaneous entries
	// of one model cannot both get in.
	err = s.cfg.DB.InTx(ctx, func(tx *sql.Tx) error {
		if s.cfg.Kinds.RanksModels(c.Kind) {
			if err := s.checkEntry(ctx, tx, c.ID, sub); err != nil {
				return err
			}
		}
		if err := s.cfg.DB.CreateSubmissionTx(ctx, tx, sub, req.APIKey); err != nil {
			return err
		}
		return s.cfg.Queue.EnqueueEvaluationTx(ctx, tx, sub.ID)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, sub)
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
