package router_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"crucible/internal/clock"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/identity"
	"crucible/internal/inference"
	"crucible/internal/router"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startBaseline starts a baseline model server serving the given policies and
// returns it.
func startBaseline(t *testing.T, policies ...string) *httptest.Server {
	t.Helper()
	ds, err := mcq.ParseFile("../app/demodata/siqa-sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	h, err := mcqtest.New(mcqtest.Config{Policies: policies, Key: ds})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// newRouter builds a router over specs and serves it.
func newRouter(t *testing.T, cfg router.Config) (*router.Router, *testServer) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	r, err := router.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, serveRouter(t, r)
}

// testServer is a router served by the lean server, as crucible router
// serves it.
type testServer struct {
	URL string
	srv *router.Server
}

// serveRouter serves r on a loopback port until the test ends.
func serveRouter(t testing.TB, r *router.Router) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{URL: "http://" + ln.Addr().String(), srv: &router.Server{Router: r}}
	go ts.srv.Serve(ln)
	t.Cleanup(ts.Close)
	return ts
}

// Close shuts the server down, waiting for active requests as
// httptest.Server's Close does.
func (ts *testServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = ts.srv.Shutdown(ctx)
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

const chatBody = `{"model":"baseline-first","messages":[{"role":"user","content":"Tracy didn't go home that evening and resisted Riley's attacks.\nWhat does Tracy need to do before this?\nA) make a new plan\nB) Go home and see Riley\nC) Find somewhere to go"}]}`

func TestParseWorkerSpec(t *testing.T) {
	tests := []struct {
		name, in string
		want     router.WorkerSpec
		wantErr  string
	}{
		{name: "a bare URL serves every listed model", in: "http://127.0.0.1:8000", want: router.WorkerSpec{URL: "http://127.0.0.1:8000/v1"}},
		{name: "a model can be named", in: "http://h:1/v1=baseline-oracle", want: router.WorkerSpec{URL: "http://h:1/v1", Model: "baseline-oracle"}},
		{name: "a model and a cap can be named", in: "http://h:1/v1=baseline-oracle:32", want: router.WorkerSpec{URL: "http://h:1/v1", Model: "baseline-oracle", MaxConcurrency: 32}},
		{name: "a model with a non-numeric tag keeps its colon", in: "http://h:1=llama3:8b", want: router.WorkerSpec{URL: "http://h:1/v1", Model: "llama3:8b"}},
		{name: "a tagged model can also take a cap", in: "http://h:1=llama3:8b:4", want: router.WorkerSpec{URL: "http://h:1/v1", Model: "llama3:8b", MaxConcurrency: 4}},
		{name: "an empty model is rejected", in: "http://h:1=", wantErr: "empty model name"},
		{name: "a cap without a model is rejected", in: "http://h:1=:4", wantErr: "empty model name"},
		{name: "a bad URL is rejected", in: "h:1=m", wantErr: "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := router.ParseWorkerSpec(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseWorkerSpec(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseWorkerSpec(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
	list, err := router.ParseWorkerList("http://a:1=m:2, ,http://b:2")
	if err != nil || len(list) != 2 || list[1].URL != "http://b:2/v1" {
		t.Fatalf("ParseWorkerList = %+v, %v", list, err)
	}
}

func TestRouterProxiesTheOpenAIAPI(t *testing.T) {
	w1 := startBaseline(t, "first", "oracle")
	w2 := startBaseline(t, "random")
	r, srv := newRouter(t, router.Config{Workers: []router.WorkerSpec{{URL: w1.URL}, {URL: w2.URL}}})
	r.CheckHealth(context.Background())
	c, err := inference.New(inference.Config{BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	t.Run("models are the union of the workers' models", func(t *testing.T) {
		list, err := c.Models(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range list.Data {
			ids = append(ids, m.ID)
		}
		if got := strings.Join(ids, ","); got != "baseline-first,baseline-oracle,baseline-random" {
			t.Fatalf("models = %s", got)
		}
	})
	t.Run("a chat completion reaches the worker serving the model", func(t *testing.T) {
		resp, err := c.Chat(ctx, inference.ChatRequest{Model: "baseline-oracle", Messages: []inference.ChatMessage{{Role: "user", Content: "hello"}}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Model != "baseline-oracle" || len(resp.Choices) != 1 {
			t.Fatalf("response = %+v", resp)
		}
	})
	t.Run("a text completion with logprobs is relayed", func(t *testing.T) {
		one := 1
		resp, err := c.Completion(ctx, inference.CompletionRequest{Model: "baseline-random", Prompt: "Question: x\nAnswer:", MaxTokens: 1, Echo: true, Logprobs: &one})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Choices[0].Logprobs == nil || len(resp.Choices[0].Logprobs.Tokens) == 0 {
			t.Fatalf("no logprobs in %+v", resp)
		}
	})
	t.Run("a streamed chat completion arrives as server-sent events", func(t *testing.T) {
		body := strings.Replace(chatBody, `"messages"`, `"stream":true,"messages"`, 1)
		resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("Content-Type = %q", ct)
		}
		var text strings.Builder
		done := false
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			if line == "[DONE]" {
				done = true
				break
			}
			var chunk inference.ChatChunk
			if err := json.Unmarshal([]byte(line), &chunk); err != nil {
				t.Fatalf("chunk %q: %v", line, err)
			}
			text.WriteString(chunk.Choices[0].Delta.Content)
		}
		if !done || text.String() != "A) make a new plan" {
			t.Fatalf("streamed %q (done=%v), want the first choice and [DONE]", text.String(), done)
		}
	})
	t.Run("an unknown model is a 404 naming the model", func(t *testing.T) {
		_, err := c.Chat(ctx, inference.ChatRequest{Model: "gpt-nope", Messages: []inference.ChatMessage{{Role: "user", Content: "x"}}})
		if !inference.IsPermanent(err) || !strings.Contains(err.Error(), `no worker serves model "gpt-nope"`) {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("a body without a model is a 400", func(t *testing.T) {
		code, body := post(t, srv.URL+"/v1/chat/completions", `{"messages":[]}`)
		if code != http.StatusBadRequest || !strings.Contains(body, "must be a JSON object") {
			t.Fatalf("got %d %s", code, body)
		}
	})
	t.Run("a worker's 400 is returned as is", func(t *testing.T) {
		code, body := post(t, srv.URL+"/v1/chat/completions", `{"model":"baseline-first","messages":[]}`)
		if code != http.StatusBadRequest || !strings.Contains(body, "messages must not be empty") {
			t.Fatalf("got %d %s", code, body)
		}
	})
	t.Run("a wrong method is a 405", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/v1/chat/completions")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})
}

// gate is a worker handler whose chat requests block until released, so
// tests can hold requests in flight without sleeping.
type gate struct {
	name    string
	arrived chan struct{}
	release chan struct{}
	served  atomic.Int64
}

func newGate(name string) *gate {
	return &gate{name: name, arrived: make(chan struct{}, 100), release: make(chan struct{})}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/models" {
		io.WriteString(w, `{"object":"list","data":[{"id":"m","object":"model","owned_by":"test"}]}`)
		return
	}
	io.Copy(io.Discard, r.Body)
	if r.Header.Get("X-Hold") != "" {
		g.arrived <- struct{}{}
		<-g.release
	}
	g.served.Add(1)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"worker":%q}`, g.name)
}

// drain waits until the router has released every worker slot (the client
// may read a whole response just before the router releases its slot).
func drain(r *router.Router) {
	for {
		busy := false
		for _, st := range r.Workers() {
			busy = busy || st.InFlight != 0
		}
		if !busy {
			return
		}
		runtime.Gosched()
	}
}

// send posts a chat request for model m and returns the answering worker.
func send(url string, hold bool) (int, string, error) {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"x"}]}`))
	if hold {
		req.Header.Set("X-Hold", "1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	var v struct{ Worker string }
	_ = json.Unmarshal(b, &v)
	if v.Worker == "" {
		return resp.StatusCode, string(b), nil
	}
	return resp.StatusCode, v.Worker, nil
}

func TestRouterSelection(t *testing.T) {
	t.Run("idle workers take turns", func(t *testing.T) {
		a, b, c := newGate("a"), newGate("b"), newGate("c")
		var specs []router.WorkerSpec
		for _, g := range []*gate{a, b, c} {
			s := httptest.NewServer(g)
			t.Cleanup(s.Close)
			specs = append(specs, router.WorkerSpec{URL: s.URL, Model: "m"})
		}
		r, srv := newRouter(t, router.Config{Workers: specs})
		for range 30 {
			if code, _, err := send(srv.URL, false); err != nil || code != 200 {
				t.Fatalf("send: %d %v", code, err)
			}
			drain(r)
		}
		for _, g := range []*gate{a, b, c} {
			if n := g.served.Load(); n != 10 {
				t.Errorf("worker %s served %d of 30, want 10", g.name, n)
			}
		}
	})
	t.Run("a busy worker is passed over for an idle one", func(t *testing.T) {
		a, b := newGate("a"), newGate("b")
		sa, sb := httptest.NewServer(a), httptest.NewServer(b)
		t.Cleanup(sa.Close)
		t.Cleanup(sb.Close)
		r, srv := newRouter(t, router.Config{Workers: []router.WorkerSpec{{URL: sa.URL, Model: "m"}, {URL: sb.URL, Model: "m"}}})
		// Hold two requests; least-outstanding puts one on each worker.
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); send(srv.URL, true) }()
		}
		<-a.arrived
		<-b.arrived
		// Release b's only; now a has one in flight and b none.
		b.release <- struct{}{}
		for r.Workers()[1].InFlight != 0 {
			runtime.Gosched()
		}
		for range 5 {
			if _, who, err := send(srv.URL, false); err != nil || who != "b" {
				t.Fatalf("request went to %q (%v), want the idle worker b", who, err)
			}
		}
		close(a.release)
		close(b.release)
		wg.Wait()
	})
	t.Run("a full worker makes requests wait for a free slot", func(t *testing.T) {
		a := newGate("a")
		sa := httptest.NewServer(a)
		t.Cleanup(sa.Close)
		r, srv := newRouter(t, router.Config{Workers: []router.WorkerSpec{{URL: sa.URL, Model: "m", MaxConcurrency: 1}}})
		first := make(chan string, 1)
		go func() { _, who, _ := send(srv.URL, true); first <- who }()
		<-a.arrived
		second := make(chan string, 1)
		go func() { _, who, _ := send(srv.URL, false); second <- who }()
		// The second request cannot reach the worker while the first holds
		// its only slot; releasing the first lets it through.
		a.release <- struct{}{}
		if who := <-first; who != "a" {
			t.Fatalf("first = %q", who)
		}
		if who := <-second; who != "a" {
			t.Fatalf("second = %q", who)
		}
		if st := r.Workers()[0]; st.InFlight != 0 || st.Served != 2 {
			t.Fatalf("status = %+v", st)
		}
	})
	t.Run("a full worker without a queue answers 503 workers_busy", func(t *testing.T) {
		a := newGate("a")
		sa := httptest.NewServer(a)
		t.Cleanup(sa.Close)
		_, srv := newRouter(t, router.Config{QueueTimeout: -1, Workers: []router.WorkerSpec{{URL: sa.URL, Model: "m", MaxConcurrency: 1}}})
		done := make(chan struct{})
		go func() { send(srv.URL, true); close(done) }()
		<-a.arrived
		code, body, err := send(srv.URL, false)
		if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "workers_busy") || !strings.Contains(body, "max concurrency") {
			t.Fatalf("got %d %s %v, want 503 workers_busy", code, body, err)
		}
		close(a.release)
		<-done
	})
}

func TestRouterFailures(t *testing.T) {
	t.Run("a worker's 500 is relayed, counted and not retried", func(t *testing.T) {
		var calls atomic.Int32
		bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"error":{"message":"CUDA out of memory","type":"server_error"}}`)
		}))
		t.Cleanup(bad.Close)
		r, srv := newRouter(t, router.Config{Workers: []router.WorkerSpec{{URL: bad.URL, Model: "m"}}})
		code, body, _ := send(srv.URL, false)
		if code != http.StatusInternalServerError || !strings.Contains(body, "CUDA out of memory") {
			t.Fatalf("got %d %s", code, body)
		}
		if calls.Load() != 1 {
			t.Fatalf("worker called %d times, want 1", calls.Load())
		}
		if st := r.Workers()[0]; st.Errors != 1 || st.Served != 1 {
			t.Fatalf("status = %+v", st)
		}
	})
	t.Run("a refused connection is retried on another worker and ejects the dead one", func(t *testing.T) {
		dead := deadURL(t)
		g := newGate("live")
		live := httptest.NewServer(g)
		t.Cleanup(live.Close)
		r, srv := newRouter(t, router.Config{Workers: []router.WorkerSpec{{URL: dead, Model: "m"}, {URL: live.URL, Model: "m"}}})
		for range 4 {
			if code, who, err := send(srv.URL, false); err != nil || code != 200 || who != "live" {
				t.Fatalf("got %d %q %v, want the live worker", code, who, err)
			}
		}
		if st := r.Workers()[0]; st.Healthy || !strings.Contains(st.LastError, "refused") {
			t.Fatalf("dead worker status = %+v, want ejected", st)
		}
	})
	t.Run("no reachable worker is a 502 naming the error", func(t *testing.T) {
		_, srv := newRouter(t, router.Config{Workers: []router.WorkerSpec{{URL: deadURL(t), Model: "m"}}})
		code, body, _ := send(srv.URL, false)
		if code != http.StatusBadGateway || !strings.Contains(body, "could not reach a worker") {
			t.Fatalf("got %d %s", code, body)
		}
		code, body, _ = send(srv.URL, false)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "no_healthy_worker") {
			t.Fatalf("after ejection got %d %s, want 503 no_healthy_worker", code, body)
		}
	})
	t.Run("a body that breaks off is an error for the client", func(t *testing.T) {
		broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, `{"partial":`)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}))
		t.Cleanup(broken.Close)
		r, srv := newRouter(t, router.Config{Workers: []router.WorkerSpec{{URL: broken.URL, Model: "m"}}})
		resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Fatal("a truncated response was passed off as complete")
		}
		if st := r.Workers()[0]; st.Errors != 1 {
			t.Fatalf("status = %+v, want one error", st)
		}
	})
}

// deadURL returns the URL of a port nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestRouterHealthChecks(t *testing.T) {
	var sick atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"object":"list","data":[{"id":"m","object":"model","owned_by":"test"},{"id":"n","object":"model","owned_by":"test"}]}`)
	})
	w1, w2 := httptest.NewServer(h), httptest.NewServer(h)
	t.Cleanup(w1.Close)
	t.Cleanup(w2.Close)
	// The second worker claims model x, which its server does not list.
	r, srv := newRouter(t, router.Config{Workers: []router.WorkerSpec{{URL: w1.URL}, {URL: w2.URL + "/v1/", Model: "x"}}})
	ctx := context.Background()
	models := func() string {
		resp, err := http.Get(srv.URL + "/v1/models")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l inference.ModelList
		json.NewDecoder(resp.Body).Decode(&l)
		var ids []string
		for _, m := range l.Data {
			ids = append(ids, m.ID)
		}
		return strings.Join(ids, ",")
	}
	steps := []struct {
		name       string
		sick       bool
		wantModels string
		wantHealth []bool
	}{
		{"a worker without a model is routable after its first check", false, "m,n", []bool{true, false}},
		{"a failing check ejects the workers", true, "", []bool{false, false}},
		{"a passing check re-admits the worker", false, "m,n", []bool{true, false}},
	}
	if got := models(); got != "x" {
		t.Fatalf("before any check models = %q, want only the named worker's x", got)
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			sick.Store(s.sick)
			r.CheckHealth(ctx)
			if got := models(); got != s.wantModels {
				t.Fatalf("models = %q, want %q", got, s.wantModels)
			}
			for i, st := range r.Workers() {
				if st.Healthy != s.wantHealth[i] {
					t.Fatalf("worker %d = %+v, want healthy %v", i, st, s.wantHealth[i])
				}
			}
		})
	}
	if st := r.Workers()[1]; !strings.Contains(st.LastError, `does not list model "x"`) {
		t.Fatalf("named worker error = %q", st.LastError)
	}
}

// TestRouterSurvivesAWorkerKilledMidLoad kills one of three workers while
// clients keep sending; every request must still succeed on the others and
// the dead worker must be ejected.
func TestRouterSurvivesAWorkerKilledMidLoad(t *testing.T) {
	ds, err := mcq.ParseFile("../app/demodata/siqa-sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	h, err := mcqtest.New(mcqtest.Config{Policies: []string{"first"}, Key: ds})
	if err != nil {
		t.Fatal(err)
	}
	var servers []*httptest.Server
	var specs []router.WorkerSpec
	for range 3 {
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		servers = append(servers, s)
		specs = append(specs, router.WorkerSpec{URL: s.URL, Model: "baseline-first"})
	}
	r, srv := newRouter(t, router.Config{Workers: specs})
	victim := servers[1]

	const clients, perClient, killAfter = 8, 150, 200
	var ok, done atomic.Int64
	var killOnce sync.Once
	kill := func() {
		// A hard kill: stop accepting and cut every open connection.
		victim.Listener.Close()
		victim.CloseClientConnections()
	}
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := inference.New(inference.Config{BaseURL: srv.URL})
			if err != nil {
				errs <- err
				return
			}
			for range perClient {
				if done.Add(1) == killAfter {
					killOnce.Do(kill)
				}
				resp, err := c.Chat(context.Background(), inference.ChatRequest{Model: "baseline-first", Messages: []inference.ChatMessage{{Role: "user", Content: "hi"}}})
				if err != nil {
					errs <- err
					return
				}
				if resp.Choices[0].Message.Content != "A" {
					errs <- fmt.Errorf("answer %q", resp.Choices[0].Message.Content)
					return
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("request failed: %v", err)
	}
	if got := ok.Load(); got != clients*perClient {
		t.Fatalf("%d of %d requests succeeded", got, clients*perClient)
	}
	st := r.Workers()
	if st[1].Healthy || st[1].Errors == 0 {
		t.Fatalf("killed worker still admitted or its failures not counted: %+v", st[1])
	}
	if st[0].Served+st[2].Served <= st[1].Served {
		t.Fatalf("the survivors served too little: %+v", st)
	}
	// Health checks keep it out.
	r.CheckHealth(context.Background())
	if r.Workers()[1].Healthy {
		t.Fatal("a health check re-admitted the dead worker")
	}
}

func TestRouterAdminAPI(t *testing.T) {
	admin, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	ver := &identity.Verifier{Audience: "router-test", Clock: clk, Nonces: &router.MemoryNonces{Clock: clk}}
	r, srv := newRouter(t, router.Config{Verifier: ver, AdminKeys: []string{admin.ID()}})
	w := startBaseline(t, "oracle")

	type call struct {
		method, path, body string
		key                *identity.Key
	}
	do := func(c call) (int, string, map[string]string) {
		t.Helper()
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		var hdr map[string]string
		if c.key != nil {
			hdr, err = c.key.Sign(ver.Audience, c.method, c.path, clk.Now().Unix(), []byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), hdr
	}
	reg := fmt.Sprintf(`{"url":%q,"model":"baseline-oracle","max_concurrency":4}`, w.URL)
	del := "/api/v1/router/workers?url=" + url.QueryEscape(w.URL)
	tests := []struct {
		name     string
		call     call
		wantCode int
		wantBody string
	}{
		{"an unsigned registration is refused", call{"POST", "/api/v1/router/workers", reg, nil}, 401, "not signed"},
		{"a key that is not an admin key is forbidden", call{"POST", "/api/v1/router/workers", reg, stranger}, 403, "--admin-key " + stranger.ID()},
		{"an admin registers a worker", call{"POST", "/api/v1/router/workers", reg, admin}, 201, `"max_concurrency":4`},
		{"registering it twice conflicts", call{"POST", "/api/v1/router/workers", reg, admin}, 409, "already registered"},
		{"an unknown field is refused", call{"POST", "/api/v1/router/workers", `{"url":"http://h:1","weight":3}`, admin}, 400, "unknown field"},
		{"an admin lists the workers", call{"GET", "/api/v1/router/workers", "", admin}, 200, `"healthy":true`},
		{"an admin unregisters the worker", call{"DELETE", del, "", admin}, 200, "removed"},
		{"unregistering it again is not found", call{"DELETE", del, "", admin}, 404, "no worker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := do(tt.call)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("got %d %s, want %d containing %q", code, body, tt.wantCode, tt.wantBody)
			}
		})
		if tt.name == "an admin registers a worker" {
			code, body := post(t, srv.URL+"/v1/chat/completions", `{"model":"baseline-oracle","messages":[{"role":"user","content":"x"}]}`)
			if code != 200 {
				t.Fatalf("the registered worker does not serve: %d %s", code, body)
			}
		}
	}
	t.Run("a replayed request is refused", func(t *testing.T) {
		path := "/api/v1/router/workers"
		hdr, err := admin.Sign(ver.Audience, "GET", path, clk.Now().Unix(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []int{200, 401} {
			req, _ := http.NewRequest("GET", srv.URL+path, nil)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("attempt %d: status %d, want %d", i+1, resp.StatusCode, want)
			}
		}
	})
	t.Run("a request an admin signed for a hub is refused", func(t *testing.T) {
		path := "/api/v1/router/workers"
		hdr, err := admin.Sign("hub_0123", "POST", path, clk.Now().Unix(), []byte(reg))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(reg))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(b), "signed for another hub") {
			t.Fatalf("got %d %s, want 401 signed for another hub", resp.StatusCode, b)
		}
	})
	if len(r.Workers()) != 0 {
		t.Fatalf("workers left: %+v", r.Workers())
	}
	t.Run("without admin keys the admin API is disabled", func(t *testing.T) {
		_, srv2 := newRouter(t, router.Config{})
		resp, err := http.Post(srv2.URL+"/api/v1/router/workers", "application/json", strings.NewReader(reg))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(b), "--admin-key") {
			t.Fatalf("got %d %s", resp.StatusCode, b)
		}
	})
}

