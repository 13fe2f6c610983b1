package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"crucible/internal/api/apiv1"
	"crucible/internal/eval/patch"
	"crucible/internal/eval/preference"
	"crucible/internal/kind"

	"crucible/internal/consensus"
	"crucible/internal/store"
)

// validatorRoutes are the consensus endpoints: registration, stakes, weight
// vectors and epochs (internal/consensus).
var validatorRoutes = []route{
	{"GET", "/api/v1/consensus/uids", false, (*Server).listUIDs},
	{"POST", "/api/v1/consensus/uids", true, (*Server).registerUID},
	{"GET", "/api/v1/consensus/validators", false, (*Server).listStakes},
	{"POST", "/api/v1/consensus/validators", true, (*Server).setStake},
	{"GET", "/api/v1/consensus/epochs/current", false, (*Server).currentEpoch},
	{"GET", "/api/v1/consensus/epochs/{n}", false, (*Server).getConsensusEpoch},
	{"GET", "/api/v1/consensus/epochs/{n}/weights", false, (*Server).listWeightVectors},
	{"POST", "/api/v1/consensus/epochs/{n}/weights", true, (*Server).postWeights},
	{"POST", "/api/v1/consensus/epochs/{n}/close", true, (*Server).closeConsensusEpoch},
	{"GET", "/api/v1/consensus/competitions/{id}/labels", true, (*Server).preferenceLabels},
	{"GET", "/api/v1/consensus/competitions/{id}/patch-tasks", true, (*Server).patchTasks},
	{"GET", "/api/v1/consensus/competitions/{id}/bundles/{digest}", true, (*Server).patchBundle},
	{"GET", "/api/v1/consensus/competitions/{id}/patches", true, (*Server).patchSubmissions},
}

// consensusError maps the validator package's errors to status codes.
func consensusError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, consensus.ErrForbidden):
		return &httpError{http.StatusForbidden, err.Error()}
	case errors.Is(err, consensus.ErrInvalid):
		return &httpError{http.StatusBadRequest, err.Error()}
	case errors.Is(err, consensus.ErrConflict):
		return &httpError{http.StatusConflict, err.Error()}
	}
	return err
}

func epochParam(r *http.Request) (int64, error) {
	v := r.PathValue("n")
	if v == "latest" {
		return -1, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("epoch must be a non-negative integer (or latest), got %q", v)
	}
	return n, nil
}

