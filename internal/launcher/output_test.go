package launcher

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// logBytes is the size of the output the server in scratch keeps.
func logBytes(t *testing.T, scratch string) int64 {
	t.Helper()
	var n int64
	for _, name := range []string{logName, logName + ".1"} {
		fi, err := os.Stat(filepath.Join(scratch, name))
		if err == nil {
			n += fi.Size()
		} else if !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	return n
}

// TestChattyServerKeepsABoundedLog: a hostile server writes 100 MiB of log
// lines while it loads. The launcher keeps at most MaxLogBytes of them on
// disk while it runs, and a server that writes as much and then dies is
// reported with the last lines of its output, not the first.
func TestChattyServerKeepsABoundedLog(t *testing.T) {
	const bound = 1 << 20
	f := newFixture(t, 1, "--spew 100")
	f.l.cfg.MaxLogBytes = bound
	le, err := f.l.Acquire(context.Background(), f.dir, "chatty")
	if err != nil {
		t.Fatal(err)
	}
	if got := chat(t, le); got != "hello from chatty" {
		t.Fatalf("chat = %q", got)
	}
	scratch := f.startLines(t)[0][1]
	// The server wrote its last line before listening, so all but what
	// the pipe still holds has been written; the bound holds throughout.
	if n := logBytes(t, scratch); n > bound || n < bound/4 {
		t.Errorf("server.log and server.log.1 hold %d bytes after 100 MiB of output; want at most the bound %d (and its recent part)", n, bound)
	}
	le.Release()

	g := newFixture(t, 1, "--spew 100 --mode crash")
	g.l.cfg.MaxLogBytes = bound
	_, err = g.l.Acquire(context.Background(), g.dir, "chatty")
	if err == nil || !strings.Contains(err.Error(), "marker-end-9c1d") || !strings.Contains(err.Error(), "marker-crash-51e0") {
		t.Fatalf("err = %v, want the last lines of the output", err)
	}
	if len(err.Error()) > tailBytes+1024 {
		t.Errorf("the error is %d bytes; want the output quoted up to %d", len(err.Error()), tailBytes)
	}
	if starts := g.startLines(t); len(starts) != 1 {
		t.Errorf("a crash (not a lost port) was started %d times; want once", len(starts))
	}
}

// stealer picks ports as the launcher does, but the first steal picks are
// taken (listened on) before the server can bind them, as another process
// on the machine could.
func stealer(t *testing.T, steal int) (pick func() (int, error), stolen map[int]bool) {
	stolen = map[int]bool{}
	return func() (int, error) {
		if len(stolen) == steal {
			return freePort()
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		t.Cleanup(func() { ln.Close() })
		port := ln.Addr().(*net.TCPAddr).Port
		stolen[port] = true
		return port, nil
	}, stolen
}

// TestStolenPortIsRetriedOnAnother: the port picked for a server is taken
// before it binds; the server exits, and the launcher starts it again on
// a new port. A port stolen at every start ends the retries after
// maxStartAttempts with the reason.
func TestStolenPortIsRetriedOnAnother(t *testing.T) {
	f := newFixture(t, 1, "")
	pick, stolen := stealer(t, 1)
	f.l.pickPort = pick
	le, err := f.l.Acquire(context.Background(), f.dir, "m")
	if err != nil {
		t.Fatalf("acquire after a stolen port: %v", err)
	}
	defer le.Release()
	if got := chat(t, le); got != "hello from m" {
		t.Fatalf("chat = %q", got)
	}
	_, portText, _ := strings.Cut(strings.TrimSuffix(le.BaseURL, "/v1"), "127.0.0.1:")
	if port, _ := strconv.Atoi(portText); stolen[port] || len(stolen) != 1 {
		t.Errorf("served at %s with stolen ports %v; want a port nobody else holds", le.BaseURL, stolen)
	}
	if starts := f.startLines(t); len(starts) != 2 {
		t.Errorf("started %d times; want twice (the first lost its port)", len(starts))
	}

	g := newFixture(t, 1, "")
	g.l.pickPort, _ = stealer(t, 1000)
	_, err = g.l.Acquire(context.Background(), g.dir, "m")
	if err == nil || !strings.Contains(err.Error(), "port was taken") {
		t.Fatalf("err = %v, want the lost port", err)
	}
	if starts := g.startLines(t); len(starts) != maxStartAttempts {
		t.Errorf("started %d times; want %d, the bound", len(starts), maxStartAttempts)
	}
}
