package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"crucible/internal/intake"
)

// Default per-key quotas of `crucible serve`.
const (
	DefaultCompetitionsPerDay = 20
	DefaultSubmissionsPerDay  = 200
	DefaultOpenSubmissions    = 20
)

// quotaWindow is the rolling window of the daily quotas.
const quotaWindow = intake.QuotaWindow

// Quotas bound the work one signing key can put on the hub, so that one
// competitor (with one key or a few) cannot fill the queue, the database and
// every leaderboard. A zero field sets no limit. Keys are free to make, so
// quotas slow an attacker down rather than stop one; they keep an honest
// hub responsive while the operator reacts.
type Quotas struct {
	// CompetitionsPerDay bounds the competitions and pools a key creates in
	// any 24 hours.
	CompetitionsPerDay int
	// SubmissionsPerDay bounds the submissions (pool entries included) a key
	// makes in any 24 hours.
	SubmissionsPerDay int
	// OpenSubmissions bounds a key's submissions that are queued or running.
	OpenSubmissions int
	// EntriesPerKey bounds a key's active (not failed) entries in one model
	// competition or pool, so one key cannot flood a leaderboard with
	// variants; each model (digest) may have one active entry whatever
	// this says.
	EntriesPerKey int
	// Exempt lists operator key ids, which no quota applies to.
	Exempt []string
}

// tooManyRequests answers 429 with a Retry-After of at least one second.
func tooManyRequests(w http.ResponseWriter, retry time.Duration, format string, args ...any) error {
	secs := max(int64((retry+time.Second-1)/time.Second), 1)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return &httpError{http.StatusTooManyRequests, fmt.Sprintf(format, args...) + fmt.Sprintf(" (retry in %ds)", secs)}
}

func (s *Server) exempt(key string) bool { return slices.Contains(s.cfg.Quotas.Exempt, key) }

// checkCompetitionQuota refuses a request that would create one competition
// more than the signer's daily quota. Every route that creates a
// competition or pool calls it before any other work.
func (s *Server) checkCompetitionQuota(w http.ResponseWriter, r *http.Request) error {
	limit, key := s.cfg.Quotas.CompetitionsPerDay, signer(r.Context())
	if limit == 0 || s.exempt(key) {
		return nil
	}
	now := s.cfg.Clock.Now().UTC()
	u, err := s.cfg.DB.CompetitionsCreatedSince(r.Context(), key, now.Add(-quotaWindow))
	if err != nil {
		return err
	}
	if u.Count >= limit {
		return tooManyRequests(w, u.Oldest.Add(quotaWindow).Sub(now),
			"quota: key %s created %d competitions in the last 24 hours; the limit is %d", key, u.Count, limit)
	}
	return nil
}

// submissionQuota is key's submission quota for the intake to check in the
// submission's transaction; nil: none (an operator, or no limits set).
func (s *Server) submissionQuota(key string) *intake.Quota {
	q := s.cfg.Quotas
	if s.exempt(key) || q.SubmissionsPerDay == 0 && q.OpenSubmissions == 0 {
		return nil
	}
	return &intake.Quota{PerDay: q.SubmissionsPerDay, Open: q.OpenSubmissions}
}

// quotaRefusal answers an entry the intake refused by its key's quota
// (an *intake.QuotaError) with a 429 and its Retry-After; nil for any
// other outcome.
func quotaRefusal(w http.ResponseWriter, err error) error {
	if qe := (*intake.QuotaError)(nil); errors.As(err, &qe) {
		return tooManyRequests(w, qe.Retry, "%s", qe.Error())
	}
	return nil
}
