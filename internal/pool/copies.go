package pool

import (
	"context"

	"crucible/internal/competition"
	"crucible/internal/incentive"
)

// CopyRule is the model competitions' copy rule (competition.CopyRule):
// pools and plain competitions judge copies alike.
var CopyRule = competition.CopyRule

// DefaultMaxEntriesPerKey is how many active entries one key may have in a
// pool unless Config.MaxEntriesPerKey says otherwise.
const DefaultMaxEntriesPerKey = competition.DefaultMaxEntriesPerKey

// Errors of Join, for callers that map them to statuses (409); they are
// competition's, so one errors.Is serves pools and plain competitions.
var (
	// ErrDuplicateEntry: the model (its digest) already has an active entry.
	ErrDuplicateEntry = competition.ErrDuplicateEntry
	// ErrEntryLimit: the key has as many active entries as it may.
	ErrEntryLimit = competition.ErrEntryLimit
)

// copies finds the entrants whose raw responses on the given items copy an
// earlier entrant's (see CopyRule), or that entered an earlier entrant's
// digest (an artifact tree joined again, the only digest a pool lets in
// twice), mapping each copy to its original. Failed entrants are left out:
// they neither copy nor are copied.
func (s *Service) copies(ctx context.Context, subs []competition.Submission, include []bool) (map[string]string, error) {
	var outs []incentive.Output
	for _, sub := range subs {
		if sub.State == competition.StateFailed {
			continue
		}
		all, err := s.cfg.DB.ItemResponses(ctx, sub.ID)
		if err != nil {
			return nil, err
		}
		side := map[int]string{}
		for i, r := range all {
			if i < len(include) && include[i] {
				side[i] = r
			}
		}
		outs = append(outs, incentive.Output{ID: sub.ID, Digest: sub.Digest, CommittedAt: sub.CommittedAt, Responses: side})
	}
	return incentive.CopiesBy(outs, CopyRule), nil
}
