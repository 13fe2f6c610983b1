package artifact

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"syscall"
	"time"
)

// Cache is a content-addressed, size-bounded store of fetched artifacts:
// DIR/entries/<tree digest>/ holds a verified tree. A fetch goes into a
// fresh directory under DIR/tmp, is hashed, and is renamed into entries only
// when its digest equals the committed one, so an entry is always complete
// and verified. Least recently used entries are evicted to make room, never
// one in use (Get's release has not been called).
//
// Within a process a Cache is safe for concurrent use, and concurrent Gets
// of one digest share a single fetch. Across processes a cache directory has
// one owner: OpenCache takes an exclusive lock on DIR/lock (flock) and a
// second process opening the same directory gets an error, because eviction
// in one process could remove a tree another process is serving. Workers on
// one machine use one directory each.
type Cache struct {
	dir    string
	max    int64
	limits Limits
	lock   *os.File

	mu      sync.Mutex
	entries map[string]*entry
	pending map[string]chan struct{}
	total   int64
	clock   int64 // increases on every use, for LRU order
}

type entry struct {
	bytes int64
	refs  int
	used  int64
}

var digestName = regexp.MustCompile(`^[0-9a-f]{64}$`)

// OpenCache opens (creating) the cache at dir, bounded to maxBytes. Trees it
// fetches are also bounded by DefaultLimits, with MaxBytes lowered to
// maxBytes. Leftover temporary fetches are removed; verified entries from
// an earlier run are kept, oldest-modified first in LRU order.
func OpenCache(dir string, maxBytes int64) (*Cache, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("model cache %s: size bound must be positive", dir)
	}
	for _, sub := range []string{"entries", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("model cache %s is in use by another process: %w", dir, err)
	}
	lim := DefaultLimits()
	lim.MaxBytes = min(lim.MaxBytes, maxBytes)
	c := &Cache{dir: dir, max: maxBytes, limits: lim, lock: lock,
		entries: map[string]*entry{}, pending: map[string]chan struct{}{}}
	if err := os.RemoveAll(filepath.Join(dir, "tmp")); err != nil {
		c.Close()
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.load(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// load lists the verified entries left by an earlier run.
func (c *Cache) load() error {
	des, err := os.ReadDir(filepath.Join(c.dir, "entries"))
	if err != nil {
		return err
	}
	type found struct {
		digest string
		mod    int64
		bytes  int64
	}
	var all []found
	for _, de := range des {
		if !digestName.MatchString(de.Name()) {
			continue
		}
		_, bytes, err := listTree(filepath.Join(c.dir, "entries", de.Name()), c.limits)
		if err != nil {
			return fmt.Errorf("model cache entry %s: %w", de.Name(), err)
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		all = append(all, found{de.Name(), info.ModTime().UnixNano(), bytes})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mod < all[j].mod })
	for _, f := range all {
		c.clock++
		c.entries[f.digest] = &entry{bytes: f.bytes, used: c.clock}
		c.total += f.bytes
	}
	return nil
}

// Close releases the cache directory's lock.
func (c *Cache) Close() error { return c.lock.Close() }

// ErrDigestMismatch is Get's error when the fetched tree is not the
// committed one: final for the submission, whatever fetches it again.
var ErrDigestMismatch = errors.New("artifact digest mismatch")

// Get returns the directory of the verified tree with the given digest,
// fetching it from src with f (its Limits replaced by the cache's) when it
// is not cached. release must be called
// when the caller no longer reads the directory; until then the entry is
// never evicted. A fetched tree whose digest differs from digest is
// discarded with "artifact digest mismatch: committed X, fetched Y".
func (c *Cache) Get(ctx context.Context, digest string, f Fetcher, src Source) (dir string, release func(), err error) {
	if !digestName.MatchString(digest) {
		return "", nil, fmt.Errorf("artifact digest %.80q is not 64 lowercase hex digits", digest)
	}
	for {
		c.mu.Lock()
		if e, ok := c.entries[digest]; ok {
			got := c.acquire(digest, e)
			c.mu.Unlock()
			return got, c.releaser(digest), nil
		}
		wait, busy := c.pending[digest]
		if !busy {
			c.pending[digest] = make(chan struct{})
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return "", nil, ctx.Err()
		}
	}
	defer func() {
		c.mu.Lock()
		close(c.pending[digest])
		delete(c.pending, digest)
		c.mu.Unlock()
	}()
	tmp, err := os.MkdirTemp(filepath.Join(c.dir, "tmp"), "fetch-")
	if err != nil {
		return "", nil, err
	}
	defer os.RemoveAll(tmp)
	tree := filepath.Join(tmp, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		return "", nil, err
	}
	f.Limits = c.limits
	if err := f.Fetch(ctx, src, tree); err != nil {
		return "", nil, fmt.Errorf("fetch artifact %s: %w", digest, err)
	}
	t, err := HashTree(tree, c.limits)
	if err != nil {
		return "", nil, fmt.Errorf("fetch artifact %s: %w", digest, err)
	}
	if t.Digest != digest {
		return "", nil, fmt.Errorf("%w: committed %s, fetched %s", ErrDigestMismatch, digest, t.Digest)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.makeRoom(t.Bytes); err != nil {
		return "", nil, fmt.Errorf("fetch artifact %s: %w", digest, err)
	}
	final := filepath.Join(c.dir, "entries", digest)
	if err := os.Rename(tree, final); err != nil {
		return "", nil, err
	}
	e := &entry{bytes: t.Bytes}
	c.entries[digest] = e
	c.total += t.Bytes
	return c.acquire(digest, e), c.releaser(digest), nil
}

// acquire marks e used and in use; c.mu is held.
func (c *Cache) acquire(digest string, e *entry) string {
	c.clock++
	e.used = c.clock
	e.refs++
	dir := filepath.Join(c.dir, "entries", digest)
	now := time.Now()
	_ = os.Chtimes(dir, now, now) // the LRU order of the next OpenCache; best effort
	return dir
}

func (c *Cache) releaser(digest string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.entries[digest].refs--
			c.mu.Unlock()
		})
	}
}

// makeRoom evicts least recently used entries not in use until need more
// bytes fit; c.mu is held.
func (c *Cache) makeRoom(need int64) error {
	if need > c.max {
		return fmt.Errorf("artifact is %d bytes; the model cache holds at most %d", need, c.max)
	}
	for c.total+need > c.max {
		victim := ""
		for d, e := range c.entries {
			if e.refs == 0 && (victim == "" || e.used < c.entries[victim].used) {
				victim = d
			}
		}
		if victim == "" {
			return fmt.Errorf("model cache is full: %d of %d bytes are in use and %d more are needed", c.total, c.max, need)
		}
		if err := os.RemoveAll(filepath.Join(c.dir, "entries", victim)); err != nil {
			return err
		}
		c.total -= c.entries[victim].bytes
		delete(c.entries, victim)
	}
	return nil
}

// Cached reports whether the tree with the given digest is in the cache.
func (c *Cache) Cached(digest string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[digest]
	return ok
}
