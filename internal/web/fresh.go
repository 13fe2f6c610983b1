package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"crucible/internal/competition"
	"crucible/internal/seal"
)

// FreshStore is what a fresh-items roleplay competition's page reads
// besides Store: epoch commitments and reveals and the contamination
// check, already sealed (seal.Public implements it). When Config.Store
// does not implement it, the page shows neither.
type FreshStore interface {
	RoleplayEpochs(ctx context.Context, competitionID string, now time.Time) ([]seal.EpochView, error)
	Contamination(ctx context.Context, c competition.Competition, now time.Time) ([]seal.Contamination, error)
	// RoleplayEpoch is one epoch with, once it has ended, its items and
	// every model's results on them.
	RoleplayEpoch(ctx context.Context, competitionID string, n int64, now time.Time) (seal.EpochView, error)
}

// freshSection is the fresh-items part of a roleplay competition's page.
type freshSection struct {
	Epochs        []seal.EpochView
	Contamination []seal.Contamination
	Threshold     float64
}

// maxShownEpochs bounds the epochs listed on a competition's page.
const maxShownEpochs = 12

// fresh returns the fresh-items section of c's page, or nil when c has none.
func (s *Server) fresh(ctx context.Context, c competition.Competition) (*freshSection, error) {
	fs, ok := s.cfg.Store.(FreshStore)
	if !ok || !s.cfg.Kinds.Epochs(c.Kind) {
		return nil, nil
	}
	now := s.cfg.Clock.Now()
	epochs, err := fs.RoleplayEpochs(ctx, c.ID, now)
	if err != nil || len(epochs) == 0 {
		return nil, err
	}
	rows, err := fs.Contamination(ctx, c, now)
	if err != nil {
		return nil, err
	}
	sec := &freshSection{Epochs: epochs[:min(len(epochs), maxShownEpochs)], Contamination: rows}
	if len(rows) > 0 {
		sec.Threshold = rows[0].Threshold
	}
	return sec, nil
}

// freshEpochPage is one fresh-items epoch: sealed while it runs, then each
// model's replies on its items beside the reference replies.
type freshEpochPage struct {
	Page
	Competition competition.Competition
	Epoch       seal.EpochView
	Models      []freshModel
}

// freshModel is one model's evaluation on an ended epoch's items.
type freshModel struct {
	seal.FreshScore
	Items []itemView
	// More counts the results left off the page.
	More int
}

// freshEpoch serves /c/{id}/fresh/{n}. What it shows comes from the
// sealed store: nothing of a running epoch but its commitment.
func (s *Server) freshEpoch(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.cfg.Store.GetCompetition(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	fs, ok := s.cfg.Store.(FreshStore)
	if !ok || !s.cfg.Kinds.FreshItems(c) {
		return notFound("%s does not evaluate on fresh items each epoch.", c.Title)
	}
	n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
	if err != nil || n < 0 {
		return &pageError{http.StatusBadRequest, fmt.Sprintf("epoch must be a whole number, got %q.", r.PathValue("n"))}
	}
	v, err := fs.RoleplayEpoch(ctx, c.ID, n, s.cfg.Clock.Now())
	if err != nil {
		return err
	}
	data := freshEpochPage{Page: Page{Title: fmt.Sprintf("%s · epoch %d", c.Title, n), APIPath: fmt.Sprintf("/api/v1/competitions/%s/roleplay-epochs/%d", c.ID, n)},
		Competition: c, Epoch: v}
	for _, ev := range v.Evaluations {
		m := freshModel{FreshScore: ev}
		shown := ev.Results[:min(len(ev.Results), ResultsPerPage)]
		m.More = len(ev.Results) - len(shown)
		m.Items = s.itemViews(c, shown)
		data.Models = append(data.Models, m)
	}
	s.render(w, http.StatusOK, "freshepoch", data)
	return nil
}
