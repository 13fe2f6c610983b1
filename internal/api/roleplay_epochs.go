package api

import (
	"net/http"
	"strconv"

	"crucible/internal/competition"
	"crucible/internal/seal"
)

// Fresh roleplay epochs: commitments, reveals and the contamination check.
// What is shown, and when, is internal/seal's decision.

var roleplayRoutes = []route{
	{"GET", "/api/v1/competitions/{id}/roleplay-epochs", false, (*Server).roleplayEpochs},
	{"GET", "/api/v1/competitions/{id}/roleplay-epochs/{n}", false, (*Server).roleplayEpoch},
	{"GET", "/api/v1/competitions/{id}/contamination", false, (*Server).contamination},
}

// freshCompetition returns a competition whose kind has epochs (roleplay),
// or an error naming why it has no epochs of its own.
func (s *Server) freshCompetition(r *http.Request) (competition.Competition, error) {
	c, err := s.cfg.DB.GetCompetition(r.Context(), r.PathValue("id"))
	if err != nil {
		return c, err
	}
	if !s.cfg.Kinds.Epochs(c.Kind) {
		return c, badRequest("%s is a %s competition; only roleplay competitions have fresh epoch items", c.ID, c.Kind)
	}
	return c, nil
}

func (s *Server) roleplayEpochs(w http.ResponseWriter, r *http.Request) error {
	c, err := s.freshCompetition(r)
	if err != nil {
		return err
	}
	list, err := s.pub.RoleplayEpochs(r.Context(), c.ID, s.cfg.Clock.Now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) roleplayEpoch(w http.ResponseWriter, r *http.Request) error {
	c, err := s.freshCompetition(r)
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
	if err != nil || n < 0 {
		return badRequest("epoch must be a non-negative integer, got %q", r.PathValue("n"))
	}
	v, err := s.pub.RoleplayEpoch(r.Context(), c.ID, n, s.cfg.Clock.Now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) contamination(w http.ResponseWriter, r *http.Request) error {
	c, err := s.freshCompetition(r)
	if err != nil {
		return err
	}
	rows, err := s.pub.Contamination(r.Context(), c, s.cfg.Clock.Now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rows)
}

// freshRow is a leaderboard row of a fresh-items competition: the score is
// the practice set's, beside the contamination check.
type freshRow struct {
	competition.Row
	FreshScore       *float64 `json:"fresh_score,omitempty"`
	ContaminationGap *float64 `json:"contamination_gap,omitempty"`
	Flagged          bool     `json:"flagged"`
}

func (s *Server) freshLeaderboard(w http.ResponseWriter, r *http.Request, c competition.Competition, rows []competition.Row) error {
	checks, err := s.pub.Contamination(r.Context(), c, s.cfg.Clock.Now())
	if err != nil {
		return err
	}
	byID := map[string]seal.Contamination{}
	for _, ch := range checks {
		byID[ch.SubmissionID] = ch
	}
	out := make([]freshRow, len(rows))
	for i, row := range rows {
		ch := byID[row.SubmissionID]
		out[i] = freshRow{Row: row, FreshScore: ch.FreshScore, ContaminationGap: ch.ContaminationGap, Flagged: ch.Flagged}
	}
	return writeTagged(w, r, out)
}
