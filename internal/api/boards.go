package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"

	"crucible/internal/competition"
)

// Leaderboards are read far more often than they change: a competition's
// ranking moves only when one of its submissions is scored, and the store
// bumps the competition's leaderboard version in that transaction. A read
// asks the database for the version (so a bump by another process counts)
// and serves the encoded ranking cached under it, or computes, encodes and
// caches it. Only the public view is cached, and only once the seal policy
// (checked on every read, before the cache) shows it. That is sound because
// a pool is created in its competition's transaction and only ever goes
// from sealed to unsealed: no board is computed while sealed (which would
// rank no hidden card and go stale at settlement, which bumps no
// version), and none computed unsealed can be shown sealed. A fresh-items
// competition's view changes with the clock as epochs end, so it is
// computed on every read.

// The cache is bounded by bytes (encoded bodies, and a board's rows counted
// as their encoding's size again) and by count: competitions are cheap to
// create, so the number and size of boards are the adversary's to choose.
const (
	maxCachedBytes  = 256 << 20
	maxCachedBoards = 1024
)

// board is one encoded leaderboard, or page of one, and its entity tag,
// with its rows for pages.
type board struct {
	version int64
	body    []byte
	etag    string
	rows    []competition.Row
}

// cachedBoard is a competition's cached board and the pages of it that
// were read, all of one version.
type cachedBoard struct {
	board
	pages map[pageKey]board
	bytes int
}

// pageKey is a page by the rows it holds, rows[start:end] (so the many
// ways to ask for an empty or clipped page share one entry).
type pageKey struct{ start, end int }

// boardCache maps a competition id to its latest encoded leaderboard and
// pages. Concurrent misses on one version share one computation: after a
// scoring, a busy board is computed once, not once per waiting reader.
type boardCache struct {
	mu sync.Mutex
	// limit is the bound in bytes; 0 means maxCachedBytes.
	limit   int
	bytes   int
	boards  map[string]*cachedBoard
	flights map[flightKey]*flight
}

type flightKey struct {
	id      string
	version int64
}

// flight is one computation of a board that readers wait for.
type flight struct {
	done chan struct{}
	b    board
	err  error
}

// get returns competition id's board at version, computing it with compute
// (once, however many readers ask at the same time) when it is not cached.
func (c *boardCache) get(id string, version int64, compute func() (board, error)) (board, error) {
	c.mu.Lock()
	if b, ok := c.boards[id]; ok && b.version == version {
		c.mu.Unlock()
		return b.board, nil
	}
	key := flightKey{id, version}
	if f, ok := c.flights[key]; ok {
		c.mu.Unlock()
		<-f.done
		return f.b, f.err
	}
	if c.flights == nil {
		c.flights = map[flightKey]*flight{}
	}
	// A compute that panics leaves errBoardPanicked for the readers waiting
	// on it, and the flight is removed all the same, so the next reader of
	// this version computes again instead of waiting forever.
	f := &flight{done: make(chan struct{}), err: errBoardPanicked}
	c.flights[key] = f
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.flights, key)
		if f.err == nil {
			c.put(id, f.b)
		}
		c.mu.Unlock()
		close(f.done)
	}()
	f.b, f.err = compute()
	return f.b, f.err
}

