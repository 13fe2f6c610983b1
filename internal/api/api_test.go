package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"crucible/internal/jobs"
	"crucible/internal/store"
)

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q, err := jobs.New(ctx, jobs.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close) // release the SQLite owner lock before the next hub opens the file
	hubID, err := db.HubID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{DB: db, Queue: q, HubID: hubID}).Handler())
	t.Cleanup(srv.Close)
	return srv
}

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
	srv := newTestServer(t)
	code, body := get(t, srv.URL+"/api/v1/openapi.json")
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
	for _, rt := range append(append(append([]route{}, routes...), validatorRoutes...), labelRoutes...) {
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
	srv := newTestServer(t)
	if code, body := get(t, srv.URL+"/healthz"); code != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, body := get(t, srv.URL+"/api/v1/competitions/c-nope"); code != http.StatusNotFound || !strings.Contains(body, "c-nope") {
		t.Fatalf("unknown competition: %d %s", code, body)
	}
	if code, body := get(t, srv.URL+"/api/v1/nothing-here"); code != http.StatusNotFound || !strings.Contains(body, "openapi.json") {
		t.Fatalf("unknown endpoint: %d %s", code, body)
	}
	code, body := get(t, srv.URL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
	// The requests above are counted, in Prometheus text format.
	if !strings.Contains(body, `crucible_api_requests_total{code="404",route="/api/v1/competitions/{id}"} 1`) {
		t.Fatalf("metrics lack the 404 counted above:\n%s", body)
	}
}
