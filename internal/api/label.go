package api

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"

	"crucible/internal/api/apiv1"
	"crucible/internal/competition"
	"crucible/internal/eval/preference"
	"crucible/internal/intake"
	"crucible/internal/kind"
	"crucible/internal/labeling"
	"crucible/internal/store"
)

// labelRoutes are the endpoints of human-preference labeling: creating a
// preference competition with its full configuration, miners' copies and
// ratings, contributor keys, the scored epoch and the export.
var labelRoutes = []route{
	{"POST", "/api/v1/preference/competitions", true, (*Server).createPreferenceCompetition},
	{"POST", "/api/v1/competitions/{id}/preference/copies", true, (*Server).preferenceCopies},
	{"POST", "/api/v1/competitions/{id}/preference/ratings", true, (*Server).preferenceRating},
	{"GET", "/api/v1/competitions/{id}/preference/epoch", false, (*Server).preferenceEpoch},
	{"GET", "/api/v1/competitions/{id}/preference/export", false, (*Server).preferenceExport},
	{"GET", "/api/v1/competitions/{id}/preference/preview", true, (*Server).preferencePreview},
	{"GET", "/api/v1/competitions/{id}/preference/preview/export", true, (*Server).preferencePreviewExport},
	{"POST", "/api/v1/competitions/{id}/preference/close", true, (*Server).closePreference},
	{"GET", "/api/v1/contributor-keys", true, (*Server).listContributorKeys},
	{"POST", "/api/v1/contributor-keys", true, (*Server).createContributorKey},
	{"POST", "/api/v1/contributor-keys/{id}/revoke", true, (*Server).revokeContributorKey},
}

// labeling returns the labeling service over the server's store and clock
// (it holds no state of its own).
func (s *Server) labeling() (*labeling.Service, error) {
	return labeling.New(labeling.Config{DB: s.cfg.DB, Clock: s.cfg.Clock})
}

// labelError maps the labeling workflow's errors to HTTP answers.
func labelError(err error) error {
	var late *labeling.LateError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &late):
		return &httpError{http.StatusConflict, late.Error()}
	case errors.Is(err, store.ErrAlreadyRated):
		return &httpError{http.StatusConflict, err.Error()}
	case errors.Is(err, labeling.ErrInvalid):
		return badRequest("%v", err)
	case errors.Is(err, labeling.ErrNotClosed):
		return &httpError{http.StatusConflict, err.Error()}
	}
	return err
}

