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

// maxCachedBoards bounds the cache: competitions are cheap to create, so
// the number of boards is the adversary's to choose.
const maxCachedBoards = 1024

// board is one encoded leaderboard and its entity tag, with its rows for
// pages.
type board struct {
	version int64
	body    []byte
	etag    string
	rows    []competition.Row
}

// boardCache maps a competition id to its latest encoded leaderboard.
// Concurrent misses on one version share one computation: after a scoring,
// a busy board is computed once, not once per waiting reader.
type boardCache struct {
	mu      sync.Mutex
	boards  map[string]board
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
		return b, nil
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

// errBoardPanicked is what readers sharing a leaderboard computation get
// when it panicked.
var errBoardPanicked = errors.New("computing the leaderboard failed")

// put keeps b unless a newer version is cached already (a slow reader must
// not replace a fresher board); c.mu is held. A full cache drops an
// arbitrary board: eviction costs one recomputation, never a stale answer.
func (c *boardCache) put(id string, b board) {
	if old, ok := c.boards[id]; ok && old.version > b.version {
		return
	}
	if c.boards == nil {
		c.boards = map[string]board{}
	}
	if _, ok := c.boards[id]; !ok && len(c.boards) >= maxCachedBoards {
		for k := range c.boards {
			delete(c.boards, k)
			break
		}
	}
	c.boards[id] = b
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
// its current version, from the cache when it holds that version. The
// version is read before the submissions: a board computed from a later
// state is cached under an older version at worst, which the next
// scoring replaces. The computation outlives the reader that started it
// (others may be waiting for it); it is bounded by one per version.
func (s *Server) cachedLeaderboard(ctx context.Context, c competition.Competition) (board, error) {
	version, err := s.cfg.DB.LeaderboardVersion(ctx, c.ID)
	if err != nil {
		return board{}, err
	}
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
