package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"crucible/internal/identity"
	"crucible/internal/store/storetest"
)

// A submission's nonce is burned by the intake with the submission, not
// before it (burnsOwnNonce): every way a request can end must still burn
// it, so a replay of a refused request is refused as a replay, and a
// replayed nonce never creates a submission, whether the copies arrive
// one after another or at once.
func TestSubmissionNoncesAreBurnedWhateverTheOutcome(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			alice, operator := newKey(t), newKey(t)
			h := newTestHub(t, d.URL, Quotas{SubmissionsPerDay: 2, Exempt: []string{operator.ID()}})
			id := h.createCompetition(t, operator)
			path := "/api/v1/competitions/" + id + "/submissions"
			model := func(name string) []byte {
				b, err := json.Marshal(modelSubmission(name))
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			for _, c := range []struct {
				what, path string
				body       []byte
				code       int
			}{
				{"bad JSON", path, []byte(`{"model":`), http.StatusBadRequest},
				{"an invalid entry", path, []byte(`{"base_url":"http://127.0.0.1:9/v1"}`), http.StatusBadRequest},
				{"an unknown competition", "/api/v1/competitions/c-none/submissions", model("m0"), http.StatusNotFound},
				{"a first entry", path, model("m1"), http.StatusCreated},
				{"a model entered already", path, model("m1"), http.StatusConflict},
				{"a second entry", path, model("m2"), http.StatusCreated},
				{"an entry over the quota", path, model("m3"), http.StatusTooManyRequests},
			} {
				send := h.signed(t, alice, c.path, c.body)
				if resp := send(); resp.code != c.code {
					t.Fatalf("%s: %d %s, want %d", c.what, resp.code, resp.body, c.code)
				}
				for range 2 {
					wantRefused(t, c.what+", replayed", send(), http.StatusUnauthorized, "replayed")
				}
			}

			// Copies of one request at once: one gets the request's own
			// answer and every other is a replay, refused or not.
			for _, c := range []struct {
				what string
				body []byte
				code int
			}{
				{"an invalid entry", []byte(`{"model":"m"}`), http.StatusBadRequest},
				{"an entry over the quota", model("m4"), http.StatusTooManyRequests},
				{"an exempt entry", model("m5"), http.StatusCreated},
			} {
				key := alice
				if c.code == http.StatusCreated {
					key = operator
				}
				send := h.signed(t, key, path, c.body)
				const copies = 12
				resps := make([]response, copies)
				var wg sync.WaitGroup
				for i := range copies {
					wg.Add(1)
					go func() { defer wg.Done(); resps[i] = send() }()
				}
				wg.Wait()
				own := 0
				for i, resp := range resps {
					switch {
					case resp.code == c.code:
						own++
					case resp.code != http.StatusUnauthorized || !bytes.Contains([]byte(resp.body), []byte("replayed")):
						t.Errorf("%s, copy %d: %d %s; want %d or 401 replayed", c.what, i, resp.code, resp.body, c.code)
					}
				}
				if own != 1 {
					t.Errorf("%s: %d of %d copies answered %d; want one, the rest replays", c.what, own, copies, c.code)
				}
			}
			subs, err := h.db.ListSubmissions(context.Background(), id)
			if err != nil || len(subs) != 3 {
				t.Fatalf("the competition holds %d submissions (%v); want m1, m2 and m5", len(subs), err)
			}
		})
	}
}

// signed signs one request to path with body as key and returns a function
// that sends that same request (its headers, nonce included) each time.
func (h *testHub) signed(t *testing.T, key *identity.Key, path string, body []byte) func() response {
	t.Helper()
	headers, err := key.Sign(h.id, http.MethodPost, path, h.clock.Now().Unix(), body)
	if err != nil {
		t.Fatal(err)
	}
	return func() response {
		req, err := http.NewRequest(http.MethodPost, h.url+path, bytes.NewReader(body))
		if err != nil {
			t.Error(err)
			return response{}
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return response{}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Error(fmt.Errorf("read the answer: %w", err))
		}
		return response{code: resp.StatusCode, body: string(b), retryAfter: resp.Header.Get("Retry-After")}
	}
}