// page returns rows [offset, offset+limit) of b, competition id's board,
// encoded and tagged, from the cache while b is the board cached (its tag:
// a board evicted and computed again at the same version may differ).
// Two readers missing the same page both encode it (a page is cheap to
// encode); the first to finish caches it.
func (c *boardCache) page(id string, b board, offset, limit int) (board, error) {
	start := min(offset, len(b.rows))
	key := pageKey{start, min(len(b.rows), start+limit)}
	c.mu.Lock()
	if e, ok := c.boards[id]; ok && e.etag == b.etag {
		if p, ok := e.pages[key]; ok {
			c.mu.Unlock()
			return p, nil
		}
	}
	c.mu.Unlock()
	p, err := encodeBoard(b.version, b.rows[key.start:key.end])
	if err != nil {
		return board{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.boards[id]
	if !ok || e.etag != b.etag {
		return p, nil
	}
	if _, ok := e.pages[key]; !ok {
		if e.pages == nil {
			e.pages = map[pageKey]board{}
		}
		e.pages[key] = p
		e.bytes += len(p.body)
		c.bytes += len(p.body)
		c.shrink(id)
	}
	return p, nil
}

// errBoardPanicked is what readers sharing a leaderboard computation get
// when it panicked.
var errBoardPanicked = errors.New("computing the leaderboard failed")

// put keeps b unless a newer version is cached already (a slow reader must
// not replace a fresher board); c.mu is held. A board larger than the
// whole bound is not kept (each read of it computes it again).
func (c *boardCache) put(id string, b board) {
	old, ok := c.boards[id]
	if ok && old.version > b.version {
		return
	}
	if ok {
		c.drop(id)
	}
	cost := 2 * len(b.body)
	if cost > c.max() {
		return
	}
	if c.boards == nil {
		c.boards = map[string]*cachedBoard{}
	}
	c.boards[id] = &cachedBoard{board: b, bytes: cost}
	c.bytes += cost
	c.shrink(id)
}

func (c *boardCache) max() int {
	if c.limit > 0 {
		return c.limit
	}
	return maxCachedBytes
}

// shrink evicts until the cache is within its bounds, keeping competition
// keep's board (the one just added to) while it fits alone: first other
// boards, in no particular order, then keep's pages. Eviction costs a
// recomputation or a re-encoding, never a stale answer. c.mu is held.
func (c *boardCache) shrink(keep string) {
	for id := range c.boards {
		if c.bytes <= c.max() && len(c.boards) <= maxCachedBoards {
			return
		}
		if id != keep {
			c.drop(id)
		}
	}
	if e, ok := c.boards[keep]; ok && c.bytes > c.max() {
		for _, p := range e.pages {
			e.bytes -= len(p.body)
			c.bytes -= len(p.body)
		}
		e.pages = nil
	}
}

// drop removes competition id's board and pages; c.mu is held.
func (c *boardCache) drop(id string) {
	c.bytes -= c.boards[id].bytes
	delete(c.boards, id)
}

// encodeBoard encodes v as writeJSON does and tags it with its digest.
func encodeBoard(version int64, v any) (board, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return board{}, err
	}
	sum := sha256.Sum256(buf.Bytes())
	return board{version: version, body: buf.Bytes(), etag: `"` + hex.EncodeToString(sum[:16]) + `"`}, nil
}

// writeBoard answers 304 Not Modified when the request's If-None-Match
// names b's tag, else b's body, with the tag either way.
func writeBoard(w http.ResponseWriter, r *http.Request, b board) error {
	w.Header().Set("ETag", b.etag)
	if matchesETag(r.Header.Get("If-None-Match"), b.etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b.body)
	return err
}

// writeTagged encodes v and answers as writeBoard does.
func writeTagged(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := encodeBoard(0, v)
	if err != nil {
		return err
	}
	return writeBoard(w, r, b)
}

// matchesETag reports whether an If-None-Match header names etag (weak
// comparison, RFC 9110 13.1.2), or is "*".
func matchesETag(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// rankedRows computes competition c's public leaderboard rows, with copy
// marks on a kind that ranks models.
func (s *Server) rankedRows(ctx context.Context, c competition.Competition) ([]competition.Row, error) {
	subs, err := s.pub.ListSubmissions(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	rows := s.cfg.Kinds.Leaderboard(c, subs)
	if s.cfg.Kinds.RanksModels(c.Kind) && len(rows) > 1 {
		// Copy marking compares raw responses for equality only: their
		// stored hashes, one row per submission, stand in for every result.
		hashes, err := s.cfg.DB.CompetitionResponseHashes(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		competition.MarkCopies(rows, subs, hashes)
	}
	return rows, nil
}

// cachedLeaderboard returns competition c's encoded public leaderboard at
// version (read by the caller before this call, with the seal), from the
// cache when it holds that version. The version is read before the
// submissions: a board computed from a later state is cached under an
// older version at worst, which the next scoring replaces. The
// computation outlives the reader that started it (others may be waiting
// for it); it is bounded by one per version.
func (s *Server) cachedLeaderboard(ctx context.Context, c competition.Competition, version int64) (board, error) {
	return s.boards.get(c.ID, version, func() (board, error) {
		rows, err := s.rankedRows(context.WithoutCancel(ctx), c)
		if err != nil {
			return board{}, err
		}
		b, err := encodeBoard(version, rows)
		b.rows = rows
		return b, err
	})
}

// LeaderboardRows returns competition c's public leaderboard rows from the
// cache the API serves (the web UI's source, so a page view never
// recomputes a ranking the API has cached). c must not be sealed: the
// caller has checked its seal policy. The rows are shared: callers must
// not modify them.
func (s *Server) LeaderboardRows(ctx context.Context, c competition.Competition) ([]competition.Row, error) {
	if s.cfg.Kinds.FreshItems(c) {
		return s.rankedRows(ctx, c)
	}
	version, err := s.cfg.DB.LeaderboardVersion(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	b, err := s.cachedLeaderboard(ctx, c, version)
	return b.rows, err
}

// maxBoardPage bounds ?limit= on a leaderboard.
const maxBoardPage = 1000

// boardPage reads ?offset= and ?limit= (1..maxBoardPage): ok is false when
// neither is given (the whole board).
func boardPage(r *http.Request) (offset, limit int, ok bool, err error) {
	q := r.URL.Query()
	if !q.Has("offset") && !q.Has("limit") {
		return 0, 0, false, nil
	}
	if offset, err = intParam(r, "offset", 0, maxOffset); err != nil {
		return 0, 0, false, err
	}
	if limit, err = intParam(r, "limit", 100, maxBoardPage); err != nil {
		return 0, 0, false, err
	}
	if limit < 1 {
		return 0, 0, false, badRequest("limit must be 1..%d", maxBoardPage)
	}
	return offset, limit, true, nil
}

// pageOf returns rows[offset:offset+limit], clipped to rows.
func pageOf(rows []competition.Row, offset, limit int) []competition.Row {
	start := min(offset, len(rows))
	return rows[start:min(len(rows), start+limit)]
}
