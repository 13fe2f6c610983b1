package competition

import (
	"errors"
	"fmt"

	"crucible/internal/incentive"
)

// CopyRule decides when an entrant's raw responses make it a copy of an
// earlier entrant: identical raw text on at least 95 % of the items both
// answered, over at least 20 such items. Raw text, not extracted letters:
// two strong models agree on most letters, but not word for word. Pools
// use this rule too (pool.CopyRule is this variable).
var CopyRule = incentive.CopyRule{MinItems: 20, Agreement: 0.95}

// DefaultMaxEntriesPerKey is how many active entries one key may have in one
// competition unless the hub is configured otherwise.
const DefaultMaxEntriesPerKey = 3

// Errors of CheckEntry, for callers that map them to statuses (409).
var (
	// ErrDuplicateEntry: the model or predictions file (its digest)
	// already has an active entry.
	ErrDuplicateEntry = errors.New("the same model or predictions file is already entered")
	// ErrEntryLimit: the key has as many active entries as it may.
	ErrEntryLimit = errors.New("entry limit reached")
)

// Active reports whether a submission holds its place in a competition: a
// failed one frees it, so a model whose endpoint broke may be entered again.
func (s Submission) Active() bool {
	return s.State != StateFailed && s.State != StateInfraFailed
}

// CheckEntry refuses a new entry of the model with digest by submitter into
// a competition whose submissions are subs: the same model (digest) may have
// one active entry, from any key, and one key at most maxPerKey active
// entries (0: no per-key limit). An artifact tree entered again is not
// refused: it is a copy, ranked and earning nothing (MarkCopies; the
// earliest commit is the original).
func CheckEntry(subs []Submission, submitter, digest string, maxPerKey int) error {
	return EntrantsOf(subs, submitter, digest).Check(submitter, maxPerKey)
}

// Entrants is what CheckEntry needs to know of a competition's active
// entries for one new entry: the first (in commit order) that is not an
// artifact and has the new entry's digest, and how many its submitter
// has. The store reads it with two indexed queries (store.EntrantsAndQuotasTx)
// instead of every submission; EntrantsOf derives it from the full list.
type Entrants struct {
	// Copy is the id of the active non-artifact entry with the digest
	// ("": none); CompetitionID names its competition for the refusal.
	Copy, CompetitionID string
	// ByKey counts the submitter's active entries.
	ByKey int
}

// EntrantsOf returns the Entrants of subs (in commit order) for an entry
// of digest by submitter.
func EntrantsOf(subs []Submission, submitter, digest string) Entrants {
	var e Entrants
	for _, sub := range subs {
		if !sub.Active() {
			continue
		}
		if e.Copy == "" && sub.Digest == digest && sub.Artifact == nil {
			e.Copy, e.CompetitionID = sub.ID, sub.CompetitionID
		}
		if sub.Submitter == submitter {
			e.ByKey++
		}
	}
	return e
}

// Check refuses the entry by submitter if its model is already entered
// (ErrDuplicateEntry) or the key has maxPerKey active entries
// (ErrEntryLimit; 0: no per-key limit).
func (e Entrants) Check(submitter string, maxPerKey int) error {
	if e.Copy != "" {
		return fmt.Errorf("%w: copy of %s: competition %s already has this base URL and model, or this predictions file (a failed entry frees its place)",
			ErrDuplicateEntry, e.Copy, e.CompetitionID)
	}
	if maxPerKey > 0 && e.ByKey >= maxPerKey {
		return fmt.Errorf("%w: key %s has %d active entries in this competition, the most allowed; an entry that fails frees its place",
			ErrEntryLimit, submitter, e.ByKey)
	}
	return nil
}

// MarkCopies sets CopyOf on the rows whose submissions copy an earlier
// row's (see CopyRule), given every ranked submission's raw responses by
// item index, or stand-ins equal exactly where they are (their hashes). A
// copy keeps its rank; it earns nothing. An empty response
// is not an answer: two predictions files that both leave most docs out
// (each scored 0, with no response) have not copied each other.
func MarkCopies(rows []Row, subs []Submission, responses map[string]map[int]string) {
	committed := map[string]Submission{}
	for _, s := range subs {
		committed[s.ID] = s
	}
	var outs []incentive.Output
	for _, r := range rows {
		if s, ok := committed[r.SubmissionID]; ok {
			answered := map[int]string{}
			for i, resp := range responses[s.ID] {
				if resp != "" {
					answered[i] = resp
				}
			}
			outs = append(outs, incentive.Output{ID: s.ID, Digest: s.Digest, CommittedAt: s.CommittedAt, Responses: answered})
		}
	}
	copies := incentive.CopiesBy(outs, CopyRule)
	for i := range rows {
		rows[i].CopyOf = copies[rows[i].SubmissionID]
	}
}
