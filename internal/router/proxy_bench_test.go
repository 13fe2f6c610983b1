package router_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"crucible/internal/router"
)

// BenchmarkProxy measures one chat request through the router to a worker
// that answers a fixed body, over loopback keep-alive connections. The
// client and the worker run in the same process, so read allocs/op and
// compare runs of the same machine; bench/router measures the router
// against nginx.
func BenchmarkProxy(b *testing.B) {
	answer := []byte(`{"id":"x","object":"chat.completion","model":"baseline-first","choices":[{"index":0,"message":{"role":"assistant","content":"A"},"finish_reason":"stop"}]}`)
	worker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	defer worker.Close()
	r, err := router.New(router.Config{Workers: []router.WorkerSpec{{URL: worker.URL, Model: "baseline-first"}}, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	lean := serveRouter(b, r)
	std := httptest.NewServer(r)
	defer std.Close()
	// The lean server (as crucible router runs) beside net/http's, in one
	// run: the difference between the two is the servers'.
	b.Run("server=lean", func(b *testing.B) { benchmarkProxy(b, lean.URL) })
	b.Run("server=net-http", func(b *testing.B) { benchmarkProxy(b, std.URL) })
}

func benchmarkProxy(b *testing.B, base string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
	defer client.CloseIdleConnections()
	url := base + "/v1/chat/completions"
	body := []byte(chatBody)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