func (s *Server) createPreferenceCompetition(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCompetitionQuota(w, r); err != nil {
		return err
	}
	var req apiv1.CreatePreferenceCompetitionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.DatasetName == "" {
		req.DatasetName = "seeds"
		if req.Dataset == "" {
			req.DatasetName = "shipped-seeds"
		}
	}
	options, err := kindOptions(map[string]any{"preference": req.Preference})
	if err != nil {
		return err
	}
	lab, err := s.labeling()
	if err != nil {
		return err
	}
	reward := labeling.Reward{Asset: req.Asset, Amount: req.Reward}
	c, err := s.cfg.Intake.CreateCompetition(r.Context(), intake.NewCompetition{Kind: preference.Name, CreatedBy: signer(r.Context()),
		Spec: kind.Spec{Title: req.Title, DatasetName: req.DatasetName, Dataset: []byte(req.Dataset), Options: options}},
		func(ctx context.Context, tx *sql.Tx, c competition.Competition) error {
			return lab.EscrowRewardTx(ctx, tx, c, reward)
		})
	if err != nil {
		return labelError(intakeError(err))
	}
	if _, _, _, err := lab.Competition(r.Context(), c.ID); err != nil { // store the tasks with their deadlines now
		return err
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (s *Server) preferenceCopies(w http.ResponseWriter, r *http.Request) error {
	lab, err := s.labeling()
	if err != nil {
		return err
	}
	miner := signer(r.Context())
	views, err := lab.RequestCopies(r.Context(), r.PathValue("id"), miner)
	if err != nil {
		return labelError(err)
	}
	return writeJSON(w, http.StatusOK, apiv1.PreferenceCopies{CompetitionID: r.PathValue("id"), Miner: miner, Tasks: views})
}

func (s *Server) preferenceRating(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.PreferenceRatingRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	lab, err := s.labeling()
	if err != nil {
		return err
	}
	miner, id := signer(r.Context()), r.PathValue("id")
	var rating store.PreferenceRating
	switch {
	case len(req.Order) > 0 && len(req.Values) > 0:
		return badRequest("send order or values, not both")
	case len(req.Order) > 0:
		rating, err = lab.SubmitOrder(r.Context(), miner, miner, id, req.TaskID, req.Order)
	case len(req.Values) > 0:
		rating, err = lab.Submit(r.Context(), store.ContributorKey{ID: miner, Miner: miner}, id, req.TaskID, req.Values)
	default:
		return badRequest("a rating needs order (shown response ids, best first) or values (one per shown response)")
	}
	if err != nil {
		return labelError(err)
	}
	return writeJSON(w, http.StatusCreated, rating)
}

// errPreviewSealed answers a public read that asks for open tasks: their
// consensus and synthetic ground truth are sealed until the deadline (a
// preview would hand a labeller the answer, or let it probe the ground
// truth one rating at a time), so only the signed preview routes show them.
func errPreviewSealed(id string) error {
	return &httpError{http.StatusForbidden, fmt.Sprintf("open tasks are sealed until their deadline; %s's creator or an operator may preview them, signed, at GET /api/v1/competitions/%s/preference/preview (and /preview/export)", id, id)}
}

// mayPreview lets the competition's creator and operators score open tasks.
func (s *Server) mayPreview(r *http.Request) error {
	id, by := r.PathValue("id"), signer(r.Context())
	c, err := s.cfg.DB.GetCompetition(r.Context(), id)
	if err != nil {
		return err
	}
	if by != c.CreatedBy && !s.isOperator(by) {
		return &httpError{http.StatusForbidden, fmt.Sprintf("only %s's creator or an operator may preview open tasks: their ground truth is sealed until the deadline", id)}
	}
	return nil
}

func (s *Server) preferenceEpoch(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Query().Get("preview") == "true" {
		return errPreviewSealed(r.PathValue("id"))
	}
	return s.scoreEpoch(w, r, false)
}

func (s *Server) preferencePreview(w http.ResponseWriter, r *http.Request) error {
	if err := s.mayPreview(r); err != nil {
		return err
	}
	return s.scoreEpoch(w, r, true)
}

func (s *Server) scoreEpoch(w http.ResponseWriter, r *http.Request, preview bool) error {
	lab, err := s.labeling()
	if err != nil {
		return err
	}
	rep, _, err := lab.Score(r.Context(), r.PathValue("id"), preview)
	if err != nil {
		return labelError(err)
	}
	return writeJSON(w, http.StatusOK, rep)
}

// closePreference closes a preference competition's epoch and pays its
// reward (see labeling.EpochClose); the periodic tick does the same once every
// deadline has passed, so this only saves the wait for the creator or an
// operator. A closed epoch returns its stored record to anyone.
func (s *Server) closePreference(w http.ResponseWriter, r *http.Request) error {
	ctx, id, by := r.Context(), r.PathValue("id"), signer(r.Context())
	c, err := s.cfg.DB.GetCompetition(ctx, id)
	if err != nil {
		return err
	}
	lab, err := s.labeling()
	if err != nil {
		return err
	}
	if reward, err := s.cfg.DB.PreferenceReward(ctx, id); err == nil && reward.ClosedAt == nil && by != c.CreatedBy && !s.isOperator(by) {
		return &httpError{http.StatusForbidden, fmt.Sprintf("only %s's creator or an operator may close its epoch; the hub closes it within a minute of the last deadline", id)}
	}
	rec, err := lab.CloseEpoch(ctx, id, by)
	if err != nil {
		return labelError(err)
	}
	return writeJSON(w, http.StatusOK, rec)
}

func (s *Server) preferenceExport(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Query().Get("preview") == "true" {
		return errPreviewSealed(r.PathValue("id"))
	}
	return s.export(w, r, false)
}

func (s *Server) preferencePreviewExport(w http.ResponseWriter, r *http.Request) error {
	if err := s.mayPreview(r); err != nil {
		return err
	}
	return s.export(w, r, true)
}

func (s *Server) export(w http.ResponseWriter, r *http.Request, preview bool) error {
	lab, err := s.labeling()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = preference.FormatDPO
	}
	var buf bytes.Buffer
	if err := lab.Export(r.Context(), &buf, r.PathValue("id"), format, preference.PairMode(q.Get("pairs")), preview); err != nil {
		return labelError(err)
	}
	if format == preference.FormatCSV {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/jsonl")
	}
	_, err = w.Write(buf.Bytes())
	return err
}

func (s *Server) listContributorKeys(w http.ResponseWriter, r *http.Request) error {
	lab, err := s.labeling()
	if err != nil {
		return err
	}
	keys, err := lab.ContributorKeys(r.Context(), signer(r.Context()))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, keys)
}

func (s *Server) createContributorKey(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.CreateContributorKeyRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	lab, err := s.labeling()
	if err != nil {
		return err
	}
	k, err := lab.NewContributorKey(r.Context(), signer(r.Context()), req.Label)
	if err != nil {
		return labelError(err)
	}
	return writeJSON(w, http.StatusCreated, k)
}

func (s *Server) revokeContributorKey(w http.ResponseWriter, r *http.Request) error {
	lab, err := s.labeling()
	if err != nil {
		return err
	}
	k, err := lab.RevokeContributorKey(r.Context(), signer(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, k)
}
