package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrAlreadyRated is returned when a miner rates a task it has already rated.
var ErrAlreadyRated = errors.New("already rated")

// PreferenceTask is one canonical task of a preference competition. Task is
// the kind's JSON (eval/preference.Task); the store only reads the deadline.
type PreferenceTask struct {
	CompetitionID string          `json:"competition_id"`
	TaskID        string          `json:"task_id"`
	Index         int             `json:"index"`
	Deadline      time.Time       `json:"deadline"`
	Task          json.RawMessage `json:"task"`
}

// PreferenceCopy is one miner's obfuscated copy of a task with the mapping
// back (eval/preference.Copy as JSON).
type PreferenceCopy struct {
	CompetitionID string          `json:"competition_id"`
	TaskID        string          `json:"task_id"`
	Miner         string          `json:"miner"`
	Copy          json.RawMessage `json:"copy"`
	CreatedAt     time.Time       `json:"created_at"`
}

// PreferenceRating is a miner's de-obfuscated answer to a task: Values[i]
// belongs to canonical response i. Contributor is the contributor key id
// that submitted it.
type PreferenceRating struct {
	CompetitionID string    `json:"competition_id"`
	TaskID        string    `json:"task_id"`
	Miner         string    `json:"miner"`
	Contributor   string    `json:"contributor"`
	Values        []int     `json:"values"`
	SubmittedAt   time.Time `json:"submitted_at"`
}

// ContributorKey is a key a miner hands to a person who labels for it. Only
// the sha256 of the secret is stored.
type ContributorKey struct {
	ID        string     `json:"id"`
	Miner     string     `json:"miner"`
	Label     string     `json:"label,omitempty"`
	Hash      string     `json:"-"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Revoked reports whether the key has been revoked.
func (k ContributorKey) Revoked() bool { return k.RevokedAt != nil }

// InsertPreferenceTasks stores canonical tasks; a task already stored is
// left as it is, so materialising tasks twice is harmless.
func (db *DB) InsertPreferenceTasks(ctx context.Context, tasks []PreferenceTask) error {
	return db.InTx(ctx, func(tx *sql.Tx) error { return db.InsertPreferenceTasksTx(ctx, tx, tasks) })
}

// InsertPreferenceTasksTx is InsertPreferenceTasks inside tx.
func (db *DB) InsertPreferenceTasksTx(ctx context.Context, tx *sql.Tx, tasks []PreferenceTask) error {
	stmt, err := tx.PrepareContext(ctx, db.rebind(`INSERT INTO preference_tasks (competition_id, task_id, idx, deadline, task)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (competition_id, task_id) DO NOTHING`))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, t := range tasks {
		if _, err := stmt.ExecContext(ctx, t.CompetitionID, t.TaskID, t.Index, micros(t.Deadline), string(t.Task)); err != nil {
			return fmt.Errorf("insert preference task %s of %s: %w", t.TaskID, t.CompetitionID, err)
		}
	}
	return nil
}

// PreferenceTasks returns a competition's tasks in order.
func (db *DB) PreferenceTasks(ctx context.Context, competitionID string) ([]PreferenceTask, error) {
	return queryAll(ctx, db.sql, func(rows scanner) (PreferenceTask, error) {
		var t PreferenceTask
		var deadline int64
		var task string
		if err := rows.Scan(&t.CompetitionID, &t.TaskID, &t.Index, &deadline, &task); err != nil {
			return t, err
		}
		t.Deadline, t.Task = fromMicros(deadline), json.RawMessage(task)
		return t, nil
	}, db.rebind(`SELECT competition_id, task_id, idx, deadline, task FROM preference_tasks
		WHERE competition_id = ? ORDER BY idx, task_id`), competitionID)
}

// PreferenceTask returns one task.
func (db *DB) PreferenceTask(ctx context.Context, competitionID, taskID string) (PreferenceTask, error) {
	t := PreferenceTask{CompetitionID: competitionID, TaskID: taskID}
	var deadline int64
	var task string
	err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT idx, deadline, task FROM preference_tasks
		WHERE competition_id = ? AND task_id = ?`), competitionID, taskID).Scan(&t.Index, &deadline, &task)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("task %s of competition %s: %w", taskID, competitionID, ErrNotFound)
	}
	t.Deadline, t.Task = fromMicros(deadline), json.RawMessage(task)
	return t, err
}

