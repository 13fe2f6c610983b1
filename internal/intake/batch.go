package intake

import (
	"context"
	"database/sql"
	"maps"
	"slices"
	"time"

	"crucible/internal/competition"
	"crucible/internal/identity"
	"crucible/internal/store"
)

// maxBatch bounds the submissions one group-commit transaction stores, so
// one transaction's locks and latency stay small however many wait.
const maxBatch = 256

// linger bounds how long a committer, while another batch commits, waits
// for as many submissions as the last batch held (groupcommit.Queue's
// Linger): on PostgreSQL, where pgWriters batches commit side by side,
// it keeps them from splitting what waits into batches of a few, each
// paying a transaction's fixed cost. SQLite's one writer never waits.
const linger = 2 * time.Millisecond

// pgWriters is how many batches commit at once on PostgreSQL. Batches
// lock only their own models and keys (store.Locks, LockTx), so two
// overlap one's round trips and commit flush with the other's work, and
// more than two split the submissions into smaller batches (bench/ingest
// at c=32, two runs each: 1 writer 2,034–2,142/s, 2 writers 2,782–3,192,
// 3 writers 2,381–3,129, 4 writers 2,406–2,629).
const pgWriters = 2

// pending is one Submit waiting for its transaction; err is its own
// outcome, set before done is closed.
type pending struct {
	ctx    context.Context
	c      competition.Competition
	e      Entry
	sub    competition.Submission
	secret string
	err    error
	// burned: p's nonce (if any) was burned by a committed batch, or
	// found already used.
	burned bool
	done   chan struct{}
}

// commit stores p in the next batch and returns its own outcome. Submits
// that arrive while a transaction commits wait, and the next transaction
// stores them all (their entry checks, rows and one River InsertManyTx of
// their jobs), so under load the database sees one commit per batch
// instead of one per submission.
func (s *Service) commit(p *pending) error {
	p.done = make(chan struct{})
	s.batch.Add(p)
	<-p.done
	return p.err
}

// commitBatch stores batch in one transaction and tells each caller its
// own outcome. A caller that gave up before the batch began is left out.
// An entry refused by the rules is checked before anything of it is
// written, so it leaves its batch-mates' transaction intact. Any other
// failure rolls back the whole transaction; each entry is then committed
// alone, so one entry's database error is its own and never a batch-mate's.
func (s *Service) commitBatch(batch []*pending) {
	live := batch[:0:0]
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.err = err
			close(p.done)
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	// The transaction serves every caller in it: none of their
	// cancellations may cut it off halfway for the others.
	ctx := context.WithoutCancel(live[0].ctx)
	start := time.Now()
	err := s.cfg.DB.InTx(ctx, func(tx *sql.Tx) error { return s.store(ctx, tx, live) })
	s.cfg.Metrics.batch(len(live), time.Since(start))
	if err != nil && len(live) > 1 {
		for _, p := range live {
			s.commitBatch([]*pending{p})
		}
		return
	}
	for _, p := range live {
		if err != nil {
			p.err = err
		}
		p.burned = err == nil
		close(p.done)
	}
}

