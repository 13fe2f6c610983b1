package router_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"crucible/internal/router"
)

// echoWorker answers every proxied request with 200 and records the
// request's headers and body.
type echoWorker struct {
	got  chan http.Header
	body chan string
	resp http.Header // extra response headers
}

func (e *echoWorker) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	e.got <- req.Header.Clone()
	e.body <- string(b)
	for k, vv := range e.resp {
		w.Header()[k] = vv
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

func newEchoWorker(t *testing.T, resp http.Header) (*echoWorker, *httptest.Server) {
	e := &echoWorker{got: make(chan http.Header, 16), body: make(chan string, 16), resp: resp}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return e, srv
}

// bodyOf returns a request body of exactly n bytes naming model "m".
func bodyOf(n int) string {
	head, tail := `{"model":"m","pad":"`, `"}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

func TestRouterBodyBounds(t *testing.T) {
	e, ws := newEchoWorker(t, nil)
	const limit = 1000
	_, srv := newRouter(t, router.Config{Workers: []router.WorkerSpec{{URL: ws.URL, Model: "m"}}, MaxBodyBytes: limit})
	url := srv.URL + "/v1/chat/completions"
	do := func(body string, chunked bool) (int, string) {
		t.Helper()
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd) // hides the length: sent chunked
		}
		req, _ := http.NewRequest(http.MethodPost, url, rd)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// A body without end gets its 413 after limit+1 bytes: the router
	// never reads more (the context only keeps a regression from hanging).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, endless{})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("endless body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("endless body: got %d", resp.StatusCode)
	}
	// The bound is checked twice: against Content-Length before reading,
	// and while reading a body of unknown length. Requests at the bound
	// come after rejected ones, so the pooled reader must have been reset.
	for _, chunked := range []bool{false, true} {
		if code, body := do(bodyOf(limit+1), chunked); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "body_too_large") {
			t.Fatalf("chunked=%v: %d bytes: got %d %s", chunked, limit+1, code, body)
		}
		want := bodyOf(limit)
		if code, body := do(want, chunked); code != http.StatusOK {
			t.Fatalf("chunked=%v: %d bytes: got %d %s", chunked, limit, code, body)
		}
		<-e.got
		if got := <-e.body; got != want {
			t.Fatalf("chunked=%v: the worker got %d bytes, want the %d sent", chunked, len(got), len(want))
		}
	}
}

// endless is a request body that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func TestRouterDropsHopByHopHeaders(t *testing.T) {
	e, ws := newEchoWorker(t, http.Header{
		"Connection":         {"X-Worker-Hop"},
		"X-Worker-Hop":       {"1"},
		"Keep-Alive":         {"timeout=5"},
		"Proxy-Authenticate": {"Basic"},
		"X-End-To-End":       {"kept"},
	})
	_, srv := newRouter(t, router.Config{Workers: []router.WorkerSpec{{URL: ws.URL, Model: "m"}}})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	req.Header.Set("Connection", "x-client-hop, Keep-Alive")
	req.Header.Set("X-Client-Hop", "1")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	req.Header.Set("Te", "trailers")
	req.Header.Set("Authorization", "Bearer kept")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := <-e.got
	<-e.body
	for _, k := range []string{"Connection", "X-Client-Hop", "Keep-Alive", "Proxy-Authorization", "Te"} {
		if v, ok := got[k]; ok {
			t.Errorf("the worker got hop-by-hop request header %s: %q", k, v)
		}
	}
	if got.Get("Authorization") != "Bearer kept" {
		t.Errorf("the worker did not get the end-to-end Authorization header: %v", got)
	}
	for _, k := range []string{"X-Worker-Hop", "Keep-Alive", "Proxy-Authenticate"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("the client got hop-by-hop response header %s: %q", k, v)
		}
	}
	if resp.Header.Get("X-End-To-End") != "kept" {
		t.Errorf("the client did not get the end-to-end response header: %v", resp.Header)
	}
}

// A dial that does not finish within MaxResponseDuration is the worker not
// answering in time, a 504, and not a failure to retry elsewhere.
func TestRouterDialCutByMaxResponseDuration(t *testing.T) {
	dials := make(chan struct{}, 16)
	_, srv := newRouter(t, router.Config{
		Workers:             []router.WorkerSpec{{URL: "http://192.0.2.1:80", Model: "m"}},
		MaxResponseDuration: 100 * time.Millisecond,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			dials <- struct{}{}
			<-ctx.Done()
			return nil, errors.New("dial: gave up")
		},
	})
	code, body := post(t, srv.URL+"/v1/chat/completions", `{"model":"m"}`)
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "worker_timeout") {
		t.Fatalf("got %d %s", code, body)
	}
	if n := len(dials); n != 1 {
		t.Fatalf("%d dials, want 1 (a timeout is not retried)", n)
	}
}

// TestRouterSkipsAWorkersInterimResponses has the worker send 103 Early
// Hints before each answer. Taken for the answer, the 103 would give the
// client an empty response and leave the real answer unread on the pooled
// connection, where the next client's request would read it: one client
// served another's completion.
func TestRouterSkipsAWorkersInterimResponses(t *testing.T) {
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		w.Header().Set("Link", "</hint>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(ws.Close)
	_, srv := newRouter(t, router.Config{Workers: []router.WorkerSpec{{URL: ws.URL, Model: "m", MaxConcurrency: 1}}})
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 3 {
		body := fmt.Sprintf(`{"model":"m","n":%d}`, i)
		resp, err := client.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(got) != body {
			t.Fatalf("request %d: %d %q (%v), want 200 with its own body %s", i, resp.StatusCode, got, err, body)
		}
	}
}

// TestRouterBoundsAWorkersResponseHead has a hostile worker answer with a
// header section that never ends. Unbounded, the router would buffer it
// until out of memory; bounded, the client gets a 502 once the worker has
// sent a little over the bound.
func TestRouterBoundsAWorkersResponseHead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	sent := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		go io.Copy(io.Discard, c)
		n, _ := io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
		total := int64(n)
		for total < 64<<20 {
			n, err := io.WriteString(c, line)
			total += int64(n)
			if err != nil {
				break
			}
		}
		sent <- total
	}()
	_, srv := newRouter(t, router.Config{Workers: []router.WorkerSpec{{URL: "http://" + ln.Addr().String(), Model: "m"}}})
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "response head exceeds") {
		t.Fatalf("got %d %s, want 502 naming the bound", resp.StatusCode, body)
	}
	if n := <-sent; n >= 64<<20 {
		t.Fatalf("the router read all %d bytes of the endless head", n)
	}
}
