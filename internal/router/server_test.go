package router

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// holdWorker answers chat requests with {"ok":true}, holding those with
// an X-Hold header until release is closed; it counts the requests it
// sees and reports the held ones that were cancelled.
type holdWorker struct {
	seen      atomic.Int64
	arrived   chan struct{}
	release   chan struct{}
	cancelled chan struct{}
}

func (h *holdWorker) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	h.seen.Add(1)
	if req.Header.Get("X-Hold") != "" {
		h.arrived <- struct{}{}
		select {
		case <-h.release:
		case <-req.Context().Done():
			h.cancelled <- struct{}{}
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// leanRouter serves a router over one holdWorker with the lean server.
func leanRouter(t *testing.T, cfg Config) (*Router, *holdWorker, string) {
	t.Helper()
	h := &holdWorker{arrived: make(chan struct{}, 10), release: make(chan struct{}), cancelled: make(chan struct{}, 10)}
	ws := httptest.NewServer(h)
	t.Cleanup(ws.Close)
	t.Cleanup(func() { close(h.release) })
	cfg.Workers = []WorkerSpec{{URL: ws.URL, Model: "m", MaxConcurrency: 1}}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Router: r}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r, h, ln.Addr().String()
}

const chatReq = "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"model\":\"m\"}\r\n"

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// wantClosed checks that the server closed the connection.
func wantClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	if b, err := br.ReadByte(); err == nil {
		t.Errorf("connection still open: read %q", b)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestServerRefusesSmuggling(t *testing.T) {
	smuggled := "POST /v1/embeddings HTTP/1.1\r\nHost: r\r\nContent-Length: 15\r\n\r\n{\"model\":\"m\"}\r\n"
	for name, raw := range map[string]string{
		"CL.TE":              "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
		"TE.CL":              "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\nContent-Length: 80\r\n\r\n0\r\n\r\n" + smuggled,
		"CL.CL":              "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\nContent-Length: 0\r\nContent-Length: 80\r\n\r\n" + smuggled,
		"TE obfuscated":      "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n" + smuggled,
		"obs-fold TE":        "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\nX: y\r\n Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n" + smuggled,
		"space before colon": "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n" + smuggled,
	} {
		t.Run(name, func(t *testing.T) {
			_, h, addr := leanRouter(t, Config{})
			c, br := dial(t, addr)
			io.WriteString(c, raw)
			resp, _ := readResponse(t, br)
			if resp.StatusCode/100 != 4 && resp.StatusCode != http.StatusNotImplemented || !resp.Close {
				t.Errorf("status %d, close %v; want a 4xx or 501 closing the connection", resp.StatusCode, resp.Close)
			}
			wantClosed(t, br)
			if n := h.seen.Load(); n != 0 {
				t.Errorf("the worker saw %d requests, want 0", n)
			}
		})
	}
}

func TestServerConnections(t *testing.T) {
	_, h, addr := leanRouter(t, Config{MaxBodyBytes: 1000})
	t.Run("HTTP/1.1 keeps the connection, pipelined requests answered in order", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, chatReq+strings.Replace(chatReq, "chat/completions", "embeddings", 1)+"GET /healthz HTTP/1.1\r\nHost: r\r\n\r\n")
		for i, want := range []string{`{"ok":true}`, `{"ok":true}`, "ok: 1 of 1 workers healthy\n"} {
			resp, body := readResponse(t, br)
			if resp.StatusCode != 200 || body != want || resp.Close {
				t.Errorf("response %d: %d %q close=%v", i, resp.StatusCode, body, resp.Close)
			}
		}
	})
	t.Run("Connection: close is honoured", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, strings.Replace(chatReq, "Host: r\r\n", "Host: r\r\nConnection: close\r\n", 1))
		if resp, _ := readResponse(t, br); resp.StatusCode != 200 || !resp.Close {
			t.Errorf("status %d close=%v", resp.StatusCode, resp.Close)
		}
		wantClosed(t, br)
	})
	t.Run("HTTP/1.0 closes unless keep-alive", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /v1/models HTTP/1.0\r\n\r\n")
		if resp, _ := readResponse(t, br); resp.StatusCode != 200 || resp.Close {
			t.Errorf("keep-alive: status %d close=%v", resp.StatusCode, resp.Close)
		}
		if resp, body := readResponse(t, br); resp.StatusCode != 200 || !strings.Contains(body, `"id":"m"`) || !resp.Close {
			t.Errorf("plain: status %d %q close=%v", resp.StatusCode, body, resp.Close)
		}
		wantClosed(t, br)
	})
	t.Run("Expect: 100-continue gets 100 before the body is sent", func(t *testing.T) {
		c, br := dial(t, addr)
		head, body, _ := strings.Cut(chatReq, "\r\n\r\n")
		io.WriteString(c, head+"\r\nExpect: 100-continue\r\n\r\n")
		if line, err := br.ReadString('\n'); err != nil || line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("got %q, %v", line, err)
		}
		br.ReadString('\n')
		io.WriteString(c, body)
		if resp, b := readResponse(t, br); resp.StatusCode != 200 || b != `{"ok":true}` {
			t.Errorf("status %d %q", resp.StatusCode, b)
		}
	})
	t.Run("a body over the bound with 100-continue is a 413 without a 100, then close", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
		if resp, _ := readResponse(t, br); resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
			t.Errorf("status %d close=%v", resp.StatusCode, resp.Close)
		}
		wantClosed(t, br)
	})
	t.Run("a chunked body is relayed with its length", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{\"mode\r\n7\r\nl\":\"m\"}\r\n0\r\n\r\n")
		if resp, b := readResponse(t, br); resp.StatusCode != 200 || b != `{"ok":true}` || resp.Close {
			t.Errorf("status %d %q close=%v", resp.StatusCode, b, resp.Close)
		}
	})
	t.Run("a chunked body over the bound is a 413, then close", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n"+strings.Repeat("x", 1001)+"\r\n0\r\n\r\n")
		if resp, _ := readResponse(t, br); resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
			t.Errorf("status %d close=%v", resp.StatusCode, resp.Close)
		}
		wantClosed(t, br)
	})
	t.Run("a head over the bound is a 431, then close", func(t *testing.T) {
		c, br := dial(t, addr)
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: r\r\nX-Big: "+strings.Repeat("b", maxLineBytes)+"\r\n\r\n")
		if resp, _ := readResponse(t, br); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !resp.Close {
			t.Errorf("status %d close=%v", resp.StatusCode, resp.Close)
		}
		wantClosed(t, br)
	})
	if n := h.seen.Load(); n != 5 {
		t.Errorf("the worker saw %d requests, want 5", n)
	}
}