const copyColumns = `competition_id, task_id, miner, copy, created_at`

func scanCopy(row scanner) (PreferenceCopy, error) {
	var c PreferenceCopy
	var cp string
	var created int64
	err := row.Scan(&c.CompetitionID, &c.TaskID, &c.Miner, &cp, &created)
	c.Copy, c.CreatedAt = json.RawMessage(cp), fromMicros(created)
	return c, err
}

// InsertPreferenceCopy stores a miner's copy of a task. It returns false
// and changes nothing when the miner already has one.
func (db *DB) InsertPreferenceCopy(ctx context.Context, c PreferenceCopy) (bool, error) {
	res, err := db.sql.ExecContext(ctx, db.rebind(`INSERT INTO preference_copies (`+copyColumns+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (competition_id, task_id, miner) DO NOTHING`),
		c.CompetitionID, c.TaskID, c.Miner, string(c.Copy), micros(c.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("insert copy of task %s for %s: %w", c.TaskID, c.Miner, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// PreferenceCopies returns every copy of a task, oldest first.
func (db *DB) PreferenceCopies(ctx context.Context, competitionID, taskID string) ([]PreferenceCopy, error) {
	return queryAll(ctx, db.sql, scanCopy, db.rebind(`SELECT `+copyColumns+` FROM preference_copies
		WHERE competition_id = ? AND task_id = ? ORDER BY created_at, miner`), competitionID, taskID)
}

// PreferenceCopy returns a miner's copy of a task.
func (db *DB) PreferenceCopy(ctx context.Context, competitionID, taskID, miner string) (PreferenceCopy, error) {
	c, err := scanCopy(db.sql.QueryRowContext(ctx, db.rebind(`SELECT `+copyColumns+` FROM preference_copies
		WHERE competition_id = ? AND task_id = ? AND miner = ?`), competitionID, taskID, miner))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("no copy of task %s of competition %s for %s: %w", taskID, competitionID, miner, ErrNotFound)
	}
	return c, err
}

// NextPreferenceCopy returns the miner's copy with the earliest deadline
// after now that the miner has not rated yet, or ErrNotFound.
func (db *DB) NextPreferenceCopy(ctx context.Context, miner string, now time.Time) (PreferenceCopy, error) {
	c, err := scanCopy(db.sql.QueryRowContext(ctx, db.rebind(`SELECT c.competition_id, c.task_id, c.miner, c.copy, c.created_at
		FROM preference_copies c JOIN preference_tasks t ON t.competition_id = c.competition_id AND t.task_id = c.task_id
		WHERE c.miner = ? AND t.deadline > ? AND NOT EXISTS (SELECT 1 FROM preference_ratings r
			WHERE r.competition_id = c.competition_id AND r.task_id = c.task_id AND r.miner = c.miner)
		ORDER BY t.deadline, c.competition_id, t.idx LIMIT 1`), miner, micros(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("no open task for %s: %w", miner, ErrNotFound)
	}
	return c, err
}

// InsertPreferenceRating stores a rating; a second rating of the same task
// by the same miner is refused with ErrAlreadyRated.
func (db *DB) InsertPreferenceRating(ctx context.Context, r PreferenceRating) error {
	vals, err := json.Marshal(r.Values)
	if err != nil {
		return err
	}
	res, err := db.sql.ExecContext(ctx, db.rebind(`INSERT INTO preference_ratings
		(competition_id, task_id, miner, contributor, vals, submitted_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (competition_id, task_id, miner) DO NOTHING`),
		r.CompetitionID, r.TaskID, r.Miner, r.Contributor, string(vals), micros(r.SubmittedAt))
	if err != nil {
		return fmt.Errorf("insert rating of task %s by %s: %w", r.TaskID, r.Miner, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("task %s: %w by %s", r.TaskID, ErrAlreadyRated, r.Miner)
	}
	return nil
}

// PreferenceRatings returns a competition's ratings ordered by task and miner.
func (db *DB) PreferenceRatings(ctx context.Context, competitionID string) ([]PreferenceRating, error) {
	return queryAll(ctx, db.sql, func(rows scanner) (PreferenceRating, error) {
		var r PreferenceRating
		var vals string
		var at int64
		if err := rows.Scan(&r.CompetitionID, &r.TaskID, &r.Miner, &r.Contributor, &vals, &at); err != nil {
			return r, err
		}
		if err := json.Unmarshal([]byte(vals), &r.Values); err != nil {
			return r, fmt.Errorf("rating of task %s by %s: %w", r.TaskID, r.Miner, err)
		}
		r.SubmittedAt = fromMicros(at)
		return r, nil
	}, db.rebind(`SELECT competition_id, task_id, miner, contributor, vals, submitted_at
		FROM preference_ratings WHERE competition_id = ? ORDER BY task_id, miner`), competitionID)
}

const contributorColumns = `id, miner, label, key_hash, created_at, revoked_at`

func scanContributor(row scanner) (ContributorKey, error) {
	var k ContributorKey
	var created int64
	var revoked sql.NullInt64
	err := row.Scan(&k.ID, &k.Miner, &k.Label, &k.Hash, &created, &revoked)
	k.CreatedAt = fromMicros(created)
	if revoked.Valid {
		at := fromMicros(revoked.Int64)
		k.RevokedAt = &at
	}
	return k, err
}

// CreateContributorKey stores a contributor key (its hash, never the secret).
func (db *DB) CreateContributorKey(ctx context.Context, k ContributorKey) error {
	if k.Hash == "" {
		return errors.New("contributor key without a hash")
	}
	_, err := db.sql.ExecContext(ctx, db.rebind(`INSERT INTO contributor_keys (`+contributorColumns+`) VALUES (?, ?, ?, ?, ?, NULL)`),
		k.ID, k.Miner, k.Label, k.Hash, micros(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert contributor key: %w", err)
	}
	return nil
}

// ContributorKeys returns a miner's contributor keys, oldest first.
func (db *DB) ContributorKeys(ctx context.Context, miner string) ([]ContributorKey, error) {
	return queryAll(ctx, db.sql, scanContributor, db.rebind(`SELECT `+contributorColumns+` FROM contributor_keys
		WHERE miner = ? ORDER BY created_at, id`), miner)
}

// ContributorKeyByHash finds a contributor key by the sha256 of its secret,
// revoked or not.
func (db *DB) ContributorKeyByHash(ctx context.Context, hash string) (ContributorKey, error) {
	k, err := scanContributor(db.sql.QueryRowContext(ctx, db.rebind(`SELECT `+contributorColumns+` FROM contributor_keys
		WHERE key_hash = ?`), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("contributor key: %w", ErrNotFound)
	}
	return k, err
}

// RevokeContributorKey revokes one of a miner's contributor keys at at and
// returns it; revoking twice keeps the first time. A key of another miner
// is ErrNotFound.
func (db *DB) RevokeContributorKey(ctx context.Context, miner, id string, at time.Time) (ContributorKey, error) {
	var k ContributorKey
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.rebind(`UPDATE contributor_keys SET revoked_at = ?
			WHERE id = ? AND miner = ? AND revoked_at IS NULL`), micros(at), id, miner); err != nil {
			return err
		}
		var err error
		k, err = scanContributor(tx.QueryRowContext(ctx, db.rebind(`SELECT `+contributorColumns+` FROM contributor_keys
			WHERE id = ? AND miner = ?`), id, miner))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("contributor key %s of %s: %w", id, miner, ErrNotFound)
		}
		return err
	})
	return k, err
}

// PreferenceSecret returns the named validator secret, storing
// generate()'s value the first time; every process then shares it.
func (db *DB) PreferenceSecret(ctx context.Context, name string, generate func() string) (string, error) {
	if _, err := db.sql.ExecContext(ctx, db.rebind(`INSERT INTO preference_secrets (name, secret) VALUES (?, ?)
		ON CONFLICT (name) DO NOTHING`), name, generate()); err != nil {
		return "", fmt.Errorf("store secret %s: %w", name, err)
	}
	var s string
	err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT secret FROM preference_secrets WHERE name = ?`), name).Scan(&s)
	return s, err
}