func (s *Server) listUIDs(w http.ResponseWriter, r *http.Request) error {
	svc := s.cfg.Validators
	list, err := svc.UIDs(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) registerUID(w http.ResponseWriter, r *http.Request) error {
	svc := s.cfg.Validators
	reg, err := svc.Register(r.Context(), signer(r.Context()))
	if err != nil {
		return consensusError(err)
	}
	code := http.StatusOK
	if reg.Created {
		code = http.StatusCreated
	}
	return writeJSON(w, code, reg)
}

func (s *Server) listStakes(w http.ResponseWriter, r *http.Request) error {
	svc := s.cfg.Validators
	list, err := svc.Stakes(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) setStake(w http.ResponseWriter, r *http.Request) error {
	svc := s.cfg.Validators
	var req apiv1.SetStakeRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	st, err := svc.SetStake(r.Context(), signer(r.Context()), req.Validator, req.Stake)
	if err != nil {
		return consensusError(err)
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) currentEpoch(w http.ResponseWriter, _ *http.Request) error {
	svc := s.cfg.Validators
	return writeJSON(w, http.StatusOK, svc.Current())
}

func (s *Server) getConsensusEpoch(w http.ResponseWriter, r *http.Request) error {
	svc := s.cfg.Validators
	n, err := epochParam(r)
	if err != nil {
		return err
	}
	rec, err := svc.Get(r.Context(), n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rec)
}

func (s *Server) listWeightVectors(w http.ResponseWriter, r *http.Request) error {
	svc := s.cfg.Validators
	n, err := epochParam(r)
	if err != nil {
		return err
	}
	if n < 0 {
		n = svc.Current().Epoch
	}
	list, err := svc.WeightVectors(r.Context(), n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) postWeights(w http.ResponseWriter, r *http.Request) error {
	svc := s.cfg.Validators
	n, err := epochParam(r)
	if err != nil || n < 0 {
		return badRequest("post weights to a numbered epoch (GET /api/v1/consensus/epochs/current tells which is open)")
	}
	var req apiv1.PostWeightsRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	v, err := svc.PostWeights(r.Context(), signer(r.Context()), n, req.Competition, req.Weights)
	if err != nil {
		return consensusError(err)
	}
	return writeJSON(w, http.StatusCreated, v)
}

func (s *Server) closeConsensusEpoch(w http.ResponseWriter, r *http.Request) error {
	svc := s.cfg.Validators
	n, err := epochParam(r)
	if err != nil || n < 0 {
		return badRequest("close a numbered epoch")
	}
	rec, err := svc.CloseAs(r.Context(), signer(r.Context()), n)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return err
		}
		return consensusError(err)
	}
	return writeJSON(w, http.StatusOK, rec)
}

func (s *Server) preferenceLabels(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Validators.RequireStake(r.Context(), signer(r.Context())); err != nil {
		return consensusError(err)
	}
	lab, err := s.labeling()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	_, _, tasks, err := lab.Competition(r.Context(), id)
	if err != nil {
		return labelError(err)
	}
	now := s.cfg.Clock.Now()
	out := apiv1.PreferenceLabels{CompetitionID: id, Tasks: []preference.Task{}, Ratings: []preference.Rating{}}
	closed := map[string]bool{}
	for _, t := range tasks {
		if !t.Open(now) { // open tasks' ground truth stays sealed
			out.Tasks = append(out.Tasks, t)
			closed[t.ID] = true
		}
	}
	stored, err := s.cfg.DB.PreferenceRatings(r.Context(), id)
	if err != nil {
		return err
	}
	for _, rt := range stored {
		if closed[rt.TaskID] {
			out.Ratings = append(out.Ratings, preference.Rating{Miner: rt.Miner, TaskID: rt.TaskID, Values: rt.Values, Submitted: rt.SubmittedAt})
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// patchTasks serves a code-fix competition's full task definitions (the
// reference fix, the test patch, the tests and the log parser: everything
// the judge reads) to validators with stake, so they can judge patches
// themselves. Competitors see only the public view (listTasks): the test
// patch would tell them what to fit. An open pool's private tasks stay out.
func (s *Server) patchTasks(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Validators.RequireStake(r.Context(), signer(r.Context())); err != nil {
		return consensusError(err)
	}
	tasks, _, err := s.competitionTasks(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if tasks == nil {
		tasks = []patch.Task{}
	}
	return writeJSON(w, http.StatusOK, tasks)
}

// patchBundle serves, to validators with stake, an uploaded repository
// bundle that one of the competition's tasks names: the bytes whose sha256
// the task committed to, which the validator checks before using them.
func (s *Server) patchBundle(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Validators.RequireStake(r.Context(), signer(r.Context())); err != nil {
		return consensusError(err)
	}
	tasks, c, err := s.competitionTasks(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	digest := r.PathValue("digest")
	named := false
	for _, t := range tasks {
		named = named || t.Repo == patch.BundlePrefix+digest
	}
	if !named {
		return &httpError{http.StatusNotFound, fmt.Sprintf("no task of competition %s names the repository bundle %q", c.ID, digest)}
	}
	data, err := s.cfg.DB.RepoBundle(r.Context(), digest)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data) // the client went away: nothing left to tell it
	return nil
}

// patchSubmissions serves every code-fix submission's patch (task and diff)
// to validators with stake: what they judge, read from the store, so it
// does not depend on what the public views show of a patch.
// patchSubmissions serves the diffs that every public view seals (see
// seal.Policy.Submission) to those who judge or own them: validators with
// stake, the competition's creator (the fixes are what it asked for) and
// operators.
func (s *Server) patchSubmissions(w http.ResponseWriter, r *http.Request) error {
	by := signer(r.Context())
	c, err := s.cfg.DB.GetCompetition(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if by != c.CreatedBy && !s.isOperator(by) {
		if err := s.cfg.Validators.RequireStake(r.Context(), by); err != nil {
			return consensusError(err)
		}
	}
	if s.cfg.Kinds.Entry(c.Kind) != kind.EntryPatch {
		return badRequest("%s is a %s competition; only code-fix (patch) competitions have patches", c.ID, c.Kind)
	}
	subs, err := s.cfg.DB.ListSubmissions(r.Context(), c.ID)
	if err != nil {
		return err
	}
	out := []apiv1.PatchSubmission{}
	for _, sub := range subs {
		if sub.Patch != nil {
			out = append(out, apiv1.PatchSubmission{SubmissionID: sub.ID, Patch: *sub.Patch})
		}
	}
	return writeJSON(w, http.StatusOK, out)
}
