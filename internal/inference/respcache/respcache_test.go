package respcache_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"crucible/internal/inference"
	"crucible/internal/inference/respcache"
)

// countingServer answers completions with "<name>:<model>:<prompt>" and
// counts the requests it receives.
type countingServer struct {
	name string
	n    atomic.Int64
	url  string
}

func newServer(t *testing.T, name string) *countingServer {
	t.Helper()
	s := &countingServer{name: name}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.n.Add(1)
		switch r.URL.Path {
		case "/v1/models":
			fmt.Fprint(w, `{"object":"list","data":[]}`)
			return
		case "/v1/chat/completions":
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: [DONE]\n\n")
			return
		}
		var req struct{ Model, Prompt string }
		if err := jsonDecode(r, &req); err != nil || req.Prompt == "fail" {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"message":"busy"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"object":"text_completion","choices":[{"text":%q}]}`, s.name+":"+req.Model+":"+req.Prompt)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/v1"
	return s
}

func client(t *testing.T, c *respcache.Cache, base string) *inference.Client {
	t.Helper()
	cl, err := inference.New(inference.Config{BaseURL: base,
		HTTPClient: &http.Client{Transport: c.Transport(inference.NewTransport())}})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func open(t *testing.T, dir string, opt respcache.Options) *respcache.Cache {
	t.Helper()
	c, err := respcache.Open(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func complete(t *testing.T, cl *inference.Client, model, prompt string) string {
	t.Helper()
	resp, err := cl.Completion(context.Background(), inference.CompletionRequest{Model: model, Prompt: prompt, MaxTokens: 8})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Choices[0].Text
}

// An answered request is served from the file, also after a reopen; a
// request to another model or another server is sent, never answered from
// the first one's entry.
func TestCacheServesOnlyTheSameRequestToTheSameServer(t *testing.T) {
	dir := t.TempDir()
	a, b := newServer(t, "A"), newServer(t, "B")
	c := open(t, dir, respcache.Options{})
	ca := client(t, c, a.url)
	for _, p := range []string{"one", "two", "one", "two"} {
		if got := complete(t, ca, "m1", p); got != "A:m1:"+p {
			t.Fatalf("answer %q", got)
		}
	}
	if a.n.Load() != 2 {
		t.Fatalf("server A received %d requests, want 2", a.n.Load())
	}
	if hits, total := c.Stats(); hits != 2 || total != 4 {
		t.Errorf("stats %d of %d, want 2 of 4", hits, total)
	}
	if got := complete(t, ca, "m2", "one"); got != "A:m2:one" || a.n.Load() != 3 {
		t.Errorf("another model: %q after %d requests", got, a.n.Load())
	}
	if got := complete(t, client(t, c, b.url), "m1", "one"); got != "B:m1:one" || b.n.Load() != 1 {
		t.Errorf("another server: %q after %d requests", got, b.n.Load())
	}
	c.Close()
	c2 := open(t, dir, respcache.Options{})
	if got := complete(t, client(t, c2, a.url), "m1", "two"); got != "A:m1:two" || a.n.Load() != 3 {
		t.Errorf("after reopening: %q, server A at %d requests", got, a.n.Load())
	}
}

// Errors, streams and GETs pass through and are asked again.
func TestCacheKeepsOnlyCompleteAnswers(t *testing.T) {
	a := newServer(t, "A")
	c := open(t, t.TempDir(), respcache.Options{})
	cl := client(t, c, a.url)
	for range 2 {
		if _, err := cl.Completion(context.Background(), inference.CompletionRequest{Model: "m", Prompt: "fail"}); err == nil {
			t.Fatal("a 503 answered")
		}
		if _, err := cl.Models(context.Background()); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, a.url+"/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
		resp, err := (&http.Client{Transport: c.Transport(http.DefaultTransport)}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if a.n.Load() != 6 {
		t.Errorf("server received %d requests, want all 6", a.n.Load())
	}
	if hits, _ := c.Stats(); hits != 0 {
		t.Errorf("%d answers from cache", hits)
	}
}

// The key is the canonical body: field order and spacing do not matter,
// any value does.
func TestKeyIsCanonical(t *testing.T) {
	k1, ok1 := respcache.Key("POST", "http://h/v1/completions", []byte(`{"model":"m","prompt":"p","max_tokens":8}`))
	k2, ok2 := respcache.Key("POST", "http://h/v1/completions", []byte(`{ "max_tokens": 8, "prompt":"p", "model":"m" }`))
	k3, _ := respcache.Key("POST", "http://h/v1/completions", []byte(`{"model":"m","prompt":"p","max_tokens":9}`))
	k4, _ := respcache.Key("POST", "http://h:81/v1/completions", []byte(`{"model":"m","prompt":"p","max_tokens":8}`))
	if !ok1 || !ok2 || string(k1) != string(k2) || string(k1) == string(k3) || string(k1) == string(k4) {
		t.Errorf("keys: %x %x %x %x", k1, k2, k3, k4)
	}
	for _, body := range []string{`not json`, `{"model":"m"} {}`, `{"model":"m","stream":true}`, `[1]`} {
		if _, ok := respcache.Key("POST", "http://h/v1", []byte(body)); ok {
			t.Errorf("%s is cached", body)
		}
	}
}

// An entry whose body was altered on disk is asked again, never served;
// a file that is not a cache is an error naming it.
func TestDamagedCacheNeverAnswers(t *testing.T) {
	dir := t.TempDir()
	a := newServer(t, "A")
	c := open(t, dir, respcache.Options{})
	cl := client(t, c, a.url)
	complete(t, cl, "m", "one")
	db, err := sql.Open("sqlite", filepath.Join(dir, respcache.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE responses SET body = CAST('{"object":"text_completion","choices":[{"text":"WRONG"}]}' AS BLOB)`); err != nil {
		t.Fatal(err)
	}
	if got := complete(t, cl, "m", "one"); got != "A:m:one" || a.n.Load() != 2 {
		t.Errorf("a damaged entry answered %q (server at %d requests)", got, a.n.Load())
	}
	if got := complete(t, cl, "m", "one"); got != "A:m:one" || a.n.Load() != 2 {
		t.Errorf("the re-asked answer was not cached: %q (server at %d requests)", got, a.n.Load())
	}

	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, respcache.FileName), []byte(strings.Repeat("not a database ", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := respcache.Open(bad, respcache.Options{}); err == nil || !strings.Contains(err.Error(), filepath.Join(bad, respcache.FileName)) {
		t.Errorf("a garbage file opened: %v", err)
	}
}

// Past MaxBytes the oldest answers are dropped: the newest stay cached and
// the stored bodies fit the bound.
func TestCacheIsBounded(t *testing.T) {
	dir := t.TempDir()
	a := newServer(t, "A")
	const max = 2000
	c := open(t, dir, respcache.Options{MaxBytes: max})
	cl := client(t, c, a.url)
	for i := range 100 {
		complete(t, cl, "m", fmt.Sprintf("prompt %03d", i))
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, respcache.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var size, n int64
	if err := db.QueryRow("SELECT SUM(length(body)), COUNT(*) FROM responses").Scan(&size, &n); err != nil {
		t.Fatal(err)
	}
	if size > max || n == 0 || n >= 100 {
		t.Errorf("%d entries of %d bytes, bound %d", n, size, max)
	}
	before := a.n.Load()
	complete(t, cl, "m", "prompt 099")
	complete(t, cl, "m", "prompt 000")
	if a.n.Load() != before+1 {
		t.Errorf("newest and oldest: %d requests sent, want 1 (the oldest)", a.n.Load()-before)
	}
}

// Concurrent runs of the same requests get the server's answers, each
// request's own.
func TestCacheIsSafeForConcurrentRequests(t *testing.T) {
	a := newServer(t, "A")
	c := open(t, t.TempDir(), respcache.Options{})
	cl := client(t, c, a.url)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				p := fmt.Sprint((g + i) % 25)
				resp, err := cl.Completion(context.Background(), inference.CompletionRequest{Model: "m", Prompt: p})
				if err != nil || resp.Choices[0].Text != "A:m:"+p {
					t.Errorf("prompt %s: %v %v", p, resp, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if hits, total := c.Stats(); total != 320 || hits+a.n.Load() != 320 || a.n.Load() < 25 {
		t.Errorf("%d of %d from cache, %d sent", hits, total, a.n.Load())
	}
}

func jsonDecode(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }
