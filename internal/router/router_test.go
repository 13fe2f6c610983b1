package router_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
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
