package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crucible/internal/api/apiv1"
	"crucible/internal/eval/kinds"
	"crucible/internal/intake"
	"crucible/internal/kind"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"crucible/internal/api"
	"crucible/internal/client"
	"crucible/internal/identity"
	"crucible/internal/jobs"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// hub is one API server on a real listener over its own database.
type hub struct {
	srv *httptest.Server
	id  string
}

func startHub(t *testing.T, dbURL string) hub {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q, err := jobs.New(ctx, jobs.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close) // release the SQLite owner lock before the next hub opens the file
	id, err := db.HubID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg := builtinKinds(t)
	srv := httptest.NewServer(api.New(api.Config{DB: db, HubID: id, Kinds: reg,
		Intake: intake.New(intake.Config{DB: db, Kinds: reg, Evaluations: q})}).Handler())
	t.Cleanup(srv.Close)
	return hub{srv: srv, id: id}
}

// rawRequest sends a request of bodyLen zero bytes over its own TCP
// connection, writing the body while it waits for the answer, as an
// attacker would: the answer may come before the body is sent (or never
// read). chunked leaves the length unannounced.
func rawRequest(t *testing.T, addr, method, path string, headers map[string]string, bodyLen int64, chunked bool) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer conn.Close()
	// A guard against a hang, not a timed assertion.
	_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n", method, path, addr)
	if chunked {
		head.WriteString("Transfer-Encoding: chunked\r\n")
	} else {
		fmt.Fprintf(&head, "Content-Length: %d\r\n", bodyLen)
	}
	for k, v := range headers {
		fmt.Fprintf(&head, "%s: %s\r\n", k, v)
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(conn, head.String()); err != nil {
		t.Error(err)
		return 0, ""
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		chunk := make([]byte, 64<<10)
		for sent := int64(0); sent < bodyLen; sent += int64(len(chunk)) {
			if chunked {
				if _, err := fmt.Fprintf(conn, "%x\r\n", len(chunk)); err != nil {
					return
				}
			}
			if _, err := conn.Write(chunk); err != nil {
				return
			}
			if chunked {
				if _, err := io.WriteString(conn, "\r\n"); err != nil {
					return
				}
			}
		}
		if chunked {
			_, _ = io.WriteString(conn, "0\r\n\r\n")
		}
	}()
	defer func() { conn.Close(); <-written }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Errorf("%s %s: no answer: %v", method, path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b)
}

