package router_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"crucible/internal/clock"
	"crucible/internal/identity"
	"crucible/internal/router"
)

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
