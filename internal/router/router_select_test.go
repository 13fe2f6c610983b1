package router_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/inference"
	"crucible/internal/router"
)

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
