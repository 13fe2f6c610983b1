package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"crucible/internal/ledger"
)

// PostTransfer records a transfer in its own transaction (see PostTransferTx).
func (db *DB) PostTransfer(ctx context.Context, t ledger.Transfer, now time.Time) (ledger.Posted, error) {
	var p ledger.Posted
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		p, err = db.PostTransferTx(ctx, tx, t, now)
		return err
	})
	return p, err
}

// PostTransferTx validates and records a transfer inside tx. A transfer whose
// idempotency key is already recorded moves nothing and returns the first
// posting with Replayed set (a different transfer under a used key is an
// error). No account other than external may go below zero, and external not
// below −ledger.MaxSupply (the cap on money in the ledger): debited accounts
// are locked (PostgreSQL row locks; SQLite serialises writers) before their
// balances are checked, so concurrent payouts cannot overdraw.
func (db *DB) PostTransferTx(ctx context.Context, tx *sql.Tx, t ledger.Transfer, now time.Time) (ledger.Posted, error) {
	if err := t.Validate(); err != nil {
		return ledger.Posted{}, err
	}
	id := NewID("t")
	res, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO ledger_transfers (id, idempotency_key, kind, asset, memo, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING`), id, t.Key, t.Kind, t.Asset, t.Memo, micros(now))
	if err != nil {
		return ledger.Posted{}, fmt.Errorf("record transfer %s: %w", t.Key, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return ledger.Posted{}, err
	} else if n == 0 {
		first, err := db.transferByKey(ctx, tx, t.Key)
		if err != nil {
			return ledger.Posted{}, err
		}
		if !sameTransfer(first.Transfer, t) {
			return ledger.Posted{}, fmt.Errorf("idempotency key %q was already used for a different transfer", t.Key)
		}
		first.Replayed = true
		return first, nil
	}
	accounts := make([]string, 0, len(t.Legs))
	for _, e := range t.Legs {
		accounts = append(accounts, e.Account)
		if _, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO ledger_accounts (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`),
			e.Account, micros(now)); err != nil {
			return ledger.Posted{}, err
		}
	}
	sort.Strings(accounts) // one lock order everywhere: no deadlocks
	if db.dialect == Postgres {
		q := `SELECT name FROM ledger_accounts WHERE name IN (?` + strings.Repeat(", ?", len(accounts)-1) + `) ORDER BY name FOR UPDATE`
		args := make([]any, len(accounts))
		for i, a := range accounts {
			args[i] = a
		}
		rows, err := tx.QueryContext(ctx, db.rebind(q), args...)
		if err != nil {
			return ledger.Posted{}, fmt.Errorf("lock accounts: %w", err)
		}
		rows.Close()
	}
	for _, e := range t.Legs {
		if e.Amount >= 0 {
			continue
		}
		var bal int64
		if err := tx.QueryRowContext(ctx, db.rebind(`SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE account = ? AND asset = ?`),
			e.Account, t.Asset).Scan(&bal); err != nil {
			return ledger.Posted{}, fmt.Errorf("balance of %s: %w", e.Account, err)
		}
		// Both balances are within ±MaxSupply and the leg within MaxSupply, so bal+e.Amount cannot overflow.
		if e.Account == ledger.External && bal+e.Amount < -ledger.MaxSupply {
			return ledger.Posted{}, fmt.Errorf("%w: the ledger holds %d %s; %d more would exceed its cap of %d", ledger.ErrSupplyCap, -bal, t.Asset, -e.Amount, ledger.MaxSupply)
		}
		if e.Account != ledger.External && bal+e.Amount < 0 {
			return ledger.Posted{}, fmt.Errorf("%w: %s holds %d %s, the transfer takes %d", ledger.ErrInsufficientFunds, e.Account, bal, t.Asset, -e.Amount)
		}
	}
	for _, e := range t.Legs {
		if _, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO ledger_entries (transfer_id, account, asset, amount) VALUES (?, ?, ?, ?)`),
			id, e.Account, t.Asset, e.Amount); err != nil {
			return ledger.Posted{}, err
		}
	}
	return ledger.Posted{ID: id, At: now.UTC(), Transfer: t}, nil
}

func sameTransfer(a, b ledger.Transfer) bool {
	if a.Kind != b.Kind || a.Asset != b.Asset || len(a.Legs) != len(b.Legs) {
		return false
	}
	legs := map[string]int64{}
	for _, e := range a.Legs {
		legs[e.Account] = e.Amount
	}
	for _, e := range b.Legs {
		if amt, ok := legs[e.Account]; !ok || amt != e.Amount {
			return false
		}
	}
	return true
}

func (db *DB) transferByKey(ctx context.Context, q querier, key string) (ledger.Posted, error) {
	list, err := db.transfers(ctx, q, `WHERE t.idempotency_key = ?`, key)
	if err != nil {
		return ledger.Posted{}, err
	}
	if len(list) == 0 {
		return ledger.Posted{}, fmt.Errorf("transfer %s: %w", key, ErrNotFound)
	}
	return list[0], nil
}

// transfers loads the transfers matching where (over ledger_transfers t),
// oldest first, with their legs: one query for the transfers, one for the legs.
func (db *DB) transfers(ctx context.Context, q querier, where string, args ...any) ([]ledger.Posted, error) {
	list, err := queryAll(ctx, q, func(rows scanner) (ledger.Posted, error) {
		var p ledger.Posted
		var created int64
		err := rows.Scan(&p.ID, &p.Transfer.Key, &p.Transfer.Kind, &p.Transfer.Asset, &p.Transfer.Memo, &created)
		p.At = fromMicros(created)
		return p, err
	}, db.rebind(`SELECT t.id, t.idempotency_key, t.kind, t.asset, t.memo, t.created_at FROM ledger_transfers t `+where+
		` ORDER BY t.created_at, t.id`), args...)
	if err != nil || len(list) == 0 {
		return list, err
	}
	type leg struct {
		transfer string
		entry    ledger.Entry
	}
	legs, err := queryAll(ctx, q, func(rows scanner) (leg, error) {
		var l leg
		err := rows.Scan(&l.transfer, &l.entry.Account, &l.entry.Amount)
		return l, err
	}, db.rebind(`SELECT e.transfer_id, e.account, e.amount FROM ledger_entries e
		WHERE e.transfer_id IN (SELECT t.id FROM ledger_transfers t `+where+`) ORDER BY e.transfer_id, e.account`), args...)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*ledger.Posted, len(list))
	for i := range list {
		byID[list[i].ID] = &list[i]
	}
	for _, l := range legs {
		p := byID[l.transfer]
		p.Transfer.Legs = append(p.Transfer.Legs, l.entry)
	}
	return list, nil
}

// TransferByKey returns the transfer recorded under an idempotency key.
func (db *DB) TransferByKey(ctx context.Context, key string) (ledger.Posted, error) {
	return db.transferByKey(ctx, db.sql, key)
}

// Balances derives balances from entries, for one account or (account "")
// all of them, in every asset.
func (db *DB) Balances(ctx context.Context, account string) ([]ledger.Balance, error) {
	q := `SELECT account, asset, SUM(amount) FROM ledger_entries`
	var args []any
	if account != "" {
		q += ` WHERE account = ?`
		args = append(args, account)
	}
	return queryAll(ctx, db.sql, func(rows scanner) (ledger.Balance, error) {
		var b ledger.Balance
		if err := rows.Scan(&b.Account, &b.Asset, &b.Amount); err != nil {
			return b, err
		}
		return b, nil
	}, db.rebind(q+` GROUP BY account, asset ORDER BY account, asset`), args...)
}

// Balance derives one account's balance in one asset.
func (db *DB) Balance(ctx context.Context, account, asset string) (int64, error) {
	var bal int64
	err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE account = ? AND asset = ?`),
		account, asset).Scan(&bal)
	return bal, err
}

// History returns the transfers touching an account (all when ""), oldest first.
func (db *DB) History(ctx context.Context, account string) ([]ledger.Posted, error) {
	if account == "" {
		return db.transfers(ctx, db.sql, "")
	}
	return db.transfers(ctx, db.sql, `WHERE EXISTS (SELECT 1 FROM ledger_entries x WHERE x.transfer_id = t.id AND x.account = ?)`, account)
}
