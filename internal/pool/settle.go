package pool

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"time"

	"crucible/internal/competition"
	"crucible/internal/ledger"
)

// Settle settles an ended pool for key by (see settle); a second call
// returns the first result. Anyone may ask once the final evaluation tick
// has run (ticks settle pools themselves, so this is mostly a look-up).
// Before it (or while its final evaluations run), only the pool's funder
// or an operator may, with force: the
// entrants are then ranked on what was evaluated so far, and the settlement
// records who forced it. Nobody may settle before the end.
func (s *Service) Settle(ctx context.Context, poolID, by string, force bool) (competition.Settlement, error) {
	p, err := s.cfg.DB.GetPool(ctx, poolID)
	if err != nil {
		return competition.Settlement{}, err
	}
	if p.Settlement != nil {
		return *p.Settlement, nil
	}
	now := s.cfg.Clock.Now().UTC()
	if now.Before(p.End) {
		return competition.Settlement{}, fmt.Errorf("%w: pool %s ends at %s", ErrNotEnded, poolID, p.End.Format(time.RFC3339))
	}
	busy, err := s.evaluating(ctx, poolID)
	if err != nil {
		return competition.Settlement{}, err
	}
	switch {
	case p.FinalTickAt != nil && !busy:
		return s.settle(ctx, p, now, "")
	case !force:
		return competition.Settlement{}, fmt.Errorf("%w: pool %s ended at %s and settles at its next evaluation tick (every minute) "+
			"after the evaluations of what remains of its budget; its funder or an operator may force settlement now", ErrFinalTickPending, poolID, p.End.Format(time.RFC3339))
	case by != p.Funder && !slices.Contains(s.cfg.Operators, by):
		return competition.Settlement{}, fmt.Errorf("%w: only pool %s's funder (%s) or an operator may force its settlement", ErrForbidden, poolID, p.Funder)
	}
	return s.settle(ctx, p, now, by)
}

// settle ranks the entrants on the private items, applies the allocation
// rule and pays out of escrow — exactly once. A copy (Row.CopyOf) keeps its
// rank but is left out of the allocation, as a failed entrant is: it is
// paid 0 and the rule shares the pool among the others, so the original
// earns what it would have alone. The payouts, the refund of
// what the rule leaves unassigned and the pool's closing commit in one
// transaction, so a crash leaves all of them or none; a racing second call
// returns the first result.
func (s *Service) settle(ctx context.Context, p competition.Pool, now time.Time, forcedBy string) (competition.Settlement, error) {
	poolID := p.CompetitionID
	rows, subs, err := s.board(ctx, p, true)
	if err != nil {
		return competition.Settlement{}, err
	}
	scored := map[string]competition.Row{}
	for _, r := range rows {
		scored[r.SubmissionID] = r
	}
	private, err := s.privateItems(ctx, p)
	if err != nil {
		return competition.Settlement{}, err
	}
	var entrants []ledger.Entrant
	for id, sub := range subs {
		r := scored[id]
		entrants = append(entrants, ledger.Entrant{Name: id, Score: r.Score, Failed: sub.State == competition.StateFailed || r.CopyOf != "",
			CommittedAt: sub.CommittedAt, Progress: progress(r.Items, private)})
	}
	rule, err := ledger.ParseRule(p.Rule)
	if err != nil {
		return competition.Settlement{}, err
	}
	alloc, err := ledger.Allocate(rule, p.Amount, entrants)
	if err != nil {
		return competition.Settlement{}, err
	}
	result := competition.Settlement{SettledAt: now, Rule: p.Rule, Amount: p.Amount, Refunded: alloc.Unassigned, ForcedBy: forcedBy}
	for _, e := range rankedEntrants(entrants, scored) {
		sub := subs[e.Name]
		result.Payouts = append(result.Payouts, competition.Payout{SubmissionID: sub.ID, Name: sub.Name,
			Account: ledger.ParticipantAccount(sub.Submitter), Score: e.Score, Items: scored[sub.ID].Items, Units: alloc.Payouts[sub.ID], CopyOf: scored[sub.ID].CopyOf})
	}
	db, escrow := s.cfg.DB, ledger.EscrowAccount(poolID)
	var claimed bool
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		if claimed, err = db.ClaimSettlementTx(ctx, tx, poolID, result); err != nil || !claimed {
			return err
		}
		for _, po := range result.Payouts {
			if po.Units > 0 {
				if _, err := db.PostTransferTx(ctx, tx, ledger.Move("pool:"+poolID+":payout:"+po.SubmissionID, ledger.KindPayout, p.Asset,
					escrow, po.Account, po.Units, "payout of pool "+poolID), now); err != nil {
					return err
				}
			}
		}
		if result.Refunded > 0 {
			_, err := db.PostTransferTx(ctx, tx, ledger.Move("pool:"+poolID+":refund", ledger.KindRefund, p.Asset,
				escrow, ledger.FunderAccount(p.Funder), result.Refunded, "unassigned remainder of pool "+poolID), now)
			return err
		}
		return nil
	})
	if err != nil {
		return competition.Settlement{}, fmt.Errorf("settle pool %s: %w", poolID, err)
	}
	if !claimed { // another settler won the race: return its result
		p, err := s.cfg.DB.GetPool(ctx, poolID)
		if err != nil {
			return competition.Settlement{}, err
		}
		return *p.Settlement, nil
	}
	return result, nil
}

// privateItems is the number of pool p's private items, the ones its
// settlement ranks on.
func (s *Service) privateItems(ctx context.Context, p competition.Pool) (int, error) {
	c, err := s.cfg.DB.GetCompetition(ctx, p.CompetitionID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, private := range NewSplit(c.Items, p.PrivateFraction, p.Seed).Private {
		if private {
			n++
		}
	}
	return n, nil
}

// progress is the share of the private items an entrant was evaluated on,
// which a rule with the progress factor multiplies its score by.
func progress(evaluated, private int) float64 {
	if private == 0 {
		return 0
	}
	return min(1, float64(evaluated)/float64(private))
}

// rankedEntrants orders entrants as the private leaderboard does, entrants
// with no private score last (by commit time).
func rankedEntrants(entrants []ledger.Entrant, scored map[string]competition.Row) []ledger.Entrant {
	rank := func(e ledger.Entrant) int {
		if r, ok := scored[e.Name]; ok {
			return r.Rank
		}
		return math.MaxInt
	}
	out := slices.Clone(entrants)
	slices.SortStableFunc(out, func(a, b ledger.Entrant) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), a.CommittedAt.Compare(b.CommittedAt))
	})
	return out
}
