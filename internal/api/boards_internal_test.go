package api

import (
	"errors"
	"testing"
	"time"
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