// peakRSS is the process's resident-set high-water mark (VmHWM) in bytes.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("read /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// TestBodiesOfUnauthenticatedRequestsAreNotRead sends 20 concurrent 64 MB
// bodies that no key signed properly: unsigned, signed for another hub,
// and badly signed (announced or chunked) to routes whose limit is smaller,
// plus unsigned chunked previews. Each is refused (401 before its body is
// read, 413 at its route's limit) and the server allocates a few MB in
// all, where reading every body first allocated gigabytes.
func TestBodiesOfUnauthenticatedRequestsAreNotRead(t *testing.T) {
	h := startHub(t, storetest.Databases(t)[0].URL)
	addr := strings.TrimPrefix(h.srv.URL, "http://")
	const bodyLen = 64 << 20
	key, _ := identity.NewKey()
	now := time.Now().Unix()
	elsewhere, _ := key.Sign("hub_elsewhere", "POST", "/api/v1/competitions", now, nil)
	badlySigned := func() map[string]string {
		hs, _ := key.Sign(h.id, "POST", "/api/v1/contributor-keys", now, []byte(`{}`))
		return hs
	}
	type attack struct {
		name, path string
		headers    map[string]string
		chunked    bool
		wantCode   int
		wantBody   string
	}
	attacks := []attack{
		{"unsigned dataset upload", "/api/v1/competitions", nil, false, 401, "not signed"},
		{"dataset upload signed for another hub", "/api/v1/competitions", elsewhere, false, 401, "signed for another hub"},
		{"badly signed, announced 64 MB to a 1 MiB route", "/api/v1/contributor-keys", badlySigned(), false, 413, "1 MiB limit"},
		{"badly signed, chunked 64 MB to a 1 MiB route", "/api/v1/contributor-keys", badlySigned(), true, 413, "1 MiB limit"},
		{"unsigned chunked 64 MB preview", "/api/v1/allocate", nil, true, 413, "1 MiB limit of POST /api/v1/allocate"},
	}

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rssBefore := peakRSS(t)
	var wg sync.WaitGroup
	for i := range 20 {
		a := attacks[i%len(attacks)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := rawRequest(t, addr, "POST", a.path, a.headers, bodyLen, a.chunked)
			if code != a.wantCode || !strings.Contains(body, a.wantBody) {
				t.Errorf("%s: %d %s, want %d containing %q", a.name, code, body, a.wantCode, a.wantBody)
			}
		}()
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	rssGrowth := peakRSS(t) - rssBefore
	t.Logf("20 refused 64 MB requests: %.1f MB allocated, peak RSS grew %.1f MB (heap in use %.1f → %.1f MB)",
		float64(allocated)/1e6, float64(rssGrowth)/1e6, float64(before.HeapInuse)/1e6, float64(after.HeapInuse)/1e6)
	if allocated > 64<<20 {
		t.Fatalf("the server allocated %d MB for 20 unauthenticated requests, want < 64 MB", allocated>>20)
	}
}

func TestBodiesOfPublicRoutesAreLimited(t *testing.T) {
	h := startHub(t, storetest.Databases(t)[0].URL)
	post := func(t *testing.T, path, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(h.srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	scores := func(n int) string {
		m := map[string]float64{}
		for i := range n {
			m[fmt.Sprintf("m%d", i)] = float64(i)
		}
		b, _ := json.Marshal(apiv1.AllocateRequest{Rule: "proportional", Amount: 1000, Scores: m})
		return string(b)
	}
	t.Run("a preview of 10,000 entrants is answered", func(t *testing.T) {
		if code, body := post(t, "/api/v1/allocate", scores(apiv1.MaxAllocateEntrants)); code != http.StatusOK {
			t.Fatalf("%d %.200s", code, body)
		}
	})
	t.Run("a preview of 10,001 entrants is refused, naming the limit", func(t *testing.T) {
		if code, body := post(t, "/api/v1/allocate", scores(apiv1.MaxAllocateEntrants+1)); code != http.StatusBadRequest || !strings.Contains(body, "10000") {
			t.Fatalf("%d %.200s, want 400 naming 10000", code, body)
		}
	})
	t.Run("a 2 MiB preview is refused, naming the limit, and not echoed", func(t *testing.T) {
		body := `{"rule":"` + strings.Repeat("x", 2<<20) + `"}`
		code, answer := post(t, "/api/v1/allocate", body)
		if code != http.StatusRequestEntityTooLarge || !strings.Contains(answer, "1 MiB limit") || len(answer) > 1000 {
			t.Fatalf("%d %.200s (%d bytes), want a short 413 naming 1 MiB", code, answer, len(answer))
		}
	})
}

// TestASignatureCapturedAtOneHubIsRefusedByAnother creates a contributor key
// at hub A, captures the signed request on the wire, and replays it verbatim
// at hub B (its own database: PostgreSQL when available, else another SQLite file): B refuses it as
// signed for another hub and makes no key, and A refuses it as a replay.
func TestASignatureCapturedAtOneHubIsRefusedByAnother(t *testing.T) {
	dbs := storetest.Databases(t)
	bURL := filepath.Join(t.TempDir(), "hub-b.db")
	if len(dbs) > 1 {
		bURL = dbs[1].URL
	}
	a, b := startHub(t, dbs[0].URL), startHub(t, bURL)
	if a.id == b.id {
		t.Fatalf("two hubs share the id %s", a.id)
	}
	ctx := context.Background()
	victim, _ := identity.NewKey()
	var captured *http.Request
	var capturedBody []byte
	wire := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPost {
			captured = r.Clone(context.Background())
			capturedBody, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(capturedBody))
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	atA, _ := client.New(client.Config{Server: a.srv.URL, Key: victim, HTTPClient: wire})
	if _, err := atA.NewContributorKey(ctx, "Ada"); err != nil {
		t.Fatal(err)
	}
	if captured == nil || captured.Header.Get(identity.HeaderAudience) != a.id {
		t.Fatalf("captured %v, want a request signed for hub %s", captured, a.id)
	}
	replay := func(t *testing.T, at hub) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, at.srv.URL+captured.URL.RequestURI(), bytes.NewReader(capturedBody))
		req.Header = captured.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	t.Run("hub B refuses it as signed for another hub", func(t *testing.T) {
		if code, body := replay(t, b); code != http.StatusUnauthorized || !strings.Contains(body, "signed for another hub") || !strings.Contains(body, b.id) {
			t.Fatalf("%d %s, want 401 signed for another hub", code, body)
		}
		atB, _ := client.New(client.Config{Server: b.srv.URL, Key: victim})
		keys, err := atB.ContributorKeys(ctx)
		if err != nil || len(keys) != 0 {
			t.Fatalf("the victim's keys at hub B: %v, %v; want none", keys, err)
		}
	})
	t.Run("hub A refuses it as a replay", func(t *testing.T) {
		if code, body := replay(t, a); code != http.StatusUnauthorized || !strings.Contains(body, "replayed") {
			t.Fatalf("%d %s, want 401 replayed", code, body)
		}
	})
	t.Run("each hub publishes its id", func(t *testing.T) {
		for _, h := range []hub{a, b} {
			c, _ := client.New(client.Config{Server: h.srv.URL})
			if id, err := c.Hub(ctx); err != nil || id != h.id {
				t.Fatalf("GET /api/v1/hub = %q, %v; want %q", id, err, h.id)
			}
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// builtinKinds is a hub's registry of the built-in kinds (no egress: the
// tests' hubs reach no model while creating competitions).
func builtinKinds(t *testing.T) *kind.Registry {
	t.Helper()
	reg, err := kind.NewRegistry(kinds.Builtin(kinds.Egress{}, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}
