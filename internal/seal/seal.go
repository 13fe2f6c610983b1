// Package seal is the one place that decides what the public may see of a
// competition's submissions, results and items. A funded pool ranks its
// payout on a secret set of private items until it settles; while it is
// open, anything derived from those items — a score over all items (the
// private score follows from it and the public leaderboard by
// subtraction), a private item's result, which items are private — stays
// hidden. The viewer does not change that: the API's reads are unsigned,
// and an owner shown its own private score could probe the private set with
// resubmissions. Settlement, not the clock, unseals a pool: a pool that ended
// but has not settled may still be evaluated by its final tick. A roleplay
// competition with fresh items seals the running epoch's seed, items and
// every result on them until the epoch ends (epochs.go); there the clock
// decides, because every evaluation on them happens before. A predictions
// submission's results stay hidden for good: they would show the targets
// its competition keeps hidden.
//
// Reads for public views (every API GET, every web page) go through Public,
// which returns already-sealed data, so a new route cannot forget to seal.
// Services that rank or pay (pool, epoch, validator) read the store itself.
// This package must never import the API, the web UI or the job queue.
package seal

import (
	"context"
	"encoding/json"
	"errors"
	"math"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/pool"
	"crucible/internal/store"
)

// Policy is what may be shown of one competition now. Its zero value seals
// nothing.
type Policy struct {
	// private marks the items to hide; nil when nothing is sealed.
	private []bool
}

// For returns the policy of competition c, whose pool is p (nil when c is
// not a pool): an open pool seals its private items, anything else nothing.
func For(c competition.Competition, p *competition.Pool) Policy {
	var pol Policy
	if p != nil && p.State == competition.PoolOpen {
		pol.private = pool.NewSplit(c.Items, p.PrivateFraction, p.Seed).Private
	}
	return pol
}

// Sealed reports whether anything of the competition is hidden.
func (p Policy) Sealed() bool { return p.private != nil }

// Private reports whether item i is hidden.
func (p Policy) Private(i int) bool { return i >= 0 && i < len(p.private) && p.private[i] }

// Submission hides a submission's card (its score over all items) when the
// private items are sealed, and a code-fix submission's diff always: a
// resolving patch read off the hub is a fix anyone could submit as their own
// (under another key, with a changed comment, the copy rule cannot tell).
// The public sees the diff's sha256 and size; the competition's creator,
// operators and staked validators read diffs through signed routes.
func (p Policy) Submission(sub competition.Submission) competition.Submission {
	if p.Sealed() {
		sub.Card = nil
	}
	if sub.Patch != nil {
		sealed := competition.SealedPatch(*sub.Patch)
		sub.Patch = &sealed
	}
	return sub
}

// Results drops the results of hidden items. They are dropped, not
// redacted in place: even a redacted row's index would tell which items
// are private.
func (p Policy) Results(results []eval.Result) []eval.Result {
	if !p.Sealed() {
		return results
	}
	var out []eval.Result
	for _, r := range results {
		if !p.Private(r.Index) {
			out = append(out, r)
		}
	}
	return out
}

// Items drops the hidden items of a competition's item list (in item order).
func (p Policy) Items(items []json.RawMessage) []json.RawMessage {
	if !p.Sealed() {
		return items
	}
	var out []json.RawMessage
	for i, it := range items {
		if !p.Private(i) {
			out = append(out, it)
		}
	}
	return out
}

// Public is the store as the public sees it: the reads below return sealed
// data; every other method is the store's own and carries nothing private.
type Public struct {
	*store.DB
}

// Policy returns the sealing policy of a competition now.
func (s Public) Policy(ctx context.Context, competitionID string) (Policy, error) {
	c, err := s.DB.GetCompetition(ctx, competitionID)
	if err != nil {
		return Policy{}, err
	}
	return s.PolicyOf(ctx, c)
}

// PolicyOf is Policy for a competition the caller has read already.
func (s Public) PolicyOf(ctx context.Context, c competition.Competition) (Policy, error) {
	p, err := s.DB.GetPool(ctx, c.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return For(c, nil), nil
	case err != nil:
		return Policy{}, err
	}
	return For(c, &p), nil
}

