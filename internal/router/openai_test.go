package router_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"crucible/internal/baseline"
	"crucible/internal/inference"
	"crucible/internal/router"
)

const siqaPrompt = `Tracy didn't go home that evening and resisted Riley's attacks.\nWhat does Tracy need to do before this?\nA) make a new plan\nB) Go home and see Riley\nC) Find somewhere to go`

func TestRouterServesTheOpenAISurface(t *testing.T) {
	w1 := startBaseline(t, "first", "oracle")
	w2 := startBaseline(t, "random")
	r, srv := newRouter(t, router.Config{Workers: []router.WorkerSpec{{URL: w1.URL}, {URL: w2.URL}}})
	r.CheckHealth(context.Background())

	t.Run("a model is retrieved from the healthy workers' lists", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/v1/models/baseline-random")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m inference.Model
		if err := json.NewDecoder(resp.Body).Decode(&m); resp.StatusCode != 200 || err != nil || m.ID != "baseline-random" || m.Object != "model" || m.OwnedBy != baseline.OwnedBy {
			t.Fatalf("got %d %+v %v", resp.StatusCode, m, err)
		}
	})
	t.Run("an unknown model is a 404 model_not_found", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/v1/models/gpt-4")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e inference.ErrorResponse
		if err := json.NewDecoder(resp.Body).Decode(&e); resp.StatusCode != 404 || err != nil || e.Error.Code == nil || *e.Error.Code != "model_not_found" {
			t.Fatalf("got %d %+v %v", resp.StatusCode, e, err)
		}
	})
	t.Run("embeddings pass through to a worker serving the model", func(t *testing.T) {
		st, body := post(t, srv.URL+"/v1/embeddings", `{"model":"baseline-random","input":["the cat sat"],"dimensions":8}`)
		var l struct {
			Data []struct {
				Embedding []float32 `json:"embedding"`
			} `json:"data"`
			Model string `json:"model"`
		}
		if err := json.Unmarshal([]byte(body), &l); st != 200 || err != nil || len(l.Data) != 1 || l.Model != "baseline-random" {
			t.Fatalf("got %d %s", st, body)
		}
		want := baseline.Embed("the cat sat", 8)
		for i := range want {
			if l.Data[0].Embedding[i] != want[i] {
				t.Fatalf("embedding %v, want %v", l.Data[0].Embedding, want)
			}
		}
	})
	t.Run("a streamed completion with n and include_usage passes through", func(t *testing.T) {
		st, body := post(t, srv.URL+"/v1/completions", `{"model":"baseline-first","prompt":"`+siqaPrompt+`\nAnswer:","n":2,"stream":true,"stream_options":{"include_usage":true}}`)
		if st != 200 {
			t.Fatalf("got %d %s", st, body)
		}
		texts := make([]string, 2)
		var usage *inference.Usage
		evs := strings.Split(strings.TrimSpace(body), "\n\n")
		if evs[len(evs)-1] != "data: [DONE]" {
			t.Fatalf("stream does not end with [DONE]:\n%s", body)
		}
		for _, ev := range evs[:len(evs)-1] {
			var c inference.CompletionChunk
			if err := json.Unmarshal([]byte(strings.TrimPrefix(ev, "data: ")), &c); err != nil {
				t.Fatalf("chunk %q: %v", ev, err)
			}
			for _, ch := range c.Choices {
				texts[ch.Index] += ch.Text
			}
			if c.Usage != nil {
				usage = c.Usage
			}
		}
		if texts[0] != " A" || texts[1] != " A" || usage == nil || usage.CompletionTokens != 2 {
			t.Fatalf("texts %q, usage %+v", texts, usage)
		}
	})
}

// streamer is a worker whose completions stream one chunk and then hold
// the response open until the request is cancelled, which it reports.
type streamer struct {
	first     chan struct{} // a stream began
	cancelled chan struct{} // a stream's request was cancelled
}

func newStreamer() *streamer {
	return &streamer{first: make(chan struct{}, 10), cancelled: make(chan struct{}, 10)}
}

