package web

// This file holds funded pools in the UI: their line on the home page and
// their own page at /c/{id} (terms, budget, the public leaderboard's
// snapshot history, and after settlement the private ranking and payouts).
//
// A pool's page never shows a score computed over all of its items while it
// is open: the private items decide the payout, so before settlement the
// only scores shown are the published public snapshots.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"crucible/internal/competition"
	"crucible/internal/ledger"
	"crucible/internal/pool"
	"crucible/internal/store"
)

// PoolStore is what pool pages read besides Store. *store.DB implements it;
// when Config.Store does not, the UI shows no pools.
type PoolStore interface {
	ListPools(ctx context.Context) ([]competition.Pool, error)
	GetPool(ctx context.Context, id string) (competition.Pool, error)
	// SnapshotAt returns the latest public snapshot taken at or before t.
	SnapshotAt(ctx context.Context, id string, t time.Time) (competition.Snapshot, error)
	// Snapshots lists the times of a pool's snapshots, oldest first.
	Snapshots(ctx context.Context, id string) ([]time.Time, error)
	Balance(ctx context.Context, account, asset string) (int64, error)
}

// addPoolAndEpochPages parses the pool and epoch templates and routes the
// epoch pages (a pool's page is /c/{id}, dispatched by competition).
func (s *Server) addPoolAndEpochPages() error {
	if err := s.parsePage("pool"); err != nil {
		return err
	}
	for _, page := range []string{"epochs", "epoch"} {
		if err := s.parsePage(page, "weights"); err != nil {
			return err
		}
	}
	s.mux.Handle("GET /epochs", s.handle(s.epochs))
	s.mux.Handle("GET /epochs/{id}", s.handle(s.epochDetail))
	s.mux.Handle("GET /epochs/{id}/weights.csv", s.handle(s.epochCSV))
	return nil
}

func (s *Server) poolStore() (PoolStore, bool) {
	ps, ok := s.cfg.Store.(PoolStore)
	return ps, ok
}

// lookupPool returns the pool of a competition; ok is false when the
// competition is not a pool (or the store keeps no pools).
func (s *Server) lookupPool(ctx context.Context, id string) (competition.Pool, bool, error) {
	ps, ok := s.poolStore()
	if !ok {
		return competition.Pool{}, false, nil
	}
	p, err := ps.GetPool(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return p, false, nil
	}
	return p, err == nil, err
}

// poolPhase is where a pool is in its schedule at now: upcoming, running,
// settling (ended, not yet settled) or settled.
func poolPhase(p competition.Pool, now time.Time) string {
	switch {
	case p.State == competition.PoolSettled:
		return "settled"
	case now.Before(p.Start):
		return "upcoming"
	case now.Before(p.End):
		return "running"
	}
	return "settling"
}

// poolSummary is one pool as listed on the home page.
type poolSummary struct {
	competition.Pool
	Phase    string
	Escrow   int64
	Entrants int
	// Leader is the first row of the latest public snapshot, if any.
	Leader *competition.Row
	// Winner is the settlement's first payout, once settled.
	Winner *competition.Payout
}

// homeData is the home page with its funded pools.
type homeData struct {
	homePage
	Pools []poolSummary
	// PoolIDs marks the competitions that are pools.
	PoolIDs map[string]bool
}

// renderHome adds the funded pools to the home page and renders it.
func (s *Server) renderHome(w http.ResponseWriter, r *http.Request, page homePage) error {
	data := homeData{homePage: page, PoolIDs: map[string]bool{}}
	if ps, ok := s.poolStore(); ok {
		ctx := r.Context()
		pools, err := ps.ListPools(ctx)
		if err != nil {
			return err
		}
		now := s.cfg.Clock.Now()
		for _, p := range pools {
			sum, err := s.summarizePool(ctx, ps, p, now)
			if err != nil {
				return err
			}
			data.Pools = append(data.Pools, sum)
			data.PoolIDs[p.CompetitionID] = true
		}
	}
	s.render(w, http.StatusOK, "home", data)
	return nil
}