func TestRouterMetrics(t *testing.T) {
	w := startBaseline(t, "first")
	reg := prometheus.NewRegistry()
	_, srv := newRouter(t, router.Config{Registry: reg, Workers: []router.WorkerSpec{{URL: w.URL, Model: "baseline-first", MaxConcurrency: 3}}})
	for range 3 {
		if code, body := post(t, srv.URL+"/v1/chat/completions", chatBody); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
	}
	post(t, srv.URL+"/v1/chat/completions", `{"model":"nope"}`)
	base := w.URL + "/v1"
	want := fmt.Sprintf(`
# HELP crucible_router_worker_requests_total Responses relayed from a worker, whatever their status.
# TYPE crucible_router_worker_requests_total counter
crucible_router_worker_requests_total{worker=%q} 3
# HELP crucible_router_worker_in_flight Requests currently sent to a worker and not yet fully relayed.
# TYPE crucible_router_worker_in_flight gauge
crucible_router_worker_in_flight{worker=%q} 0
# HELP crucible_router_worker_errors_total Failed requests to a worker: connection failures, 5xx responses and bodies that broke off.
# TYPE crucible_router_worker_errors_total counter
crucible_router_worker_errors_total{worker=%q} 0
`, base, base, base)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"crucible_router_worker_requests_total", "crucible_router_worker_in_flight", "crucible_router_worker_errors_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "crucible_router_worker_request_duration_seconds"); err != nil || n != 1 {
		t.Fatalf("latency histograms = %d, %v", n, err)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if !strings.Contains(buf.String(), `crucible_router_rejected_total{code="model_not_found"} 1`) {
		t.Fatalf("/metrics lacks the rejection:\n%s", buf.String())
	}
}
