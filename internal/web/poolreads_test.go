package web_test

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/seal"
	"crucible/internal/web"
)

// listCounter is the sealed store counting its ListSubmissions calls.
type listCounter struct {
	seal.Public
	lists atomic.Int64
}

func (c *listCounter) ListSubmissions(ctx context.Context, id string) ([]competition.Submission, error) {
	c.lists.Add(1)
	return c.Public.ListSubmissions(ctx, id)
}

// A pool's page and its leaderboard CSV read the pool's submissions once
// each: every anonymous view pays for each read, so the board reuses the
// page's list rather than reading it again.
func TestAPoolPageReadsItsSubmissionsOnce(t *testing.T) {
	f := newPoolFixture(t)
	f.clock.Set(poolStart.Add(11 * time.Hour))
	st := &listCounter{Public: seal.Public{DB: f.db}}
	ui, err := web.New(web.Config{Store: st, Clock: f.clock, Kinds: builtinKinds(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)
	for _, path := range []string{"/c/" + f.settled, "/c/" + f.settled + "/leaderboard.csv", "/c/" + f.open} {
		before := st.lists.Load()
		if code, body := get(t, srv.URL+path); code != 200 {
			t.Fatalf("GET %s: %d\n%s", path, code, body)
		}
		if n := st.lists.Load() - before; n != 1 {
			t.Errorf("GET %s listed the submissions %d times, want once", path, n)
		}
	}
}