func (s *Server) summarizePool(ctx context.Context, ps PoolStore, p competition.Pool, now time.Time) (poolSummary, error) {
	sum := poolSummary{Pool: p, Phase: poolPhase(p, now)}
	var err error
	if sum.Escrow, err = ps.Balance(ctx, ledger.EscrowAccount(p.CompetitionID), p.Asset); err != nil {
		return sum, err
	}
	subs, err := s.cfg.Store.ListSubmissions(ctx, p.CompetitionID)
	if err != nil {
		return sum, err
	}
	sum.Entrants = len(subs)
	if p.Settlement != nil {
		if len(p.Settlement.Payouts) > 0 && p.Settlement.Payouts[0].Items > 0 {
			sum.Winner = &p.Settlement.Payouts[0]
		}
		return sum, nil
	}
	snap, err := ps.SnapshotAt(ctx, p.CompetitionID, now)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return sum, err
	case len(snap.Rows) > 0:
		sum.Leader = &snap.Rows[0]
	}
	return sum, nil
}

// poolPage is a pool's page.
type poolPage struct {
	Page
	Competition competition.Competition
	Pool        competition.Pool
	Phase       string
	Now         time.Time
	Escrow      int64
	// PrivateItems and PublicItems count the split (which items is secret).
	PrivateItems, PublicItems int
	Budget                    budgetView
	Entrants                  []subRow
	// Snapshots are the published public leaderboards, newest first.
	Snapshots []snapshotOption
	// Snapshot is the one shown (the latest, or the one in force at ?at=).
	Snapshot *competition.Snapshot
	// Board is Snapshot's rows with their interval bars.
	Board    board
	BarTicks []tick
	// At is the ?at= asked for, when one was; AtNote explains an empty answer.
	At     string
	AtNote string
	// Final compares the public and private rankings after settlement.
	Final []finalRow
	Rules []rule
	// Payouts charts the settlement's payouts, or before it the rule's
	// split of the escrow over the public board; ShakeUp (after settlement
	// only) charts each entrant's move from public to private rank.
	Payouts *payoutChart
	ShakeUp *shakeChart
}

// budgetView is a pool's inference budget: items evaluated so far against
// what the hourly budget allows by now and over the whole schedule.
type budgetView struct {
	PerHour, Used, Allowed, Total, Needed int
}

// Percent is Used as a share of Allowed.
func (b budgetView) Percent() float64 { return percent(b.Used, b.Allowed) }

// snapshotOption is one published snapshot in the history select.
type snapshotOption struct {
	At       time.Time
	Value    string
	Selected bool
}

// finalRow is one entrant after settlement: its public rank and score in the
// last published snapshot beside its private rank, score and payout.
type finalRow struct {
	competition.Payout
	PrivateRank int
	// PublicRank is 0 when the entrant was not on the last public board.
	PublicRank  int
	PublicScore float64
	// Moved is PublicRank − PrivateRank (positive: rose on the private items).
	Moved int
	// CopyOfName names the entrant this one copies (Payout.CopyOf).
	CopyOfName string
}

// Fell is how many places the entrant lost on the private items.
func (r finalRow) Fell() int { return -r.Moved }

func (s *Server) poolPage(w http.ResponseWriter, r *http.Request, c competition.Competition, p competition.Pool) error {
	ctx := r.Context()
	ps, _ := s.poolStore()
	now := s.cfg.Clock.Now()
	subs, err := s.cfg.Store.ListSubmissions(ctx, c.ID)
	if err != nil {
		return err
	}
	escrow, err := ps.Balance(ctx, ledger.EscrowAccount(c.ID), p.Asset)
	if err != nil {
		return err
	}
	private := int(p.PrivateFraction*float64(c.Items) + 0.5) // as pool.NewSplit counts
	data := poolPage{
		Page:         Page{Title: c.Title, APIPath: "/api/v1/pools/" + c.ID},
		Competition:  c,
		Pool:         p,
		Phase:        poolPhase(p, now),
		Now:          now,
		Escrow:       escrow,
		PrivateItems: private,
		PublicItems:  c.Items - private,
		Budget: budgetView{PerHour: p.BudgetPerHour, Allowed: pool.Allowed(p.BudgetPerHour, p.Start, p.End, now),
			Total: pool.Allowed(p.BudgetPerHour, p.Start, p.End, p.End), Needed: len(subs) * c.Items},
		BarTicks: barTicks(),
		Rules:    s.rulesOf(c),
	}
	for _, sub := range subs {
		data.Budget.Used += sub.ItemsDone
		data.Entrants = append(data.Entrants, submissionRow(sub))
	}

	pb, err := s.poolBoard(r, c, p, subs)
	if err != nil {
		return err
	}
	data.Snapshot, data.Board, data.At, data.AtNote = pb.Snapshot, pb.Board, pb.At, pb.AtNote
	times := pb.Times
	for i := len(times) - 1; i >= 0; i-- {
		t := times[i]
		data.Snapshots = append(data.Snapshots, snapshotOption{At: t, Value: t.UTC().Format(time.RFC3339Nano),
			Selected: data.Snapshot != nil && t.Equal(data.Snapshot.TakenAt)})
	}
	if p.Settlement != nil {
		data.Final, err = s.finalRows(ctx, ps, c.ID, *p.Settlement)
		if err != nil {
			return err
		}
		data.Payouts, data.ShakeUp = settledPayouts(*p.Settlement), newShakeChart(data.Final)
	} else if data.Snapshot != nil {
		data.Payouts = projectedPayouts(p, escrow, data.Snapshot.Rows)
	}
	s.render(w, http.StatusOK, "pool", data)
	return nil
}

