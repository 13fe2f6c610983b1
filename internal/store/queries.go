package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
)

// NewID returns a short random id with a prefix ("c" competition, "s" submission).
func NewID(prefix string) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return prefix + "-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// CreateCompetition stores a competition and its items in one transaction.
func (db *DB) CreateCompetition(ctx context.Context, c competition.Competition, items []json.RawMessage) error {
	return db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateCompetitionTx(ctx, tx, c, items) })
}

// CreateCompetitionTx stores a competition and its items inside tx.
func (db *DB) CreateCompetitionTx(ctx context.Context, tx *sql.Tx, c competition.Competition, items []json.RawMessage) error {
	_, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO competitions
		(id, kind, title, config, dataset_name, dataset_digest, items_total, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		c.ID, string(c.Kind), c.Title, string(c.Config), c.DatasetName, c.DatasetDigest, len(items), c.CreatedBy, micros(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert competition: %w", err)
	}
	return db.insertItems(ctx, tx, c.ID, items)
}

const competitionColumns = `id, kind, title, config, dataset_name, dataset_digest, items_total, created_by, created_at`

func scanCompetition(row scanner) (competition.Competition, error) {
	var c competition.Competition
	var kind, config string
	var created int64
	err := row.Scan(&c.ID, &kind, &c.Title, &config, &c.DatasetName, &c.DatasetDigest, &c.Items, &c.CreatedBy, &created)
	c.Kind, c.Config, c.CreatedAt = competition.Kind(kind), json.RawMessage(config), fromMicros(created)
	return c, err
}

// GetCompetition returns one competition.
func (db *DB) GetCompetition(ctx context.Context, id string) (competition.Competition, error) {
	c, err := scanCompetition(db.sql.QueryRowContext(ctx, db.rebind(`SELECT `+competitionColumns+` FROM competitions WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("competition %s: %w", id, ErrNotFound)
	}
	return c, err
}

// ListCompetitions returns all competitions, newest first.
func (db *DB) ListCompetitions(ctx context.Context) ([]competition.Competition, error) {
	return queryAll(ctx, db.sql, scanCompetition, `SELECT `+competitionColumns+` FROM competitions ORDER BY created_at DESC, id`)
}

// CompetitionItems returns a competition's items in order, as stored.
func (db *DB) CompetitionItems(ctx context.Context, id string) ([]json.RawMessage, error) {
	return queryAll(ctx, db.sql, func(rows scanner) (json.RawMessage, error) {
		var p string
		err := rows.Scan(&p)
		return json.RawMessage(p), err
	}, db.rebind(`SELECT payload FROM competition_items WHERE competition_id = ? ORDER BY idx`), id)
}

// CreateSubmissionTx stores a submission inside tx, so the caller can enqueue
// its evaluation job in the same transaction. secret (an API key for the
// model server, may be empty; a predictions file's body) is stored but
// never returned by reads other than SubmissionSecret.
func (db *DB) CreateSubmissionTx(ctx context.Context, tx *sql.Tx, s competition.Submission, secret string) error {
	return db.CreateSubmissionsTx(ctx, tx, []competition.Submission{s}, []string{secret})
}

// CreateSubmissionsTx stores subs with their secrets (secrets[i] is
// subs[i]'s) inside tx with one multi-row insert (as CreateSubmissionTx
// each).
func (db *DB) CreateSubmissionsTx(ctx context.Context, tx *sql.Tx, subs []competition.Submission, secrets []string) error {
	if len(subs) == 0 {
		return nil
	}
	const row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)"
	args := make([]any, 0, 12*len(subs))
	for i, s := range subs {
		spec, err := json.Marshal(storedSpec{ModelSpec: s.Model, Patch: s.Patch, Predictions: s.Predictions, Artifact: s.Artifact})
		if err != nil {
			return err
		}
		args = append(args, s.ID, s.CompetitionID, s.Name, s.Submitter, string(spec), secrets[i], s.Digest, micros(s.CommittedAt),
			string(s.State), s.Reason, s.ItemsTotal, micros(s.UpdatedAt))
	}
	_, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO submissions
		(id, competition_id, name, submitter, spec, secret, digest, committed_at, state, reason, items_total, card, updated_at)
		VALUES `+strings.Repeat(row+", ", len(subs)-1)+row), args...)
	if err != nil {
		return fmt.Errorf("insert %d submissions: %w", len(subs), err)
	}
	return nil
}

// storedSpec is what a submission committed: a model to query, a patch,
// or a predictions file's description (its body is the secret).
type storedSpec struct {
	competition.ModelSpec
	Patch       *competition.PatchSpec       `json:"patch,omitempty"`
	Predictions *competition.PredictionsSpec `json:"predictions,omitempty"`
	Artifact    *competition.ArtifactSpec    `json:"artifact,omitempty"`
}

const submissionColumns = `s.id, s.competition_id, s.name, s.submitter, s.spec, s.digest, s.committed_at, s.state, s.reason,
	s.items_total, s.card, s.updated_at, (SELECT COUNT(*) FROM item_results r WHERE r.submission_id = s.id)`

func scanSubmission(row scanner) (competition.Submission, error) {
	var s competition.Submission
	var spec, state string
	var card sql.NullString
	var committed, updated int64
	err := row.Scan(&s.ID, &s.CompetitionID, &s.Name, &s.Submitter, &spec, &s.Digest, &committed, &state, &s.Reason,
		&s.ItemsTotal, &card, &updated, &s.ItemsDone)
	if err != nil {
		return s, err
	}
	s.State, s.CommittedAt, s.UpdatedAt = competition.State(state), fromMicros(committed), fromMicros(updated)
	var st storedSpec
	if err := json.Unmarshal([]byte(spec), &st); err != nil {
		return s, fmt.Errorf("submission %s spec: %w", s.ID, err)
	}
	s.Model, s.Patch, s.Predictions, s.Artifact = st.ModelSpec, st.Patch, st.Predictions, st.Artifact
	if card.Valid {
		s.Card = &competition.Card{}
		if err := json.Unmarshal([]byte(card.String), s.Card); err != nil {
			return s, fmt.Errorf("submission %s card: %w", s.ID, err)
		}
	}
	return s, nil
}

// GetSubmission returns one submission with its progress.
func (db *DB) GetSubmission(ctx context.Context, id string) (competition.Submission, error) {
	s, err := scanSubmission(db.sql.QueryRowContext(ctx, db.rebind(`SELECT `+submissionColumns+` FROM submissions s WHERE s.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("submission %s: %w", id, ErrNotFound)
	}
	return s, err
}

// SubmissionSecret returns the model API key (or predictions file) stored
// with a submission.
func (db *DB) SubmissionSecret(ctx context.Context, id string) (string, error) {
	var secret string
	err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT secret FROM submissions WHERE id = ?`), id).Scan(&secret)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("submission %s: %w", id, ErrNotFound)
	}
	return secret, err
}

// ListSubmissions returns a competition's submissions in commit order.
func (db *DB) ListSubmissions(ctx context.Context, competitionID string) ([]competition.Submission, error) {
	return db.listSubmissions(ctx, db.sql, competitionID)
}

// ListSubmissionsTx is ListSubmissions inside tx.
func (db *DB) ListSubmissionsTx(ctx context.Context, tx *sql.Tx, competitionID string) ([]competition.Submission, error) {
	return db.listSubmissions(ctx, tx, competitionID)
}

func (db *DB) listSubmissions(ctx context.Context, q querier, competitionID string) ([]competition.Submission, error) {
	return queryAll(ctx, q, scanSubmission, db.rebind(`SELECT `+submissionColumns+` FROM submissions s
		WHERE s.competition_id = ? ORDER BY s.committed_at, s.id`), competitionID)
}

// AdvanceSubmission applies event ev to a submission and records the
// state and reason competition.Next gives (see AdvanceSubmissionTx).
func (db *DB) AdvanceSubmission(ctx context.Context, id string, ev competition.Event, cause string, card *competition.Card, now time.Time) (competition.State, error) {
	var state competition.State
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		state, err = db.AdvanceSubmissionTx(ctx, tx, id, ev, cause, card, now)
		return err
	})
	return state, err
}

