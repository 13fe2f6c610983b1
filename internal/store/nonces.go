package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"crucible/internal/groupcommit"
	"crucible/internal/identity"
)

// Every signed request burns a nonce, so UseNonce is on the path of every
// state-changing request: alone, it would be one commit (a WAL flush on
// PostgreSQL) per request. Concurrent calls are gathered instead and
// inserted with one statement, each caller told its own outcome.
const (
	// maxNonceBatch bounds the nonces one insert carries.
	maxNonceBatch = 512
	// noncePurgeEvery is how often expired nonces are purged.
	noncePurgeEvery = time.Minute
)

// nonceUse is one UseNonce call; err is set before done is closed.
type nonceUse struct {
	ctx          context.Context
	keyID, nonce string
	expires      time.Time
	err          error
	done         chan struct{}
}

// UseNonce implements identity.NonceStore: the primary key makes a second use
// of a nonce fail, across every server sharing the database, and of two
// uses in one batch the first wins. Expired nonces are purged as a side
// effect, at most once every noncePurgeEvery per process.
func (db *DB) UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error {
	u := &nonceUse{ctx: ctx, keyID: keyID, nonce: nonce, expires: expires, done: make(chan struct{})}
	db.nonces.Add(u)
	<-u.done
	return u.err
}

// newDB sets up what db's connections do not: the nonce batcher, whose
// purge clock only its drainer reads (one batch is written at a time).
func newDB(db *DB) *DB {
	var nextPurge time.Time
	db.nonces = &groupcommit.Queue[*nonceUse]{Max: maxNonceBatch, Write: func(batch []*nonceUse) {
		purge := time.Now().After(nextPurge)
		if purge {
			nextPurge = time.Now().Add(noncePurgeEvery)
		}
		err := db.insertNonces(context.WithoutCancel(batch[0].ctx), batch, purge)
		for _, u := range batch {
			if err != nil {
				u.err = err
			}
			close(u.done)
		}
	}}
	return db
}

// insertNonces inserts batch with one statement and sets ErrNonceReused on
// each use whose nonce was known, or came earlier in the batch. With
// purge, it first deletes nonces that expired over an hour before the
// batch's first.
func (db *DB) insertNonces(ctx context.Context, batch []*nonceUse, purge bool) error {
	if purge {
		if _, err := db.sql.ExecContext(ctx, db.rebind(`DELETE FROM request_nonces WHERE expires_at < ?`), micros(batch[0].expires.Add(-time.Hour))); err != nil {
			return err
		}
	}
	uses := make([]NonceUse, len(batch))
	for i, u := range batch {
		uses[i] = NonceUse{KeyID: u.keyID, Nonce: u.nonce, Expires: u.expires}
	}
	fresh, err := db.useNonces(ctx, db.sql, uses)
	if err != nil {
		return err
	}
	for i, u := range batch {
		if !fresh[i] {
			u.err = identity.ErrNonceReused
		}
	}
	return nil
}

// NonceUse is one nonce to burn: a signed request's key, nonce and the
// time after which its timestamp is refused anyway.
type NonceUse struct {
	KeyID, Nonce string
	Expires      time.Time
}

// UseNoncesTx burns uses inside tx, with one statement, and reports which
// were fresh: false for a nonce known before, or earlier in uses. A
// transaction that writes what a request asks for burns its nonce with
// it, so the request and its nonce commit together or not at all (the
// intake's batches); an uncommitted burn of the same nonce elsewhere is
// waited for, so of two only one is ever fresh.
func (db *DB) UseNoncesTx(ctx context.Context, tx *sql.Tx, uses []NonceUse) ([]bool, error) {
	return db.useNonces(ctx, tx, uses)
}

// useNonces inserts uses in (key, nonce) order, so that two transactions
// burning some of the same nonces on PostgreSQL wait for each other in one
// order and never deadlock.
func (db *DB) useNonces(ctx context.Context, q querier, uses []NonceUse) ([]bool, error) {
	order := make([]int, len(uses))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(strings.Compare(uses[a].KeyID, uses[b].KeyID), strings.Compare(uses[a].Nonce, uses[b].Nonce))
	})
	args := make([]any, 0, 3*len(uses))
	for _, i := range order {
		args = append(args, uses[i].KeyID, uses[i].Nonce, micros(uses[i].Expires))
	}
	rows, err := q.QueryContext(ctx, db.rebind(`INSERT INTO request_nonces (key_id, nonce, expires_at) VALUES `+
		strings.Repeat("(?, ?, ?), ", len(uses)-1)+`(?, ?, ?) ON CONFLICT (key_id, nonce) DO NOTHING RETURNING key_id, nonce`), args...)
	if err != nil {
		return nil, fmt.Errorf("burn %d nonces: %w", len(uses), err)
	}
	defer rows.Close()
	inserted := map[[2]string]bool{}
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			return nil, err
		}
		inserted[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	fresh := make([]bool, len(uses))
	for i, u := range uses {
		k := [2]string{u.KeyID, u.Nonce}
		fresh[i] = inserted[k]
		// A nonce twice in one batch is inserted once: the first use has it.
		delete(inserted, k)
	}
	return fresh, nil
}
