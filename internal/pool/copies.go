package pool

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"crucible/internal/competition"
	"crucible/internal/incentive"
)

// CopyRule decides when an entrant's raw responses make it a copy of an
// earlier entrant: identical raw text on at least 95 % of the items both
// answered, over at least 20 such items. Raw text, not extracted letters:
// two strong models agree on most letters, but not word for word.
var CopyRule = incentive.CopyRule{MinItems: 20, Agreement: 0.95}

// DefaultMaxEntriesPerKey is how many active entries one key may have in a
// pool unless Config.MaxEntriesPerKey says otherwise.
const DefaultMaxEntriesPerKey = 3

// Errors of Join, for callers that map them to statuses (409).
var (
	// ErrDuplicateEntry: the model (its digest) already has an active entry.
	ErrDuplicateEntry = errors.New("the same model is already entered")
	// ErrEntryLimit: the key has as many active entries as it may.
	ErrEntryLimit = errors.New("entry limit reached")
)

// checkEntry refuses a join that would enter a model (by digest) a second
// time while its first entry is active (not failed), from any key, or give
// submitter more than the per-key limit of active entries. A failed entry
// frees its place, so a model whose endpoint broke may rejoin.
func (s *Service) checkEntry(ctx context.Context, tx *sql.Tx, poolID, submitter, digest string) error {
	subs, err := s.cfg.DB.ListSubmissionsTx(ctx, tx, poolID)
	if err != nil {
		return err
	}
	mine := 0
	for _, sub := range subs {
		if sub.State == competition.StateFailed {
			continue
		}
		if sub.Digest == digest {
			return fmt.Errorf("%w: copy of %s: pool %s already has this base URL and model", ErrDuplicateEntry, sub.ID, poolID)
		}
		if sub.Submitter == submitter {
			mine++
		}
	}
	if mine >= s.cfg.MaxEntriesPerKey {
		return fmt.Errorf("%w: key %s has %d active entries in pool %s, the most allowed", ErrEntryLimit, submitter, mine, poolID)
	}
	return nil
}

// copies finds the entrants whose raw responses on the given items copy an
// earlier entrant's (see CopyRule), mapping each copy to its original.
// Failed entrants are left out: they neither copy nor are copied.
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
		outs = append(outs, incentive.Output{ID: sub.ID, CommittedAt: sub.CommittedAt, Responses: side})
	}
	return incentive.CopiesBy(outs, CopyRule), nil
}
