package api

import (
	"errors"
	"net/http"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/ledger"
	"crucible/internal/pool"
	"crucible/internal/store"
)

func (s *Server) listPools(w http.ResponseWriter, r *http.Request) error {
	list, err := s.cfg.DB.ListPools(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) createPool(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCompetitionQuota(w, r); err != nil {
		return err
	}
	var req apiv1.CreatePoolRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	var refresh time.Duration
	if req.Refresh != "" {
		d, err := time.ParseDuration(req.Refresh)
		if err != nil {
			return badRequest("refresh %q is not a duration like 24h", req.Refresh)
		}
		refresh = d
	}
	p, err := s.cfg.Pools.Create(r.Context(), signer(r.Context()), pool.CreateRequest{
		Title: req.Title, DatasetName: req.DatasetName, Dataset: req.Dataset, Mode: req.Mode, Template: req.Template,
		Fund: req.Fund, Asset: req.Asset, Allocation: req.Allocation, Start: req.Start, End: req.End,
		BudgetPerHour: req.BudgetPerHour, Refresh: refresh, PrivateFraction: req.PrivateFraction, Task: req.Task,
	})
	if err != nil {
		return badRequest("%v", err)
	}
	return writeJSON(w, http.StatusCreated, p)
}

func (s *Server) getPool(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p, err := s.cfg.DB.GetPool(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	subs, err := s.pub.ListSubmissions(ctx, p.CompetitionID) // sealed: no entrant's card while the pool is open
	if err != nil {
		return err
	}
	escrow, err := s.cfg.DB.Balance(ctx, ledger.EscrowAccount(p.CompetitionID), p.Asset)
	if err != nil {
		return err
	}
	st := apiv1.PoolStatus{Pool: p, Entrants: subs, Escrow: escrow,
		BudgetSoFar: pool.Allowed(p.BudgetPerHour, p.Start, p.End, s.cfg.Clock.Now())}
	for _, sub := range subs {
		st.BudgetUsed += sub.ItemsDone
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) joinPool(w http.ResponseWriter, r *http.Request) error {
	var req pool.JoinRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	// The key's quota is checked in the entry's transaction, as for a
	// submission (createSubmission).
	key := signer(r.Context())
	sub, err := s.cfg.Pools.Join(r.Context(), r.PathValue("id"), key, s.submissionQuota(key), req)
	if refusal := quotaRefusal(w, err); refusal != nil {
		return refusal
	}
	if errors.Is(err, pool.ErrDuplicateEntry) || errors.Is(err, pool.ErrEntryLimit) {
		return &httpError{http.StatusConflict, err.Error()}
	}
	if err != nil {
		return badRequestUnlessMissing(err)
	}
	return writeJSON(w, http.StatusCreated, sub)
}

func (s *Server) poolLeaderboard(w http.ResponseWriter, r *http.Request) error {
	var at time.Time
	if v := r.URL.Query().Get("at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return badRequest("at=%q is not an RFC 3339 time like 2026-12-01T00:00:00Z", v)
		}
		at = t
	}
	snap, err := s.cfg.Pools.Leaderboard(r.Context(), r.PathValue("id"), at)
	if err != nil {
		return err
	}
	return writeTagged(w, r, snap)
}

func (s *Server) settlePool(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.SettlePoolRequest
	if r.ContentLength != 0 { // an empty body asks for a regular settlement
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
	}
	st, err := s.cfg.Pools.Settle(r.Context(), r.PathValue("id"), signer(r.Context()), req.Force)
	switch {
	case errors.Is(err, pool.ErrNotEnded), errors.Is(err, pool.ErrFinalTickPending):
		return &httpError{http.StatusConflict, err.Error()}
	case errors.Is(err, pool.ErrForbidden):
		return &httpError{http.StatusForbidden, err.Error()}
	case err != nil:
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) deposit(w http.ResponseWriter, r *http.Request) error {
	var req pool.DepositRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	posted, err := s.cfg.Pools.Deposit(r.Context(), signer(r.Context()), req)
	if errors.Is(err, pool.ErrForbidden) {
		return &httpError{http.StatusForbidden, err.Error()}
	}
	if err != nil {
		return badRequest("deposit: %v", err)
	}
	code := http.StatusCreated
	if posted.Replayed {
		code = http.StatusOK
	}
	return writeJSON(w, code, posted)
}

func (s *Server) balances(w http.ResponseWriter, r *http.Request) error {
	b, err := s.cfg.DB.Balances(r.Context(), r.URL.Query().Get("account"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, b)
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) error {
	h, err := s.cfg.DB.History(r.Context(), r.URL.Query().Get("account"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h)
}

func (s *Server) allocate(w http.ResponseWriter, r *http.Request) error {
	var req apiv1.AllocateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	payouts, err := req.Allocate()
	if err != nil {
		return badRequest("%v", err)
	}
	return writeJSON(w, http.StatusOK, payouts)
}

func badRequestUnlessMissing(err error) error {
	var he *httpError
	if errors.As(err, &he) {
		return err
	}
	if errors.Is(err, store.ErrNotFound) {
		return err
	}
	return badRequest("%v", err)
}