// AdvanceSubmissionTx applies event ev to a submission inside tx: it reads
// the current state under a lock (PostgreSQL row lock; SQLite write
// transactions are serial), asks competition.Next for the next one and
// records it, with the card when ev completes the evaluation. An event
// the lifecycle refuses (such as any event on a final state) changes
// nothing and returns competition.Next's error. A move into or out of the
// scored state bumps the competition's leaderboard version in tx; a move
// into it stores the submission's response hashes (see
// CompetitionResponseHashes).
func (db *DB) AdvanceSubmissionTx(ctx context.Context, tx *sql.Tx, id string, ev competition.Event, cause string, card *competition.Card, now time.Time) (competition.State, error) {
	q := `SELECT state, competition_id FROM submissions WHERE id = ?`
	if db.dialect == Postgres {
		q += ` FOR UPDATE`
	}
	var from, competitionID string
	err := tx.QueryRowContext(ctx, db.rebind(q), id).Scan(&from, &competitionID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("submission %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read submission %s: %w", id, err)
	}
	next, reason, err := competition.Next(competition.State(from), ev, cause)
	if err != nil {
		return competition.State(from), fmt.Errorf("submission %s: %w", id, err)
	}
	var cardJSON sql.NullString
	if card != nil && next == competition.StateScored {
		b, err := json.Marshal(card)
		if err != nil {
			return "", err
		}
		cardJSON = sql.NullString{String: string(b), Valid: true}
	}
	if _, err := tx.ExecContext(ctx, db.rebind(`UPDATE submissions SET state = ?, reason = ?, card = ?, updated_at = ? WHERE id = ?`),
		string(next), reason, cardJSON, micros(now), id); err != nil {
		return "", fmt.Errorf("update submission %s: %w", id, err)
	}
	if next == competition.StateScored {
		if err := db.storeResponseHashes(ctx, tx, id); err != nil {
			return "", err
		}
	}
	if next == competition.StateScored || competition.State(from) == competition.StateScored {
		if err := db.bumpLeaderboard(ctx, tx, competitionID); err != nil {
			return "", err
		}
	}
	return next, nil
}