func TestServerClientGoneFreesTheSlot(t *testing.T) {
	t.Run("while queued", func(t *testing.T) {
		r, h, addr := leanRouter(t, Config{QueueTimeout: time.Minute})
		holder, hbr := dial(t, addr)
		io.WriteString(holder, strings.Replace(chatReq, "Host: r\r\n", "Host: r\r\nX-Hold: 1\r\n", 1))
		<-h.arrived
		queued, _ := dial(t, addr)
		io.WriteString(queued, chatReq)
		waitFor(t, "the second request is queued", func() bool { return r.waiters.Load() == 1 })
		queued.Close()
		// Without the background read the request would wait out the
		// queue timeout and then reach the worker.
		waitFor(t, "the queued request leaves the queue", func() bool { return r.waiters.Load() == 0 })
		h.release <- struct{}{}
		readResponse(t, hbr)
		waitFor(t, "the slot is free", func() bool { return r.Workers()[0].InFlight == 0 })
		if n := h.seen.Load(); n != 1 {
			t.Errorf("the worker saw %d requests, want 1", n)
		}
	})
	t.Run("while waiting for the worker", func(t *testing.T) {
		r, h, addr := leanRouter(t, Config{})
		c, _ := dial(t, addr)
		io.WriteString(c, strings.Replace(chatReq, "Host: r\r\n", "Host: r\r\nX-Hold: 1\r\n", 1))
		<-h.arrived
		c.Close()
		select {
		case <-h.cancelled:
		case <-time.After(10 * time.Second):
			t.Fatal("the worker's request was not cancelled")
		}
		waitFor(t, "the slot is free", func() bool { return r.Workers()[0].InFlight == 0 })
	})
}

func TestServerShutdown(t *testing.T) {
	h := &holdWorker{arrived: make(chan struct{}, 10), release: make(chan struct{}), cancelled: make(chan struct{}, 10)}
	ws := httptest.NewServer(h)
	t.Cleanup(ws.Close)
	r, err := New(Config{Workers: []WorkerSpec{{URL: ws.URL, Model: "m"}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Router: r}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()

	idle, ibr := dial(t, addr)
	io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: r\r\n\r\n")
	readResponse(t, ibr)
	active, abr := dial(t, addr)
	io.WriteString(active, strings.Replace(chatReq, "Host: r\r\n", "Host: r\r\nX-Hold: 1\r\n", 1))
	<-h.arrived

	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	wantClosed(t, ibr) // the idle connection is closed at once
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve returned %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a request active", err)
	default:
	}
	close(h.release)
	if resp, body := readResponse(t, abr); resp.StatusCode != 200 || body != `{"ok":true}` || !resp.Close {
		t.Errorf("active request: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	wantClosed(t, abr)

	// A bounded Shutdown closes what is still active when it ends.
	srv2 := &Server{Router: r}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv2.Serve(ln2)
	h.release = make(chan struct{})
	stuck, sbr := dial(t, ln2.Addr().String())
	io.WriteString(stuck, strings.Replace(chatReq, "Host: r\r\n", "Host: r\r\nX-Hold: 1\r\n", 1))
	<-h.arrived
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv2.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Errorf("Shutdown past its deadline: %v", err)
	}
	wantClosed(t, sbr)
	<-h.cancelled
}
