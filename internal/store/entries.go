package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"crucible/internal/competition"
)

// entrantsLockClass is the first key of the advisory locks LockTx
// takes (PostgreSQL's two-key form, which never meets the one-key locks
// such as the migrations').
const entrantsLockClass = 727274002

// Locks are the entry locks one transaction takes at once (LockTx).
type Locks struct{ keys []int32 }

// Entrants adds the locks on competition id's entrants with digests or by
// submitters, so that a check of those entrants and the insert that
// follows cannot interleave with another entry's of the same model or key.
// Entries of other models by other keys take other locks and commit side
// by side: a lock on the whole competition would run its entries'
// transactions one at a time, round trips and commit flush included
// (bench/ingest).
func (l *Locks) Entrants(id string, digests, submitters []string) {
	for _, d := range digests {
		l.add(id + "\x00d\x00" + d)
	}
	for _, k := range submitters {
		l.add(id + "\x00k\x00" + k)
	}
}

// Quotas adds the locks on submitters' quotas, which span every
// competition: a quota read and the insert it allows cannot interleave with
// another submission's by the same key wherever it goes.
func (l *Locks) Quotas(submitters []string) {
	for _, k := range submitters {
		l.add("\x00q\x00" + k)
	}
}

func (l *Locks) add(name string) {
	h := fnv.New32a()
	h.Write([]byte(name))
	l.keys = append(l.keys, int32(h.Sum32()))
}

// LockTx takes l's locks until tx ends. On PostgreSQL they are transaction
// advisory locks on a 32-bit hash of each name, all taken in one statement
// in ascending order, so two transactions never wait on each other's; two
// names sharing a hash only wait for each other. SQLite runs one write
// transaction at a time: nothing to take.
func (db *DB) LockTx(ctx context.Context, tx *sql.Tx, l *Locks) error {
	if db.dialect != Postgres || len(l.keys) == 0 {
		return nil
	}
	keys := slices.Clone(l.keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	// unnest yields the array in order, and each row takes its lock before
	// the next is read.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k`, entrantsLockClass, keys); err != nil {
		return fmt.Errorf("lock the entrants: %w", err)
	}
	return nil
}

// CompetitionToEnter returns competition id and whether it is a funded
// pool: what a new entry needs first, in one query (GetCompetition and
// GetPool would be two on every submission), read once per process: a
// competition row is never updated or deleted, and a pool is stored in
// its competition's transaction, so the answer never changes once the
// competition exists.
func (db *DB) CompetitionToEnter(ctx context.Context, id string) (competition.Competition, bool, error) {
	if e, ok := db.toEnter.get(id); ok {
		return e.c, e.pool, nil
	}
	var pool bool
	st, err := db.readStmt(ctx, `SELECT `+competitionColumns+`,
		EXISTS (SELECT 1 FROM pools p WHERE p.competition_id = competitions.id) FROM competitions WHERE id = ?`)
	if err != nil {
		return competition.Competition{}, false, err
	}
	c, err := scanCompetition(withExtra{st.QueryRowContext(ctx, id), &pool})
	if errors.Is(err, sql.ErrNoRows) {
		// Not cached: another process may create it yet.
		return c, false, fmt.Errorf("competition %s: %w", id, ErrNotFound)
	}
	if err == nil {
		db.toEnter.put(enterable{c, pool})
	}
	return c, pool, err
}

// enterCache holds CompetitionToEnter's answers, within a bound on their
// configurations' bytes (a task competition's holds a task file of up to
// a MiB); full, it starts over.
type enterCache struct {
	mu    sync.Mutex
	m     map[string]enterable
	bytes int
}

type enterable struct {
	c    competition.Competition
	pool bool
}

// maxEnterCacheBytes bounds the cached configurations' bytes.
const maxEnterCacheBytes = 8 << 20

// get returns id's entry, with a configuration of its own (the cached
// one is never handed out to be changed).
func (ec *enterCache) get(id string) (enterable, bool) {
	ec.mu.Lock()
	e, ok := ec.m[id]
	ec.mu.Unlock()
	e.c.Config = slices.Clone(e.c.Config)
	return e, ok
}

func (ec *enterCache) put(e enterable) {
	e.c.Config = slices.Clone(e.c.Config)
	n := len(e.c.ID) + len(e.c.Config)
	if n > maxEnterCacheBytes/64 {
		return // rare and large: read it each time rather than crowd out the rest
	}
	ec.mu.Lock()
	defer ec.mu.Unlock()
	if ec.m == nil || ec.bytes+n > maxEnterCacheBytes {
		ec.m, ec.bytes = map[string]enterable{}, 0
	}
	if _, ok := ec.m[e.c.ID]; !ok {
		ec.m[e.c.ID], ec.bytes = e, ec.bytes+n
	}
}

// withExtra scans one more column after what its caller asks for.
type withExtra struct {
	row   scanner
	extra any
}

func (w withExtra) Scan(dest ...any) error { return w.row.Scan(append(dest, w.extra)...) }