// store writes batch inside tx. It takes, in one statement, the locks on
// the quotas of the batch's keys that have one and, for kinds that rank
// models, on each competition's entrants of the batch (its models and
// keys), reads the keys' quota usage in one statement, and for ranked
// kinds reads each competition's entrants for the whole batch at once
// and applies the quotas and then the entry rules to each entry in
// arrival order against the entries stored before it, batch-mates accepted
// ahead of it included: exactly what one transaction per entry would
// decide. Pool entries take their pool's lock instead of the entrants'.
// A refusal is set on its entry and nothing of it is written. The accepted
// rows go in with one insert and their evaluations (none for pool entries)
// with another.
func (s *Service) store(ctx context.Context, tx *sql.Tx, batch []*pending) error {
	db := s.cfg.DB
	if err := s.burnNonces(ctx, tx, batch); err != nil {
		return err
	}
	ranked := map[string]*entrants{}
	for _, p := range batch {
		if p.err == nil && s.cfg.Kinds.RanksModels(p.c.Kind) {
			ent := ranked[p.c.ID]
			if ent == nil {
				ent = &entrants{}
				ranked[p.c.ID] = ent
			}
			ent.digests = append(ent.digests, p.sub.Digest)
			ent.submitters = append(ent.submitters, p.e.Submitter)
		}
	}
	ids := slices.Sorted(maps.Keys(ranked))
	var locks store.Locks
	var quotaKeys []string
	for _, p := range batch {
		if p.err == nil && p.e.Quota != nil {
			quotaKeys = append(quotaKeys, p.e.Submitter)
		}
	}
	locks.Quotas(quotaKeys)
	for _, id := range ids {
		if batch[0].e.Pool {
			// A pool entry commits alone (Submit), under the lock the
			// pool's ticks and settlement take.
			if err := db.LockPoolTx(ctx, tx, id); err != nil {
				return err
			}
			continue
		}
		locks.Entrants(id, ranked[id].digests, ranked[id].submitters)
	}
	// Every competition's entrant locks and every key's quota lock in one
	// statement, in one order, so no two batches wait on each other's.
	if err := db.LockTx(ctx, tx, &locks); err != nil {
		return err
	}
	now := s.cfg.Clock.Now().UTC()
	if len(quotaKeys) > 0 {
		quotaKeys = slices.Compact(slices.Sorted(slices.Values(quotaKeys)))
	}
	var usage map[string]store.KeyUsage
	for i, id := range ids {
		ent := ranked[id]
		// The quotas ride with the first competition's entrants: one
		// round trip fewer under the locks.
		var keys []string
		if i == 0 {
			keys = quotaKeys
		}
		var err error
		var u map[string]store.KeyUsage
		if ent.copies, ent.byKey, u, err = db.EntrantsAndQuotasTx(ctx, tx, id, ent.digests, ent.submitters, keys, now.Add(-QuotaWindow)); err != nil {
			return err
		}
		if i == 0 {
			usage = u
		}
	}
	if len(quotaKeys) > 0 && len(ids) == 0 {
		var err error
		if usage, err = db.SubmissionQuotasTx(ctx, tx, quotaKeys, now.Add(-QuotaWindow)); err != nil {
			return err
		}
	}
	var subs []competition.Submission
	var secrets, jobs []string
	for _, p := range batch {
		if p.err != nil {
			continue
		}
		if p.e.Quota != nil {
			if err := p.e.Quota.check(p.e.Submitter, usage[p.e.Submitter], now); err != nil {
				p.err = err
				continue
			}
		}
		if ent := ranked[p.c.ID]; ent != nil {
			if err := ent.admit(p); err != nil {
				p.err = conflict(err)
				continue
			}
		}
		if p.e.Quota != nil {
			// Counted for the batch-mates after it, as a stored
			// submission would be.
			u := usage[p.e.Submitter]
			if u.Count == 0 {
				u.Oldest = p.sub.CommittedAt
			}
			u.Count++
			u.Open++
			usage[p.e.Submitter] = u
		}
		subs, secrets = append(subs, p.sub), append(secrets, p.secret)
		if !p.e.Pool {
			jobs = append(jobs, p.sub.ID)
		}
	}
	if err := db.CreateSubmissionsTx(ctx, tx, subs, secrets); err != nil {
		return err
	}
	if len(jobs) == 0 {
		return nil
	}
	return s.cfg.Evaluations.EnqueueEvaluationsTx(ctx, tx, jobs)
}

// burnNonces burns the batch's nonces in tx, first (so they commit with
// what their requests wrote, refusals included) and resets each entry's
// outcome: a replayed one is refused and takes no part in the rest.
func (s *Service) burnNonces(ctx context.Context, tx *sql.Tx, batch []*pending) error {
	var uses []store.NonceUse
	var with []*pending
	for _, p := range batch {
		p.err = nil
		if p.e.Nonce != nil {
			uses, with = append(uses, *p.e.Nonce), append(with, p)
		}
	}
	if len(uses) == 0 {
		return nil
	}
	fresh, err := s.cfg.DB.UseNoncesTx(ctx, tx, uses)
	if err != nil {
		return err
	}
	for i, p := range with {
		if !fresh[i] {
			p.err = identity.Replayed(p.e.Nonce.Nonce)
		}
	}
	return nil
}

// entrants is one competition's active entries as a batch's entry rules
// see them: read from the store for the batch's digests and submitters,
// then updated with each entry the batch accepts.
type entrants struct {
	digests, submitters []string
	copies              map[string]string // digest → the earliest active non-artifact entry
	byKey               map[string]int    // submitter → active entries
}

// admit applies competition's entry rules to p and, if it passes, counts
// it as an active entry for the entries after it.
func (ent *entrants) admit(p *pending) error {
	e := competition.Entrants{Copy: ent.copies[p.sub.Digest], ByKey: ent.byKey[p.e.Submitter]}
	if e.Copy != "" {
		e.CompetitionID = p.c.ID
	}
	if err := e.Check(p.e.Submitter, p.e.Limit); err != nil {
		return err
	}
	if p.sub.Artifact == nil {
		ent.copies[p.sub.Digest] = p.sub.ID
	}
	ent.byKey[p.e.Submitter]++
	return nil
}