// InsertResult stores one item's result; a result already stored for the
// item is kept (a rerun after a crash writes nothing twice).
func (db *DB) InsertResult(ctx context.Context, submissionID string, r eval.Result) error {
	return db.InsertResults(ctx, submissionID, []eval.Result{r})
}

// resultsPerStatement bounds one INSERT of InsertResults (13 parameters a
// row, far below both databases' parameter limits).
const resultsPerStatement = 500

// InsertResults stores items' results as InsertResult does each, in one
// statement (one commit) per resultsPerStatement rows: an evaluation
// writes what finished while its last write was committing in one go,
// instead of one commit per item.
func (db *DB) InsertResults(ctx context.Context, submissionID string, rs []eval.Result) error {
	for start := 0; start < len(rs); start += resultsPerStatement {
		batch := rs[start:min(start+resultsPerStatement, len(rs))]
		var q strings.Builder
		q.WriteString(`INSERT INTO item_results
		(submission_id, idx, prompt, response, prediction, correct, score, started_at, ended_at, latency_ms,
		 prompt_tokens, completion_tokens, detail) VALUES `)
		args := make([]any, 0, 13*len(batch))
		for i, r := range batch {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, submissionID, r.Index, r.Prompt, r.Response, r.Prediction, boolInt(r.Correct), r.Score,
				micros(r.Started), micros(r.Ended), r.LatencyMS, r.PromptTokens, r.CompletionTokens, string(r.Detail))
		}
		q.WriteString(` ON CONFLICT (submission_id, idx) DO NOTHING`)
		if _, err := db.sql.ExecContext(ctx, db.rebind(q.String()), args...); err != nil {
			if len(batch) == 1 {
				return fmt.Errorf("insert result %s/%d: %w", submissionID, batch[0].Index, err)
			}
			return fmt.Errorf("insert results %s/%d… (%d items): %w", submissionID, batch[0].Index, len(batch), err)
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// DoneItems returns the indices of the items already evaluated.
func (db *DB) DoneItems(ctx context.Context, submissionID string) (map[int]bool, error) {
	rows, err := db.sql.QueryContext(ctx, db.rebind(`SELECT idx FROM item_results WHERE submission_id = ?`), submissionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	done := map[int]bool{}
	for rows.Next() {
		var i int
		if err := rows.Scan(&i); err != nil {
			return nil, err
		}
		done[i] = true
	}
	return done, rows.Err()
}

// Results returns a page of a submission's item results in item order.
func (db *DB) Results(ctx context.Context, submissionID string, offset, limit int) ([]eval.Result, error) {
	return queryAll(ctx, db.sql, func(rows scanner) (eval.Result, error) {
		var r eval.Result
		var correct int
		var started, ended int64
		var detail string
		if err := rows.Scan(&r.Index, &r.Prompt, &r.Response, &r.Prediction, &correct, &r.Score, &started, &ended,
			&r.LatencyMS, &r.PromptTokens, &r.CompletionTokens, &detail); err != nil {
			return r, err
		}
		r.Correct, r.Started, r.Ended = correct == 1, fromMicros(started), fromMicros(ended)
		if detail != "" {
			r.Detail = json.RawMessage(detail)
		}
		return r, nil
	}, db.rebind(`SELECT idx, prompt, response, prediction, correct, score, started_at,
		ended_at, latency_ms, prompt_tokens, completion_tokens, detail
		FROM item_results WHERE submission_id = ? ORDER BY idx LIMIT ? OFFSET ?`), submissionID, limit, offset)
}

// ItemScores returns a submission's per-item scores in item order and the
// number of correct items.
func (db *DB) ItemScores(ctx context.Context, submissionID string) ([]float64, int, error) {
	rows, err := db.sql.QueryContext(ctx, db.rebind(`SELECT score, correct FROM item_results WHERE submission_id = ? ORDER BY idx`), submissionID)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var scores []float64
	correct := 0
	for rows.Next() {
		var s float64
		var c int
		if err := rows.Scan(&s, &c); err != nil {
			return nil, 0, err
		}
		scores = append(scores, s)
		correct += c
	}
	return scores, correct, rows.Err()
}