// EntrantsAndQuotasTx reads, inside tx, what the entry rules need of a
// competition's active entries for a batch of new entries with digests by
// submitters: the earliest active non-artifact entry of each digest (by
// digest; absent: none) and each submitter's count of active entries (by
// submitter), by indexed lookups rather than every submission
// (competition.EntrantsOf over ListSubmissionsTx gives the same for one
// entry); and, for quotaKeys (none: not read), SubmissionQuotasTx since
// since, in the same statement: one round trip fewer inside the batch's
// locks.
func (db *DB) EntrantsAndQuotasTx(ctx context.Context, tx *sql.Tx, competitionID string, digests, submitters, quotaKeys []string,
	since time.Time) (copies map[string]string, byKey map[string]int, usage map[string]KeyUsage, err error) {
	copies, byKey, usage = map[string]string{}, map[string]int{}, map[string]KeyUsage{}
	if len(digests) == 0 || len(submitters) == 0 {
		return copies, byKey, usage, errors.New("an entry check needs the batch's digests and keys")
	}
	query, args := entrantsQuery(db.dialect, competitionID, digests, submitters, quotaKeys, since)
	rows, err := tx.QueryContext(ctx, db.rebind(query), args...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("entries of %s by digest and key: %w", competitionID, err)
	}
	defer rows.Close()
	first := map[string]int64{}
	for rows.Next() {
		var kind, id, spec, digest string
		var n int64 // committed_at, or a submitter's count
		if err := rows.Scan(&kind, &id, &spec, &digest, &n); err != nil {
			return nil, nil, nil, err
		}
		switch kind {
		case "k":
			byKey[digest] = int(n)
			continue
		case "q", "m", "o":
			addQuotaRow(usage, kind, digest, n)
			continue
		}
		if cur, ok := copies[digest]; ok && (n > first[digest] || n == first[digest] && id > cur) {
			continue
		}
		var st storedSpec
		if err := json.Unmarshal([]byte(spec), &st); err != nil {
			return nil, nil, nil, fmt.Errorf("submission %s spec: %w", id, err)
		}
		if st.Artifact == nil {
			copies[digest], first[digest] = id, n
		}
	}
	return copies, byKey, usage, rows.Err()
}

// entrantsQuery is EntrantsAndQuotasTx's statement and its arguments,
// with ? placeholders. All the reads go in one statement: it runs inside
// the batch's locks, where every round trip to the database holds up the
// next batch. Rows with kind 'd' are entries by digest, 'k' a submitter's
// count, 'q', 'm' and 'o' a quota key's usage (addQuotaRow); a count of
// zero may come as a row or not at all. Digests and keys are looked up on
// the concatenated (competition, digest) and (competition, key), the
// expressions of their indexes (migration 0015), which no other index
// serves. No ORDER BY: the earliest entry of a digest is picked by the
// caller.
//
// On PostgreSQL the statement is one text for every batch (the values go
// in arrays), and each value is its own index lookup, driven from the
// array by a lateral subquery (OFFSET 0 keeps it from being flattened into
// a join the planner may run as a scan): the plan no longer depends on
// what the statistics say. With IN lists the planner took a competition it
// had no statistics for to hold one row and walked all its entries on each
// batch through an index led by the competition, or, with no statistics at
// all, guessed an IN list matched a tenth of the table and scanned it; the
// texts, one per batch shape, were also prepared anew on each connection
// (bench/ingest; TestEntryLookupsServeANewCompetition). SQLite plans an IN
// list on its index whatever it knows, so it keeps them.
func entrantsQuery(dialect Dialect, competitionID string, digests, submitters, quotaKeys []string, since time.Time) (string, []any) {
	failed, infra := string(competition.StateFailed), string(competition.StateInfraFailed)
	if dialect == Postgres {
		q, qargs := quotaQuery(dialect, quotaKeys, since)
		return `SELECT 'd', s.id, s.spec, s.digest, s.committed_at FROM unnest(?::text[]) AS k(v)
		CROSS JOIN LATERAL (SELECT id, spec, digest, committed_at FROM submissions
			WHERE competition_id || ' ' || digest = ?::text || ' ' || k.v AND state NOT IN (?, ?) OFFSET 0) s
		UNION ALL
		SELECT 'k', '', '', k.v, (SELECT COUNT(*) FROM submissions
			WHERE competition_id || ' ' || submitter = ?::text || ' ' || k.v AND state NOT IN (?, ?)) FROM unnest(?::text[]) AS k(v)
		UNION ALL
		` + q, append([]any{digests, competitionID, failed, infra, competitionID, failed, infra, submitters}, qargs...)
	}
	var args []any
	for _, d := range digests {
		args = append(args, competitionID+" "+d)
	}
	args = append(args, failed, infra)
	for _, k := range submitters {
		args = append(args, competitionID+" "+k)
	}
	args = append(args, failed, infra)
	query := `SELECT 'd', id, spec, digest, committed_at FROM submissions
		WHERE competition_id || ' ' || digest IN (` + marks(len(digests)) + `) AND state NOT IN (?, ?)
		UNION ALL
		SELECT 'k', '', '', submitter, COUNT(*) FROM submissions
		WHERE competition_id || ' ' || submitter IN (` + marks(len(submitters)) + `) AND state NOT IN (?, ?) GROUP BY submitter`
	if len(quotaKeys) > 0 {
		q, qargs := quotaQuery(dialect, quotaKeys, since)
		query, args = query+"\n\t\tUNION ALL\n\t\t"+q, append(args, qargs...)
	}
	return query, args
}

// marks returns n comma-separated ? placeholders.
func marks(n int) string {
	return strings.Repeat("?, ", max(n-1, 0)) + "?"
}
