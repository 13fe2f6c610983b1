package api

import (
	"bytes"
	"context"
	"crucible/internal/api/apiv1"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/mcq"
	"crucible/internal/intake"
	"crucible/internal/kind"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/identity"
	"crucible/internal/jobs"
	"crucible/internal/pool"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// testHub is the API over a real store (SQLite or PostgreSQL) with a fake
// clock and no workers, so submissions stay queued.
type testHub struct {
	url, id string
	db      *store.DB
	clock   *clock.Fake
	pools   *pool.Service
}

func newTestHub(t *testing.T, dbURL string, quotas Quotas) *testHub {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := clock.NewFake(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	q, err := jobs.New(ctx, jobs.Config{DB: db, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close) // release the SQLite owner lock before the next hub opens the file
	hubID, err := db.HubID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := kind.NewRegistry(kinds.Builtin(kinds.Egress{}, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	entries := intake.New(intake.Config{DB: db, Kinds: reg, Evaluations: q, Clock: clk})
	// The exempt keys are the operators, who may deposit a pool's fund.
	pools := pool.New(pool.Config{DB: db, Kind: mcq.Name, Clock: clk, Intake: entries, Evaluations: q, Operators: quotas.Exempt})
	srv := httptest.NewServer(New(Config{DB: db, Clock: clk, Quotas: quotas, HubID: hubID, Kinds: reg, Intake: entries,
		Pools: pools}).Handler())
	t.Cleanup(srv.Close)
	return &testHub{url: srv.URL, id: hubID, db: db, clock: clk, pools: pools}
}

// response is an answer of the hub.
type response struct {
	code       int
	body       string
	retryAfter string
}

// post sends a request signed by key; body is sent as is when it is []byte
// and JSON-encoded otherwise.
func (h *testHub) post(t *testing.T, key *identity.Key, path string, body any) response {
	t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, h.url+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	headers, err := key.Sign(h.id, http.MethodPost, path, h.clock.Now().Unix(), raw)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, body: string(b), retryAfter: resp.Header.Get("Retry-After")}
}

func newKey(t *testing.T) *identity.Key {
	t.Helper()
	k, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const testDataset = `{"question":"q","choices":["a","b"],"answer":0}`

func mcqCompetition(title string) apiv1.CreateCompetitionRequest {
	return apiv1.CreateCompetitionRequest{Kind: "mcq", Title: title, DatasetName: "d", Dataset: testDataset}
}

// modelSubmission submits the model named name (a model has one active
// entry per competition: use a new name for each entry).
func modelSubmission(name string) apiv1.CreateSubmissionRequest {
	return apiv1.CreateSubmissionRequest{Name: name, BaseURL: "http://127.0.0.1:9/v1", Model: name}
}

// createCompetition makes an mcq competition as key and returns its id.
func (h *testHub) createCompetition(t *testing.T, key *identity.Key) string {
	t.Helper()
	resp := h.post(t, key, "/api/v1/competitions", mcqCompetition("honest"))
	if resp.code != http.StatusCreated {
		t.Fatalf("create competition: %d %s", resp.code, resp.body)
	}
	var c competition.Competition
	if err := json.Unmarshal([]byte(resp.body), &c); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// wantRefused asserts a 4xx answer whose error names every one of want.
func wantRefused(t *testing.T, what string, resp response, code int, want ...string) {
	t.Helper()
	if resp.code != code {
		t.Fatalf("%s: %d %.300s; want %d", what, resp.code, resp.body, code)
	}
	for _, w := range want {
		if !strings.Contains(resp.body, w) {
			t.Fatalf("%s: %.300s does not name %q", what, resp.body, w)
		}
	}
}

func TestHostileTextIsRefusedBeforeItIsStored(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			h, alice := newTestHub(t, d.URL, Quotas{}), newKey(t)

			nul := mcqCompetition("a title with a NUL\x00 in it")
			wantRefused(t, "NUL in a title", h.post(t, alice, "/api/v1/competitions", nul), http.StatusBadRequest, "title", "U+0000")

			huge := mcqCompetition("huge name")
			huge.DatasetName = strings.Repeat("x", 50<<20)
			wantRefused(t, "50 MB dataset_name", h.post(t, alice, "/api/v1/competitions", huge), http.StatusBadRequest,
				"dataset_name", "52428800 bytes", "limit of 200 bytes")

			invalid := []byte(`{"kind":"mcq","title":"bad ` + "\xff\xfe" + ` bytes","dataset":` + fmt.Sprintf("%q", testDataset) + `}`)
			wantRefused(t, "invalid UTF-8", h.post(t, alice, "/api/v1/competitions", invalid), http.StatusBadRequest, "not valid UTF-8", "offset 27")

			tab := mcqCompetition("one\tline")
			wantRefused(t, "a tab in a one-line field", h.post(t, alice, "/api/v1/competitions", tab), http.StatusBadRequest, "title", "U+0009")

			list, err := h.db.ListCompetitions(context.Background())
			if err != nil || len(list) != 0 {
				t.Fatalf("after refused requests the hub lists %d competitions (%v), want none", len(list), err)
			}

			// Free text keeps its newlines and tabs; an honest request still works.
			ok := mcqCompetition("honest")
			ok.Dataset = testDataset + "\n\t\n" + `{"question":"q2","choices":["a","b"],"answer":1}` + "\r\n"
			if resp := h.post(t, alice, "/api/v1/competitions", ok); resp.code != http.StatusCreated {
				t.Fatalf("honest competition: %d %s", resp.code, resp.body)
			}
		})
	}
}

// Every request type goes through the same checks: a NUL in any of its text
// fields, in nested types, slices and map keys too, is a 400 naming the field.
func TestEveryRequestTypeRefusesControlCharacters(t *testing.T) {
	h, alice := newTestHub(t, storetest.Databases(t)[0].URL, Quotas{}), newKey(t)
	id := h.createCompetition(t, alice)
	tests := []struct {
		path  string
		body  string
		field string
	}{
		{"/api/v1/competitions", `{"kind":"mcq","title":"t","dataset_name":"d\u0000"}`, "dataset_name"},
		{"/api/v1/competitions", `{"kind":"roleplay","title":"t","roleplay":{"generator":{"base_url":"http://x\u0000"}}}`, "roleplay.generator.base_url"},
		{"/api/v1/competitions/" + id + "/submissions", `{"base_url":"http://127.0.0.1:9/v1","model":"m\u0000"}`, "model"},
		{"/api/v1/competitions/" + id + "/submissions", `{"task":"t","patch":"--- a\n+++ b\u0000"}`, "patch"},
		{"/api/v1/pools", `{"title":"t","asset":"USD\u0000"}`, "asset"},
		{"/api/v1/pools/" + id + "/entries", `{"base_url":"http://127.0.0.1:9/v1","model":"m","api_key":"k\u0000"}`, "api_key"},
		{"/api/v1/allocate", `{"rule":"proportional","amount":10,"scores":{"a\u0000":1}}`, "scores key"},
		{"/api/v1/consensus/validators", `{"validator":"ed25519:\u0000","stake":1}`, "validator"},
		{"/api/v1/consensus/epochs/0/weights", `{"competition_id":"c\u0000","weights":{"0":1}}`, "competition_id"},
		{"/api/v1/preference/competitions", `{"title":"t","preference":{"operators":["x\u0000"]}}`, "preference.operators[0]"},
		{"/api/v1/competitions/" + id + "/preference/ratings", `{"task_id":"t","order":["a","b\u0000"]}`, "order[1]"},
		{"/api/v1/contributor-keys", `{"label":"l\u0000"}`, "label"},
	}
	for _, tt := range tests {
		wantRefused(t, tt.path+" "+tt.field, h.post(t, alice, tt.path, []byte(tt.body)), http.StatusBadRequest, tt.field+":", "U+0000")
	}
}

func TestNumericKnobsAreBounded(t *testing.T) {
	h, alice := newTestHub(t, storetest.Databases(t)[0].URL, Quotas{}), newKey(t)
	id := h.createCompetition(t, alice)
	tests := []struct {
		name, path, body string
		want             []string
	}{
		{"a negative max_tokens", "/api/v1/competitions", `{"kind":"mcq","title":"t","dataset":"x","max_tokens":-5}`, []string{"max_tokens: -5 is below its minimum 0"}},
		{"a huge max_tokens", "/api/v1/competitions", `{"kind":"mcq","title":"t","dataset":"x","max_tokens":2000000000}`, []string{"max_tokens: 2000000000 is above its maximum 32768"}},
		{"a private fraction of 1", "/api/v1/pools", `{"title":"t","private_fraction":1}`, []string{"private_fraction: 1 must be below 1"}},
		{"a negative private fraction", "/api/v1/pools", `{"title":"t","private_fraction":-0.5}`, []string{"private_fraction: -0.5 is below its minimum 0"}},
		{"a negative stake", "/api/v1/consensus/validators", `{"validator":"v","stake":-1}`, []string{"stake: -1 is below its minimum 0"}},
		{"a zero allocation", "/api/v1/allocate", `{"rule":"proportional","amount":0,"scores":{"a":1}}`, []string{"amount: 0 is below its minimum 1"}},
		{"too many entrants to allocate to", "/api/v1/allocate", allocateBody(10001), []string{"scores: 10001 entries is over its limit of 10000"}},
		{"too many ranked responses", "/api/v1/competitions/" + id + "/preference/ratings", `{"task_id":"t","values":[` + strings.Repeat("1,", 64) + `1]}`, []string{"values: 65 entries is over its limit of 64"}},
	}
	for _, tt := range tests {
		wantRefused(t, tt.name, h.post(t, alice, tt.path, []byte(tt.body)), http.StatusBadRequest, tt.want...)
	}
	resp := h.post(t, alice, "/api/v1/competitions/"+id+"/submissions", modelSubmission("m"))
	var sub competition.Submission
	if resp.code != http.StatusCreated || json.Unmarshal([]byte(resp.body), &sub) != nil {
		t.Fatalf("submit: %d %s", resp.code, resp.body)
	}
	for _, q := range []string{"limit=0", "limit=1001", "offset=-1", "offset=9999999999"} {
		code, body := get(t, h.url+"/api/v1/submissions/"+sub.ID+"/results?"+q)
		if code != http.StatusBadRequest {
			t.Fatalf("results?%s: %d %s; want 400", q, code, body)
		}
	}
	// The bounds themselves are accepted.
	ok := mcqCompetition("the largest budget")
	ok.MaxTokens = 32768
	if resp := h.post(t, alice, "/api/v1/competitions", ok); resp.code != http.StatusCreated {
		t.Fatalf("max_tokens 32768: %d %s", resp.code, resp.body)
	}
}

func allocateBody(n int) string {
	scores := map[string]float64{}
	for i := range n {
		scores[fmt.Sprint("e", i)] = 1
	}
	b, _ := json.Marshal(apiv1.AllocateRequest{Rule: "proportional", Amount: 100, Scores: scores})
	return string(b)
}

// Ids in paths and queries reach the database: a NUL or a bad byte in one is
// a 400 on both databases, for the API and the web pages alike.
func TestHostileURLsAreRefusedWith400(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			h := newTestHub(t, d.URL, Quotas{})
			for path, want := range map[string]string{
				"/api/v1/competitions/c%00x":                                  "URL path: control character U+0000",
				"/api/v1/pools/p%ff":                                          "URL path: not valid UTF-8",
				"/api/v1/submissions/s%1b/results":                            "URL path: control character U+001B",
				"/api/v1/ledger/balances?account=a%00":                        "query parameter account: control character U+0000",
				"/api/v1/ledger/history?account=%c3%28":                       "query parameter account: not valid UTF-8",
				"/competitions/c%00":                                          "URL path: control character U+0000",
				"/api/v1/ledger/balances?" + strings.Repeat("a", 3000) + "=1": "query parameter name: 3000 bytes is over its limit of 2048 bytes",
			} {
				code, body := get(t, h.url+path)
				if code != http.StatusBadRequest || !strings.Contains(body, want) {
					t.Errorf("GET %.60s: %d %.200s; want 400 naming %q", path, code, body, want)
				}
			}
		})
	}
}