func (s *streamer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/models" {
		io.WriteString(w, `{"object":"list","data":[{"id":"m","object":"model","owned_by":"test"}]}`)
		return
	}
	io.Copy(io.Discard, r.Body)
	if r.Header.Get("X-Hold") == "" {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"worker":"streamer"}`)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	io.WriteString(w, "data: {\"n\":1}\n\n")
	w.(http.Flusher).Flush()
	s.first <- struct{}{}
	if r.Header.Get("X-Flood") != "" {
		// Stream until the router stops taking the events.
		event := "data: " + strings.Repeat("x", 32<<10) + "\n\n"
		for r.Context().Err() == nil {
			if _, err := io.WriteString(w, event); err != nil {
				break
			}
			w.(http.Flusher).Flush()
		}
	}
	<-r.Context().Done()
	s.cancelled <- struct{}{}
}

// openStream starts a held stream through the router and returns the
// response once its first event has arrived (so the router relayed it
// before the stream ended: nothing is buffered whole).
// streamingRouter is a router with one slot in front of a streamer, its
// exchanges bounded by maxDuration (0: the default).
func streamingRouter(t *testing.T, maxDuration time.Duration) (*streamer, *router.Router, *testServer) {
	t.Helper()
	s := newStreamer()
	ws := httptest.NewServer(s)
	t.Cleanup(ws.Close)
	r, srv := newRouter(t, router.Config{
		Workers:             []router.WorkerSpec{{URL: ws.URL, Model: "m", MaxConcurrency: 1}},
		MaxResponseDuration: maxDuration,
	})
	return s, r, srv
}

// wantSlotFreed waits for the worker's request to be cancelled and checks
// that the router's only slot serves the next request.
func wantSlotFreed(t *testing.T, s *streamer, r *router.Router, url string) {
	t.Helper()
	<-s.cancelled
	drain(r)
	if code, who, err := send(url, false); err != nil || code != 200 || who != "streamer" {
		t.Fatalf("next request: %d %q %v", code, who, err)
	}
}

func openStream(t *testing.T, ctx context.Context, url string, flood bool) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
	req.Header.Set("X-Hold", "1")
	if flood {
		req.Header.Set("X-Flood", "1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: {\"n\":1}\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	return resp, br
}

func TestRouterStreamsFreeTheirSlot(t *testing.T) {
	t.Run("a client leaving mid-stream cancels the worker's request and frees its slot", func(t *testing.T) {
		s, r, srv := streamingRouter(t, 0)
		ctx, cancel := context.WithCancel(context.Background())
		resp, _ := openStream(t, ctx, srv.URL, false)
		cancel()
		resp.Body.Close()
		// With the only slot leaked this would wait out the queue and 503.
		wantSlotFreed(t, s, r, srv.URL)
	})
	t.Run("a stream outliving MaxResponseDuration is cut as a failure and frees its slot", func(t *testing.T) {
		s, r, srv := streamingRouter(t, 200*time.Millisecond)
		resp, br := openStream(t, context.Background(), srv.URL, false)
		defer resp.Body.Close()
		if _, err := io.ReadAll(br); err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("a cut stream ended cleanly (err %v); the client would take it as complete", err)
		}
		wantSlotFreed(t, s, r, srv.URL)
	})
	t.Run("a client that stops reading a stream cannot hold the slot past MaxResponseDuration", func(t *testing.T) {
		s, r, srv := streamingRouter(t, 200*time.Millisecond)
		// The client reads the first event and then nothing more, so the
		// router's writes to it block once the socket buffers fill.
		resp, _ := openStream(t, context.Background(), srv.URL, true)
		defer resp.Body.Close()
		wantSlotFreed(t, s, r, srv.URL)
	})
	t.Run("a worker that never answers is a 504 after MaxResponseDuration", func(t *testing.T) {
		g := newGate("silent")
		gs := httptest.NewServer(g)
		t.Cleanup(gs.Close)
		t.Cleanup(func() { close(g.release) })
		_, srv := newRouter(t, router.Config{
			Workers:             []router.WorkerSpec{{URL: gs.URL, Model: "m"}},
			MaxResponseDuration: 200 * time.Millisecond,
		})
		code, body, err := send(srv.URL, true)
		if err != nil || code != http.StatusGatewayTimeout || !strings.Contains(body, "worker_timeout") {
			t.Fatalf("got %d %s %v", code, body, err)
		}
	})
}
