package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"crucible/internal/competition"
)

// CreatePoolTx stores a pool's terms inside tx (its competition must be
// created in the same transaction).
func (db *DB) CreatePoolTx(ctx context.Context, tx *sql.Tx, p competition.Pool) error {
	_, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO pools (competition_id, funder, asset, amount, rule, start_at, end_at,
		budget_per_hour, refresh_us, private_fraction, seed, state, settlement) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`),
		p.CompetitionID, p.Funder, p.Asset, p.Amount, p.Rule, micros(p.Start), micros(p.End), p.BudgetPerHour,
		p.Refresh.Microseconds(), p.PrivateFraction, int64(p.Seed), string(competition.PoolOpen))
	if err != nil {
		return fmt.Errorf("insert pool: %w", err)
	}
	return nil
}

const poolColumns = `p.competition_id, c.title, p.funder, p.asset, p.amount, p.rule, p.start_at, p.end_at, p.budget_per_hour,
	p.refresh_us, p.private_fraction, p.seed, p.state, p.settlement, p.final_tick_at`

func scanPool(row scanner) (competition.Pool, error) {
	var p competition.Pool
	var start, end, refresh, seed int64
	var state string
	var settlement sql.NullString
	var finalTick sql.NullInt64
	if err := row.Scan(&p.CompetitionID, &p.Title, &p.Funder, &p.Asset, &p.Amount, &p.Rule, &start, &end, &p.BudgetPerHour,
		&refresh, &p.PrivateFraction, &seed, &state, &settlement, &finalTick); err != nil {
		return p, err
	}
	if finalTick.Valid {
		at := fromMicros(finalTick.Int64)
		p.FinalTickAt = &at
	}
	p.Start, p.End, p.Refresh, p.Seed, p.State = fromMicros(start), fromMicros(end), time.Duration(refresh)*time.Microsecond, uint64(seed), competition.PoolState(state)
	if settlement.Valid {
		p.Settlement = &competition.Settlement{}
		if err := json.Unmarshal([]byte(settlement.String), p.Settlement); err != nil {
			return p, fmt.Errorf("pool %s settlement: %w", p.CompetitionID, err)
		}
	}
	return p, nil
}

// GetPool returns one pool.
func (db *DB) GetPool(ctx context.Context, id string) (competition.Pool, error) {
	p, err := scanPool(db.sql.QueryRowContext(ctx, db.rebind(`SELECT `+poolColumns+` FROM pools p
		JOIN competitions c ON c.id = p.competition_id WHERE p.competition_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("pool %s: %w", id, ErrNotFound)
	}
	return p, err
}

// ListPools returns every pool, open ones first, then by end time.
func (db *DB) ListPools(ctx context.Context) ([]competition.Pool, error) {
	return queryAll(ctx, db.sql, scanPool, `SELECT `+poolColumns+` FROM pools p JOIN competitions c ON c.id = p.competition_id
		ORDER BY p.state, p.end_at, p.competition_id`)
}

// ClaimSettlementTx marks an open pool settled with its result inside tx. It
// returns false, changing nothing, if the pool was already settled: the row
// update is the one place where exactly-once is decided (PostgreSQL holds the
// row lock until tx ends; SQLite serialises writers).
func (db *DB) ClaimSettlementTx(ctx context.Context, tx *sql.Tx, id string, s competition.Settlement) (bool, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, db.rebind(`UPDATE pools SET state = ?, settlement = ? WHERE competition_id = ? AND state = ?`),
		string(competition.PoolSettled), string(b), id, string(competition.PoolOpen))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// LockPoolTx serialises the transactions that enter one pool, so that a
// check of its entrants and the insert that follows cannot interleave with
// another join's (PostgreSQL row lock; SQLite runs one transaction at a time).
func (db *DB) LockPoolTx(ctx context.Context, tx *sql.Tx, id string) error {
	if db.dialect != Postgres {
		return nil
	}
	var got string
	err := tx.QueryRowContext(ctx, db.rebind(`SELECT competition_id FROM pools WHERE competition_id = ? FOR UPDATE`), id).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("pool %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("lock pool %s: %w", id, err)
	}
	return nil
}

// MarkFinalTick records that a pool's final evaluation tick ran at at (the
// first time only).
func (db *DB) MarkFinalTick(ctx context.Context, id string, at time.Time) error {
	_, err := db.sql.ExecContext(ctx, db.rebind(`UPDATE pools SET final_tick_at = ? WHERE competition_id = ? AND final_tick_at IS NULL`),
		micros(at), id)
	if err != nil {
		return fmt.Errorf("record the final tick of pool %s: %w", id, err)
	}
	return nil
}

// InsertSnapshot keeps a published leaderboard.
func (db *DB) InsertSnapshot(ctx context.Context, id string, s competition.Snapshot) error {
	b, err := json.Marshal(s.Rows)
	if err != nil {
		return err
	}
	_, err = db.sql.ExecContext(ctx, db.rebind(`INSERT INTO pool_snapshots (competition_id, taken_at, board) VALUES (?, ?, ?)
		ON CONFLICT (competition_id, taken_at) DO NOTHING`), id, micros(s.TakenAt), string(b))
	return err
}

// SnapshotAt returns the latest snapshot taken at or before t.
func (db *DB) SnapshotAt(ctx context.Context, id string, t time.Time) (competition.Snapshot, error) {
	var s competition.Snapshot
	var taken int64
	var board string
	err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT taken_at, board FROM pool_snapshots WHERE competition_id = ? AND taken_at <= ?
		ORDER BY taken_at DESC LIMIT 1`), id, micros(t)).Scan(&taken, &board)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("no leaderboard snapshot of pool %s at or before %s: %w", id, t.UTC().Format(time.RFC3339), ErrNotFound)
	}
	if err != nil {
		return s, err
	}
	s.TakenAt = fromMicros(taken)
	return s, json.Unmarshal([]byte(board), &s.Rows)
}

// Snapshots lists the times of a pool's snapshots, oldest first.
func (db *DB) Snapshots(ctx context.Context, id string) ([]time.Time, error) {
	return queryAll(ctx, db.sql, func(rows scanner) (time.Time, error) {
		var us int64
		err := rows.Scan(&us)
		return fromMicros(us), err
	}, db.rebind(`SELECT taken_at FROM pool_snapshots WHERE competition_id = ? ORDER BY taken_at`), id)
}

// ItemScoresByIndex returns a submission's evaluated items: index → score.
func (db *DB) ItemScoresByIndex(ctx context.Context, submissionID string) (map[int]float64, error) {
	rows, err := db.sql.QueryContext(ctx, db.rebind(`SELECT idx, score FROM item_results WHERE submission_id = ?`), submissionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]float64{}
	for rows.Next() {
		var i int
		var s float64
		if err := rows.Scan(&i, &s); err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, rows.Err()
}

// ItemResponses returns a submission's raw responses by item index, for
// copy detection.
func (db *DB) ItemResponses(ctx context.Context, submissionID string) (map[int]string, error) {
	rows, err := db.sql.QueryContext(ctx, db.rebind(`SELECT idx, response FROM item_results WHERE submission_id = ?`), submissionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]string{}
	for rows.Next() {
		var i int
		var r string
		if err := rows.Scan(&i, &r); err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, rows.Err()
}