// poolBoardView is a pool's public leaderboard at ?at= (default now).
type poolBoardView struct {
	// Times are the published snapshots' times, oldest first.
	Times []time.Time
	// Snapshot is the one in force at At (nil: none yet, AtNote says why).
	Snapshot   *competition.Snapshot
	Board      board
	At, AtNote string
}

// poolBoard finds the public snapshot r asks for (?at=, default now) and
// its rows in the order r asks for, naming submitters from subs (the
// pool's submissions, which its callers have read already). Only published
// snapshots are shown: no score over a pool's private items before
// settlement.
func (s *Server) poolBoard(r *http.Request, c competition.Competition, p competition.Pool, subs []competition.Submission) (poolBoardView, error) {
	ctx := r.Context()
	ps, _ := s.poolStore()
	var v poolBoardView
	times, err := ps.Snapshots(ctx, c.ID)
	if err != nil {
		return v, err
	}
	v.Times = times
	at := s.cfg.Clock.Now()
	if q := r.URL.Query().Get("at"); q != "" {
		t, err := time.Parse(time.RFC3339Nano, q)
		if err != nil {
			return v, &pageError{http.StatusBadRequest, fmt.Sprintf("at must be an RFC 3339 time like 2026-12-01T00:00:00Z, got %q.", firstRunes(q, 40))}
		}
		at, v.At = t, q
	}
	var rows []competition.Row
	if len(times) > 0 {
		snap, err := ps.SnapshotAt(ctx, c.ID, at)
		switch {
		case errors.Is(err, store.ErrNotFound):
			v.AtNote = fmt.Sprintf("No snapshot had been published by %s; the first was taken %s.",
				at.UTC().Format("2006-01-02 15:04:05 UTC"), times[0].UTC().Format("2006-01-02 15:04:05 UTC"))
		case err != nil:
			return v, err
		default:
			v.Snapshot, rows = &snap, snap.Rows
		}
	}
	v.Board = s.newBoard(r, c, rows, subs)
	return v, sortBoard(&v.Board, r.URL.Query())
}

// finalRows sets the settlement's private ranking beside the last public
// snapshot published before it.
func (s *Server) finalRows(ctx context.Context, ps PoolStore, id string, st competition.Settlement) ([]finalRow, error) {
	public := map[string]competition.Row{}
	snap, err := ps.SnapshotAt(ctx, id, st.SettledAt)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	for _, r := range snap.Rows {
		public[r.SubmissionID] = r
	}
	names := map[string]string{}
	for _, po := range st.Payouts {
		names[po.SubmissionID] = po.Name
	}
	rows := make([]finalRow, len(st.Payouts))
	for i, po := range st.Payouts {
		rows[i] = finalRow{Payout: po, CopyOfName: cmp.Or(names[po.CopyOf], po.CopyOf)}
		if po.Items > 0 {
			rows[i].PrivateRank = i + 1
		}
		if r, ok := public[po.SubmissionID]; ok {
			rows[i].PublicRank, rows[i].PublicScore = r.Rank, r.Score
			if rows[i].PrivateRank > 0 {
				rows[i].Moved = r.Rank - rows[i].PrivateRank
			}
		}
	}
	return rows, nil
}

// formatUnits writes an amount of base units with thousands separators.
func formatUnits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "−" + b.String()
	}
	return b.String()
}

// formatDuration writes a duration without zero parts: 3h, 1h30m, 90s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
