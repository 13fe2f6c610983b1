package api

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEveryRouteIsInTheOpenAPIDocument(t *testing.T) {
	srv := newTestHub(t, filepath.Join(t.TempDir(), "api.db"), Quotas{})
	code, body := get(t, srv.url+"/api/v1/openapi.json")
	if code != http.StatusOK {
		t.Fatalf("openapi.json: %d", code)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	for _, rt := range slices.Concat(routes, validatorRoutes, labelRoutes, roleplayRoutes) {
		ops, ok := doc.Paths[rt.pattern]
		if !ok {
			t.Errorf("%s %s is served but not documented", rt.method, rt.pattern)
			continue
		}
		op, ok := ops[strings.ToLower(rt.method)]
		if !ok {
			t.Errorf("%s %s: method not documented", rt.method, rt.pattern)
			continue
		}
		if signed := strings.Contains(string(op), "crucibleSignature"); signed != rt.signed {
			t.Errorf("%s %s: documented as signed=%v, served signed=%v", rt.method, rt.pattern, signed, rt.signed)
		}
	}
}

func TestHealthzMetricsAndErrors(t *testing.T) {
	srv := newTestHub(t, filepath.Join(t.TempDir(), "api.db"), Quotas{})
	if code, body := get(t, srv.url+"/healthz"); code != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, body := get(t, srv.url+"/api/v1/competitions/c-nope"); code != http.StatusNotFound || !strings.Contains(body, "c-nope") {
		t.Fatalf("unknown competition: %d %s", code, body)
	}
	if code, body := get(t, srv.url+"/api/v1/nothing-here"); code != http.StatusNotFound || !strings.Contains(body, "openapi.json") {
		t.Fatalf("unknown endpoint: %d %s", code, body)
	}
	code, body := get(t, srv.url+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
	// The requests above are counted, in Prometheus text format.
	if !strings.Contains(body, `crucible_api_requests_total{code="404",route="/api/v1/competitions/{id}"} 1`) {
		t.Fatalf("metrics lack the 404 counted above:\n%s", body)
	}
}
