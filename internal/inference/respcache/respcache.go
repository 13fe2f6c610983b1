// Package respcache keeps the model server's answers of local evaluations
// (`crucible eval`) in an SQLite file, so a re-run sends nothing already
// answered, as lm-evaluation-harness's --use_cache does. It is an
// http.RoundTripper below the inference client: an entry's key is the
// SHA-256 of the request's method, full URL (scheme, host, port, path,
// query) and canonical JSON body, which names the model, so an answer of
// another model, another server or another request is never served.
//
// Only POST requests are cached, and only complete 200 responses that are
// not streams (a request with "stream": true and a text/event-stream
// response pass through). Every answer is committed as it arrives, so a run
// that crashes resumes where it stopped. Each entry carries the SHA-256 of
// its body: an entry whose body no longer matches is dropped and asked
// again, never served. The file is bounded: past Options.MaxBytes of
// bodies, the oldest entries are deleted first.
//
// The hub's workers and validators never use it: the cache is wired by the
// local evaluation commands only.
package respcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"crucible/internal/inference"
)

// FileName is the cache file's name inside its directory.
const FileName = "responses.sqlite"

// MaxRequestBytes bounds the request bodies the cache keys; larger
// requests pass through uncached.
const MaxRequestBytes = 16 << 20

// DefaultMaxBytes bounds the bodies a cache keeps unless Options says otherwise.
const DefaultMaxBytes = 1 << 30

// schemaVersion is the file's PRAGMA user_version.
const schemaVersion = 1

// Options configures Open.
type Options struct {
	// MaxBytes bounds the total size of the cached bodies (default
	// DefaultMaxBytes); the oldest entries go first.
	MaxBytes int64
}

// Cache is an open response cache. It is safe for concurrent use, by
// goroutines and by processes sharing the file.
type Cache struct {
	path  string
	db    *sql.DB
	max   int64
	size  atomic.Int64 // bytes of bodies stored, as last counted plus added since
	evict sync.Mutex
	hits  atomic.Int64
	total atomic.Int64
}

// DefaultDir is where `crucible eval` keeps its cache:
// os.UserCacheDir()/crucible/responses.
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("response cache: %w (give a directory with --cache-dir or run with --no-cache)", err)
	}
	return filepath.Join(d, "crucible", "responses"), nil
}

// Open opens (creating it if needed) the cache file in dir. A file that is
// not a response cache is an error naming it.
func Open(dir string, opt Options) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("response cache: %w", err)
	}
	path := filepath.Join(dir, FileName)
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("response cache %s: %w", path, err)
	}
	// SQLite serialises writes; one connection never sees SQLITE_BUSY
	// from itself.
	db.SetMaxOpenConns(1)
	c := &Cache{path: path, db: db, max: opt.MaxBytes}
	if c.max <= 0 {
		c.max = DefaultMaxBytes
	}
	if err := c.migrate(); err != nil {
		db.Close()
		return nil, c.errorf("%w (delete the file or run with --no-cache)", err)
	}
	return c, nil
}

func (c *Cache) migrate() error {
	tx, err := c.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	switch v {
	case 0:
		if _, err := tx.Exec(`CREATE TABLE responses (
			key BLOB PRIMARY KEY,
			content_type TEXT NOT NULL,
			body BLOB NOT NULL,
			sum BLOB NOT NULL
		)`); err != nil {
			return err
		}
		if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
			return err
		}
	case schemaVersion:
	default:
		return fmt.Errorf("schema version %d is not %d: written by another crucible version", v, schemaVersion)
	}
	var size int64
	if err := tx.QueryRow("SELECT COALESCE(SUM(length(body)), 0) FROM responses").Scan(&size); err != nil {
		return err
	}
	c.size.Store(size)
	return tx.Commit()
}

func (c *Cache) errorf(format string, args ...any) error {
	return fmt.Errorf("response cache %s: "+format, append([]any{c.path}, args...)...)
}

// Path is the cache file.
func (c *Cache) Path() string { return c.path }

// Close closes the file.
func (c *Cache) Close() error { return c.db.Close() }

// Stats counts the cacheable requests since Open and those answered from
// the cache.
func (c *Cache) Stats() (hits, total int64) { return c.hits.Load(), c.total.Load() }

// Transport returns a RoundTripper that answers from the cache and sends
// the rest on next, storing their answers.
func (c *Cache) Transport(next http.RoundTripper) http.RoundTripper {
	return &transport{c: c, next: next}
}

