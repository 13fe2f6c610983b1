package weights

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"crucible/internal/competition"
	"crucible/internal/eval/roleplay"
	"crucible/internal/store"
)

// Fresh roleplay items. A competition with fresh_items evaluates every
// model, each epoch, on items planned from a secret seed drawn when the
// epoch opens: its SHA-256 is public at once, the seed and the items only
// once the epoch has ended (internal/seal decides), so a model cannot be
// tuned to items nobody has seen, and anyone can check afterwards that the
// items were fixed in advance. The items planned at creation from the
// public seed are the practice set.

// FreshItems reports whether competition c evaluates on fresh epoch items.
func (s *Service) FreshItems(c competition.Competition) bool {
	return s.cfg.Kinds.FreshItems(c)
}

// OpenRoleplay returns epoch n's fresh items of competition c, planning
// them from a new secret seed the first time. Planning is idempotent
// under concurrent workers: each plans, the first stored epoch wins and
// every caller uses it.
func (s *Service) OpenRoleplay(ctx context.Context, c competition.Competition, n int64) (store.RoleplayEpoch, error) {
	if e, err := s.cfg.DB.RoleplayEpoch(ctx, c.ID, n); !errors.Is(err, store.ErrNotFound) {
		return e, err
	}
	practice, err := s.cfg.DB.CompetitionItems(ctx, c.ID)
	if err != nil {
		return store.RoleplayEpoch{}, err
	}
	seed := roleplay.NewEpochSeed()
	raw, digest, err := s.cfg.Kinds.PlanFresh(ctx, c, practice, seed)
	if err != nil {
		return store.RoleplayEpoch{}, fmt.Errorf("epoch %d of %s: generate fresh items: %w", n, c.ID, err)
	}
	start, end := s.Bounds(n)
	return s.cfg.DB.PutRoleplayEpoch(ctx, store.RoleplayEpoch{CompetitionID: c.ID, Epoch: n, Seed: seed,
		SeedSHA256: roleplay.SeedCommitment(seed), Items: raw, ItemsDigest: digest, Start: start, End: end})
}

// Enqueue schedules evaluations of submissions on epoch n's fresh items of
// a competition (jobs.Queue.EnqueueFresh: the evaluate worker runs them).
type Enqueue func(ctx context.Context, competitionID string, n int64, submissionIDs []string) error

// EvaluateFresh opens the current epoch of every fresh-items competition
// and enqueues the evaluation on its items of each submitter's latest
// scored model that has none yet: models that entered in earlier epochs
// are evaluated again on the new items (the periodic task).
func (s *Service) EvaluateFresh(ctx context.Context, enqueue Enqueue) error {
	list, err := s.cfg.DB.ListCompetitions(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range list {
		if s.FreshItems(c) {
			errs = append(errs, s.enqueueEpoch(ctx, c, s.Of(s.cfg.Clock.Now()), enqueue))
		}
	}
	return errors.Join(errs...)
}

func (s *Service) enqueueEpoch(ctx context.Context, c competition.Competition, n int64, enqueue Enqueue) error {
	if _, err := s.OpenRoleplay(ctx, c, n); err != nil {
		return err
	}
	subs, err := s.cfg.DB.ListSubmissions(ctx, c.ID)
	if err != nil {
		return err
	}
	done, err := s.cfg.DB.FreshEvals(ctx, c.ID, n)
	if err != nil {
		return err
	}
	evaluated := map[string]bool{}
	for _, ev := range done {
		evaluated[ev.SubmissionID] = true
	}
	var ids []string
	for _, sub := range latestScored(subs) {
		if !evaluated[sub.ID] {
			ids = append(ids, sub.ID)
		}
	}
	return enqueue(ctx, c.ID, n, ids)
}

// latestScored returns each submitter's latest scored submission: the
// model a submitter competes with now.
func latestScored(subs []competition.Submission) []competition.Submission {
	latest := map[string]competition.Submission{}
	for _, sub := range subs {
		if sub.State != competition.StateScored {
			continue
		}
		if cur, ok := latest[sub.Submitter]; !ok || sub.CommittedAt.After(cur.CommittedAt) {
			latest[sub.Submitter] = sub
		}
	}
	out := make([]competition.Submission, 0, len(latest))
	for _, sub := range latest {
		out = append(out, sub)
	}
	slices.SortFunc(out, func(a, b competition.Submission) int { return a.CommittedAt.Compare(b.CommittedAt) })
	return out
}
