package api

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"crucible/internal/competition"
)

// A leaderboard computation that panics must not leave its version's
// flight behind: every later reader of that version would wait on it
// forever (net/http recovers the panicking request, nothing else).
func TestAPanickingBoardComputationDoesNotBlockLaterReaders(t *testing.T) {
	var c boardCache
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not reach the caller")
			}
		}()
		_, _ = c.get("c-1", 7, func() (board, error) { panic("store went away") })
	}()
	got := make(chan error, 1)
	go func() {
		b, err := c.get("c-1", 7, func() (board, error) { return board{version: 7, etag: "e"}, nil })
		if err == nil && b.etag != "e" {
			err = errors.New("wrong board")
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // a hang guard, not a speed check
		t.Fatal("a reader after the panic still waits on the panicked computation")
	}
}

// testBoard is a computed board of n rows whose names are about size bytes.
func testBoard(t *testing.T, version int64, n, size int) board {
	t.Helper()
	rows := make([]competition.Row, n)
	for i := range rows {
		rows[i] = competition.Row{Rank: i + 1, Name: fmt.Sprintf("v%d-%d-", version, i) + strings.Repeat("x", size)}
	}
	b, err := encodeBoard(version, rows)
	if err != nil {
		t.Fatal(err)
	}
	b.rows = rows
	return b
}

// The cache is bounded by bytes: boards beyond the bound are evicted (and
// computed again when read), pages of the board being read are dropped
// before it is, and a board larger than the bound is never kept.
func TestTheBoardCacheIsBoundedByBytes(t *testing.T) {
	big := testBoard(t, 1, 10, 1000) // about 10 KB encoded, 20 KB charged
	c := boardCache{limit: 3 * 2 * len(big.body)}
	computes := map[string]int{}
	read := func(id string, version int64, b board) board {
		t.Helper()
		got, err := c.get(id, version, func() (board, error) { computes[id]++; return b, nil })
		if err != nil {
			t.Fatal(err)
		}
		if c.bytes > c.limit {
			t.Fatalf("after reading %s the cache holds %d bytes, bound %d", id, c.bytes, c.limit)
		}
		return got
	}
	for i := 0; i < 10; i++ {
		read(fmt.Sprint("c-", i), 1, big)
	}
	if len(c.boards) != 3 {
		t.Fatalf("%d boards cached, want the 3 that fit", len(c.boards))
	}
	for i := 0; i < 10; i++ {
		read(fmt.Sprint("c-", i), 1, big)
	}
	evicted := 0
	for _, n := range computes {
		if n > 1 {
			evicted++
		}
	}
	if evicted < 7 {
		t.Fatalf("only %d of 10 boards were computed again; at most 3 fit", evicted)
	}
	// Pages count: reading many of one board's pages evicts the others,
	// then its own pages, never beyond the bound.
	b := read("c-0", 1, big)
	for off := 0; off < 10; off++ {
		for n := 1; n <= 10; n++ {
			p, err := c.page("c-0", b, off, n)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := encodeBoard(1, b.rows[off:min(10, off+n)])
			if string(p.body) != string(want.body) || p.etag != want.etag {
				t.Fatalf("page %d+%d = %s, want %s", off, n, p.body, want.body)
			}
			if c.bytes > c.limit {
				t.Fatalf("with pages the cache holds %d bytes, bound %d", c.bytes, c.limit)
			}
		}
	}
	if _, ok := c.boards["c-0"]; !ok {
		t.Fatal("the board being paged was evicted for its own pages")
	}
	sum := 0
	for _, e := range c.boards {
		n := 2 * len(e.body)
		for _, p := range e.pages {
			n += len(p.body)
		}
		if n != e.bytes {
			t.Fatalf("%d bytes charged to a board holding %d", e.bytes, n)
		}
		sum += n
	}
	if sum != c.bytes {
		t.Fatalf("the cache counts %d bytes, its boards hold %d", c.bytes, sum)
	}
	huge := testBoard(t, 1, 40, 1000)
	read("c-huge", 1, huge)
	read("c-huge", 1, huge)
	if computes["c-huge"] != 2 {
		t.Fatalf("a board beyond the bound was computed %d times in 2 reads, want 2 (never cached)", computes["c-huge"])
	}
}

// A page is cached with its board's version: the same page is encoded once
// per version, and a page of an old board is never served for a new one.
func TestPagesFollowTheirBoardsVersion(t *testing.T) {
	var c boardCache
	v1 := testBoard(t, 1, 5, 10)
	b, _ := c.get("c-1", 1, func() (board, error) { return v1, nil })
	p1, err := c.page("c-1", b, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := c.page("c-1", b, 0, 2)
	if &again.body[0] != &p1.body[0] {
		t.Fatal("the same page of the same board was encoded again")
	}
	v2 := testBoard(t, 2, 5, 10)
	b2, _ := c.get("c-1", 2, func() (board, error) { return v2, nil })
	p2, err := c.page("c-1", b2, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if p2.etag == p1.etag || !strings.Contains(string(p2.body), "v2-0-") || strings.Contains(string(p2.body), "v1-") {
		t.Fatalf("after a new version the page is %s (tag %s), was %s", p2.body, p2.etag, p1.body)
	}
	// A reader still holding the old board gets its page encoded, not cached
	// into the new version's entry.
	if old, _ := c.page("c-1", b, 0, 3); !strings.Contains(string(old.body), "v1-2-") {
		t.Fatalf("old board's page: %s", old.body)
	}
	if _, ok := c.boards["c-1"].pages[pageKey{0, 3}]; ok {
		t.Fatal("a page of the old board was cached under the new one")
	}
}