type transport struct {
	c    *Cache
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	// A body of unknown length (ContentLength 0 with a Body) passes
	// through unread, as does one over the bound.
	if req.Method != http.MethodPost || req.Body == nil || req.ContentLength <= 0 || req.ContentLength > MaxRequestBytes {
		return t.next.RoundTrip(req)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, req.ContentLength))
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	key, ok := Key(req.Method, req.URL.String(), body)
	if !ok {
		return t.next.RoundTrip(out)
	}
	t.c.total.Add(1)
	if resp, err := t.c.get(req.Context(), key, out); err != nil || resp != nil {
		if resp != nil {
			t.c.hits.Add(1)
		}
		return resp, err
	}
	resp, err := t.next.RoundTrip(out)
	if err != nil || resp.StatusCode != http.StatusOK || isStream(resp.Header.Get("Content-Type")) {
		return resp, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, inference.MaxResponseBytes+1))
	if err != nil {
		resp.Body.Close()
		return nil, err // incomplete: not cached
	}
	if len(data) > inference.MaxResponseBytes {
		// Too large to cache; the client reports it.
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	if err := t.c.put(req.Context(), key, resp.Header.Get("Content-Type"), data); err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	resp.ContentLength = int64(len(data))
	return resp, nil
}

// Key is a request's cache key: the SHA-256 of method, URL and canonical
// body (JSON re-encoded with sorted keys, so field order does not matter).
// ok is false for requests that are not cached: a body that is not a JSON
// object, one over MaxRequestBytes, or a stream.
func Key(method, url string, body []byte) (key []byte, ok bool) {
	if len(body) > MaxRequestBytes {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, false
	}
	if s, _ := v["stream"].(bool); s {
		return nil, false
	}
	canon, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	h := sha256.New()
	for _, p := range [][]byte{[]byte(method), []byte(url), canon} {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return h.Sum(nil), true
}

func isStream(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "text/event-stream"
}

// get answers req from the cache: nil without an entry. An entry whose body
// fails its checksum is deleted and reported as missing.
func (c *Cache) get(ctx context.Context, key []byte, req *http.Request) (*http.Response, error) {
	var ct string
	var body, sum []byte
	err := c.db.QueryRowContext(ctx, "SELECT content_type, body, sum FROM responses WHERE key = ?", key).Scan(&ct, &body, &sum)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.errorf("%w (delete the file or run with --no-cache)", err)
	}
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		if _, err := c.db.ExecContext(ctx, "DELETE FROM responses WHERE key = ?", key); err != nil {
			return nil, c.errorf("drop a damaged entry: %w", err)
		}
		return nil, nil
	}
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	return &http.Response{Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req}, nil
}

// put stores an answer, then evicts the oldest entries past the bound.
func (c *Cache) put(ctx context.Context, key []byte, contentType string, body []byte) error {
	sum := sha256.Sum256(body)
	if _, err := c.db.ExecContext(ctx, "INSERT OR REPLACE INTO responses (key, content_type, body, sum) VALUES (?, ?, ?, ?)",
		key, contentType, body, sum[:]); err != nil {
		return c.errorf("store an answer: %w", err)
	}
	if c.size.Add(int64(len(body))) <= c.max {
		return nil
	}
	return c.shrink(ctx)
}

// shrink deletes the oldest entries until the bodies fit in 90% of the
// bound, in one transaction, recounting what other processes added.
func (c *Cache) shrink(ctx context.Context) error {
	c.evict.Lock()
	defer c.evict.Unlock()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return c.errorf("evict: %w", err)
	}
	defer tx.Rollback()
	var size int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(SUM(length(body)), 0) FROM responses").Scan(&size); err != nil {
		return c.errorf("evict: %w", err)
	}
	if size > c.max {
		rows, err := tx.QueryContext(ctx, "SELECT rowid, length(body) FROM responses ORDER BY rowid")
		if err != nil {
			return c.errorf("evict: %w", err)
		}
		var last int64
		for size > c.max/10*9 && rows.Next() {
			var n int64
			if err := rows.Scan(&last, &n); err != nil {
				rows.Close()
				return c.errorf("evict: %w", err)
			}
			size -= n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return c.errorf("evict: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM responses WHERE rowid <= ?", last); err != nil {
			return c.errorf("evict: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return c.errorf("evict: %w", err)
	}
	c.size.Store(size)
	return nil
}
