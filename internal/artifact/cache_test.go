package artifact

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// artifactDir writes a tree of one file of the given size and returns its
// directory and digest.
func artifactDir(t *testing.T, name string, size int) (string, string) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{name: strings.Repeat("w", size)})
	tree, err := HashTree(dir, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return dir, tree.Digest
}

func TestCacheFetchVerifyAndTamper(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	writeFiles(t, src, toyModel(t))
	committed, err := HashTree(src, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	c, err := OpenCache(root, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCache(root, 1<<20); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second open: %v", err)
	}
	// Concurrent Gets share one verified entry.
	var wg sync.WaitGroup
	dirs := make([]string, 4)
	errs := make([]error, 4)
	for i := range dirs {
		wg.Go(func() {
			var release func()
			dirs[i], release, errs[i] = c.Get(ctx, committed.Digest, Fetcher{}, Source{Path: src})
			if errs[i] == nil {
				release()
			}
		})
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != filepath.Join(root, "entries", committed.Digest) {
			t.Fatalf("get %d: %s, %v", i, dirs[i], errs[i])
		}
	}
	got, err := HashTree(dirs[0], DefaultLimits())
	if err != nil || got.Digest != committed.Digest {
		t.Fatalf("cached tree %s, %v", got.Digest, err)
	}
	// Tampered after commit: another worker's fetch of the changed tree is
	// refused and discarded.
	writeFiles(t, src, map[string]string{"config.json": `{"architectures": ["Bigger"]}`})
	otherRoot := t.TempDir()
	other, err := OpenCache(otherRoot, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, _, err = other.Get(ctx, committed.Digest, Fetcher{}, Source{Path: src})
	fetched, _ := HashTree(src, DefaultLimits())
	want := "artifact digest mismatch: committed " + committed.Digest + ", fetched " + fetched.Digest
	if err == nil || err.Error() != want {
		t.Fatalf("tampered: %v\nwant %s", err, want)
	}
	if other.Cached(committed.Digest) {
		t.Fatal("a mismatching tree was cached")
	}
	for _, sub := range []string{"tmp", "entries"} {
		if left, _ := os.ReadDir(filepath.Join(otherRoot, sub)); len(left) != 0 {
			t.Fatalf("%s left: %v", sub, left)
		}
	}
	// A cached entry survives a restart and is served without a fetch.
	c.Close()
	c, err = OpenCache(root, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, release, err := c.Get(ctx, committed.Digest, Fetcher{}, Source{Path: filepath.Join(root, "missing")}); err != nil {
		t.Fatalf("after reopen: %v", err)
	} else {
		release()
	}
}

func TestCacheLRUEvictionSparesEntriesInUse(t *testing.T) {
	ctx := context.Background()
	c, err := OpenCache(t.TempDir(), 250)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	aDir, a := artifactDir(t, "a", 100)
	bDir, b := artifactDir(t, "b", 100)
	cDir, cd := artifactDir(t, "c", 100)
	dDir, d := artifactDir(t, "d", 100)
	get := func(digest, dir string) (func(), error) {
		_, release, err := c.Get(ctx, digest, Fetcher{}, Source{Path: dir})
		return release, err
	}
	releaseA, err := get(a, aDir) // a stays in use
	if err != nil {
		t.Fatal(err)
	}
	releaseB, err := get(b, bDir)
	if err != nil {
		t.Fatal(err)
	}
	releaseB()
	// c needs room: b, idle, goes although a is older.
	releaseC, err := get(cd, cDir)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cached(a) || c.Cached(b) || !c.Cached(cd) {
		t.Fatalf("after c: a %v b %v c %v", c.Cached(a), c.Cached(b), c.Cached(cd))
	}
	// Everything in use: d does not fit and nothing is evicted.
	if _, err := get(d, dDir); err == nil || !strings.Contains(err.Error(), "model cache is full") {
		t.Fatalf("d with all in use: %v", err)
	}
	if !c.Cached(a) || !c.Cached(cd) {
		t.Fatal("an entry in use was evicted")
	}
	releaseC()
	releaseA()
	releaseA() // a second call is harmless
	// Now a is least recently used (c was used after it).
	if release, err := get(d, dDir); err != nil {
		t.Fatal(err)
	} else {
		release()
	}
	if c.Cached(a) || !c.Cached(cd) || !c.Cached(d) {
		t.Fatalf("after d: a %v c %v d %v", c.Cached(a), c.Cached(cd), c.Cached(d))
	}
	big, bigDigest := artifactDir(t, "big", 300)
	if _, err := get(bigDigest, big); err == nil || !strings.Contains(err.Error(), "more than 250 bytes") {
		t.Fatalf("oversized artifact: %v", err)
	}
}
