package store

import (
	"context"
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
	args := make([]any, 0, 3*len(batch))
	for _, u := range batch {
		args = append(args, u.keyID, u.nonce, micros(u.expires))
	}
	rows, err := db.sql.QueryContext(ctx, db.rebind(`INSERT INTO request_nonces (key_id, nonce, expires_at) VALUES `+
		strings.Repeat("(?, ?, ?), ", len(batch)-1)+`(?, ?, ?) ON CONFLICT (key_id, nonce) DO NOTHING RETURNING key_id, nonce`), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	inserted := map[[2]string]bool{}
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			return err
		}
		inserted[k] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, u := range batch {
		k := [2]string{u.keyID, u.nonce}
		if !inserted[k] {
			u.err = identity.ErrNonceReused
		}
		// A nonce twice in one batch is inserted once: the first use has it.
		delete(inserted, k)
	}
	return nil
}
