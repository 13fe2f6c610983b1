package store

import (
	"bytes"
	"fmt"
	"testing"

	"crucible/internal/competition"
)

// The entry cache stays within its byte bound however many competitions
// pass through it, and leaves out a configuration too large to share it.
func TestEnterCacheIsBounded(t *testing.T) {
	var ec enterCache
	config := bytes.Repeat([]byte("x"), maxEnterCacheBytes/100)
	for i := range 1000 {
		ec.put(enterable{c: competition.Competition{ID: fmt.Sprintf("c%d", i), Config: config}})
		if ec.bytes > maxEnterCacheBytes {
			t.Fatalf("after %d competitions the cache holds %d bytes, the bound is %d", i+1, ec.bytes, maxEnterCacheBytes)
		}
	}
	if _, ok := ec.get("c999"); !ok {
		t.Fatal("the latest competition is not cached")
	}
	ec.put(enterable{c: competition.Competition{ID: "huge", Config: bytes.Repeat([]byte("x"), maxEnterCacheBytes/64+1)}})
	if _, ok := ec.get("huge"); ok {
		t.Fatal("a configuration of over a 64th of the bound was cached")
	}
}