// LeaderboardState returns competition id, its policy now and its
// leaderboard version, read in one statement (store.DB.LeaderboardState):
// a leaderboard read checks the seal and its cache with one query.
func (s Public) LeaderboardState(ctx context.Context, id string) (competition.Competition, Policy, int64, error) {
	st, err := s.DB.LeaderboardState(ctx, id)
	if err != nil {
		return competition.Competition{}, Policy{}, 0, err
	}
	return st.Competition, For(st.Competition, st.Pool), st.Version, nil
}

// GetSubmission returns a submission as the public may see it.
func (s Public) GetSubmission(ctx context.Context, id string) (competition.Submission, error) {
	sub, err := s.DB.GetSubmission(ctx, id)
	if err != nil {
		return sub, err
	}
	pol, err := s.Policy(ctx, sub.CompetitionID)
	return pol.Submission(sub), err
}

// ListSubmissions returns a competition's submissions as the public may see them.
func (s Public) ListSubmissions(ctx context.Context, competitionID string) ([]competition.Submission, error) {
	subs, err := s.DB.ListSubmissions(ctx, competitionID)
	return s.sealSubmissions(ctx, competitionID, subs, err)
}

// ListSubmissionsPage returns a page of a competition's submissions (see
// store.DB.ListSubmissionsPage) as the public may see them.
func (s Public) ListSubmissionsPage(ctx context.Context, competitionID, after string, limit int) ([]competition.Submission, error) {
	subs, err := s.DB.ListSubmissionsPage(ctx, competitionID, after, limit)
	return s.sealSubmissions(ctx, competitionID, subs, err)
}

// sealSubmissions applies the competition's policy to submissions just read
// (err is the read's error). The policy is read after them: a pool is
// only ever unsealed, so submissions read while it was open are sealed.
func (s Public) sealSubmissions(ctx context.Context, competitionID string, subs []competition.Submission, err error) ([]competition.Submission, error) {
	if err != nil {
		return nil, err
	}
	pol, err := s.Policy(ctx, competitionID)
	if err != nil {
		return nil, err
	}
	for i := range subs {
		subs[i] = pol.Submission(subs[i])
	}
	return subs, nil
}

// Results returns a page of the results the public may see, in item order;
// offset and limit count visible results only.
func (s Public) Results(ctx context.Context, submissionID string, offset, limit int) ([]eval.Result, error) {
	sub, err := s.DB.GetSubmission(ctx, submissionID)
	if err != nil {
		return nil, err
	}
	pol, err := s.Policy(ctx, sub.CompetitionID)
	if err != nil {
		return nil, err
	}
	if !pol.Sealed() {
		page, err := s.DB.Results(ctx, submissionID, offset, limit)
		return entryResults(sub, pol.Results(page)), err
	}
	all, err := s.DB.Results(ctx, submissionID, 0, math.MaxInt32)
	if err != nil {
		return nil, err
	}
	visible := entryResults(sub, pol.Results(all))
	if offset >= len(visible) {
		return nil, nil
	}
	return visible[offset:min(len(visible), offset+limit)], nil
}

// entryResults hides what a result repeats of a sealed entry: a patch
// submission's result response is its diff (see Policy.Submission). A
// predictions submission's results are hidden whole: their details hold
// the targets the competition keeps hidden, and even an item's score
// tells its submitter whether a guess was the target. It goes by the
// submission, not its competition's kind, so nothing needs to name one.
func entryResults(sub competition.Submission, results []eval.Result) []eval.Result {
	if sub.Predictions != nil {
		return nil
	}
	if sub.Patch == nil {
		return results
	}
	out := make([]eval.Result, len(results))
	for i, r := range results {
		r.Response = ""
		out[i] = r
	}
	return out
}

// VisibleResults is how many of a submission's evaluated items the public
// may see the results of (what a results pager counts).
func (s Public) VisibleResults(ctx context.Context, sub competition.Submission) (int, error) {
	if sub.Predictions != nil {
		return 0, nil
	}
	pol, err := s.Policy(ctx, sub.CompetitionID)
	if err != nil || !pol.Sealed() {
		return sub.ItemsDone, err
	}
	all, err := s.DB.Results(ctx, sub.ID, 0, math.MaxInt32)
	return len(pol.Results(all)), err
}

// CompetitionItems returns the items the public may see, in item order.
func (s Public) CompetitionItems(ctx context.Context, id string) ([]json.RawMessage, error) {
	items, err := s.DB.CompetitionItems(ctx, id)
	if err != nil {
		return nil, err
	}
	pol, err := s.Policy(ctx, id)
	return pol.Items(items), err
}
