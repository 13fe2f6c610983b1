package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/competition"
	"crucible/internal/identity"
	"crucible/internal/pool"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

func TestQuotas(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Run("competitions per day, on every creating route", func(t *testing.T) { testCompetitionQuota(t, d.URL) })
			t.Run("submissions per day, on both submitting routes", func(t *testing.T) { testDailySubmissionQuota(t, d.URL) })
			t.Run("open submissions", func(t *testing.T) { testOpenSubmissionQuota(t, d.URL) })
			for _, pools := range []bool{false, true} {
				route := map[bool]string{false: "submissions", true: "pool entries"}[pools]
				t.Run("concurrent "+route+" of one key, daily", func(t *testing.T) {
					testConcurrentSubmissionQuota(t, d.URL, Quotas{SubmissionsPerDay: 5}, 5, "86400", pools)
				})
				t.Run("concurrent "+route+" of one key, open", func(t *testing.T) {
					testConcurrentSubmissionQuota(t, d.URL, Quotas{OpenSubmissions: 3}, 3, "60", pools)
				})
			}
		})
	}
}

// wantTooMany asserts a 429 whose Retry-After is retry seconds.
func wantTooMany(t *testing.T, what string, resp response, retry string) {
	t.Helper()
	wantRefused(t, what, resp, http.StatusTooManyRequests, "quota")
	if resp.retryAfter != retry {
		t.Fatalf("%s: Retry-After %q, want %q", what, resp.retryAfter, retry)
	}
}

func testCompetitionQuota(t *testing.T, dbURL string) {
	alice, bob, operator := newKey(t), newKey(t), newKey(t)
	h := newTestHub(t, dbURL, Quotas{CompetitionsPerDay: 2, Exempt: []string{operator.ID()}})
	h.createCompetition(t, alice)
	h.clock.Advance(time.Hour)
	h.createCompetition(t, alice)
	wantTooMany(t, "a third competition", h.post(t, alice, "/api/v1/competitions", mcqCompetition("spam")), "82800")
	wantTooMany(t, "a pool", h.post(t, alice, "/api/v1/pools", apiv1.CreatePoolRequest{Title: "spam"}), "82800")
	wantTooMany(t, "a preference competition", h.post(t, alice, "/api/v1/preference/competitions", apiv1.CreatePreferenceCompetitionRequest{Title: "spam"}), "82800")

	for range 3 {
		h.createCompetition(t, operator)
	}
	h.createCompetition(t, bob)

	h.clock.Advance(23 * time.Hour) // the first one leaves the 24-hour window
	h.createCompetition(t, alice)
	wantTooMany(t, "a fourth competition", h.post(t, alice, "/api/v1/competitions", mcqCompetition("spam")), "3600")
}

func testDailySubmissionQuota(t *testing.T, dbURL string) {
	alice, bob, operator := newKey(t), newKey(t), newKey(t)
	h := newTestHub(t, dbURL, Quotas{SubmissionsPerDay: 3, Exempt: []string{operator.ID()}})
	id := h.createCompetition(t, operator)
	n := 0
	submit := func(key *identity.Key) response {
		n++
		return h.post(t, key, "/api/v1/competitions/"+id+"/submissions", modelSubmission(fmt.Sprintf("m%d", n)))
	}
	for range 3 {
		if resp := submit(alice); resp.code != http.StatusCreated {
			t.Fatalf("submission within the quota: %d %s", resp.code, resp.body)
		}
	}
	wantTooMany(t, "a fourth submission", submit(alice), "86400")
	wantTooMany(t, "a pool entry", h.post(t, alice, "/api/v1/pools/"+h.createPool(t, operator)+"/entries", poolEntry("m")), "86400")
	for _, key := range []*identity.Key{bob, operator, operator, operator, operator} {
		if resp := submit(key); resp.code != http.StatusCreated {
			t.Fatalf("another key's submission: %d %s", resp.code, resp.body)
		}
	}
	subs, err := h.db.ListSubmissions(context.Background(), id)
	if err != nil || len(subs) != 8 {
		t.Fatalf("the competition holds %d submissions (%v), want 3 of alice, 1 of bob and 4 of the operator", len(subs), err)
	}
}

func testOpenSubmissionQuota(t *testing.T, dbURL string) {
	alice, bob := newKey(t), newKey(t)
	h := newTestHub(t, dbURL, Quotas{OpenSubmissions: 2})
	id := h.createCompetition(t, bob)
	n := 0
	submit := func(key *identity.Key) response {
		n++
		return h.post(t, key, "/api/v1/competitions/"+id+"/submissions", modelSubmission(fmt.Sprintf("m%d", n)))
	}
	var first competition.Submission
	for i := range 2 {
		resp := submit(alice)
		if resp.code != http.StatusCreated {
			t.Fatalf("open submission %d: %d %s", i, resp.code, resp.body)
		}
		if i == 0 {
			if err := json.Unmarshal([]byte(resp.body), &first); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantTooMany(t, "a third open submission", submit(alice), "60")
	if resp := submit(bob); resp.code != http.StatusCreated {
		t.Fatalf("bob's submission: %d %s", resp.code, resp.body)
	}
	if _, err := storetest.SetState(context.Background(), h.db, first.ID, competition.StateScored, "", nil, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if resp := submit(alice); resp.code != http.StatusCreated {
		t.Fatalf("a submission after one was evaluated: %d %s", resp.code, resp.body)
	}
}

// testConcurrentSubmissionQuota fires one key's signed submissions (with
// pools, pool entries) all at once, each to a competition or pool of its
// own (so no entry rule refuses any, and no two share a competition's
// entrant locks): exactly allowed of them land and the rest are 429s with
// retry as Retry-After. A quota read before the submission's transaction
// lets every one of them see the same count and land; so does one in it
// without the key's own lock, on PostgreSQL, where batches commit side by
// side.
func testConcurrentSubmissionQuota(t *testing.T, dbURL string, q Quotas, allowed int, retry string, pools bool) {
	alice, operator := newKey(t), newKey(t)
	q.Exempt = []string{operator.ID()}
	h := newTestHub(t, dbURL, q)
	const tries = 24
	var ids []string
	for range tries {
		if pools {
			ids = append(ids, h.createPool(t, operator))
		} else {
			ids = append(ids, h.createCompetition(t, operator))
		}
	}
	resps := make([]response, tries)
	var wg sync.WaitGroup
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("m%d", i)
			if pools {
				resps[i] = h.post(t, alice, "/api/v1/pools/"+ids[i]+"/entries", poolEntry(name))
			} else {
				resps[i] = h.post(t, alice, "/api/v1/competitions/"+ids[i]+"/submissions", modelSubmission(name))
			}
		}()
	}
	wg.Wait()
	created := 0
	for i, resp := range resps {
		if resp.code == http.StatusCreated {
			created++
			continue
		}
		wantTooMany(t, fmt.Sprintf("concurrent submission %d", i), resp, retry)
	}
	stored := 0
	for _, id := range ids {
		subs, err := h.db.ListSubmissions(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		stored += len(subs)
	}
	if created != allowed || stored != allowed {
		t.Fatalf("%d of %d concurrent submissions accepted and %d stored; the quota allows %d", created, tries, stored, allowed)
	}
}

// poolEntry is the join request of the model named name.
func poolEntry(name string) pool.JoinRequest {
	return pool.JoinRequest{BaseURL: "http://127.0.0.1:9/v1", Model: name}
}

// createPool makes an mcq pool open for an hour from now, funded with one
// unit that operator (one of the hub's exempt keys) deposits first, and
// returns its id.
func (h *testHub) createPool(t *testing.T, operator *identity.Key) string {
	t.Helper()
	if _, err := h.pools.Deposit(context.Background(), operator.ID(), pool.DepositRequest{To: operator.ID(), Amount: 1, Asset: "USDC",
		IdempotencyKey: store.NewID("dep")}); err != nil {
		t.Fatal(err)
	}
	now := h.clock.Now()
	resp := h.post(t, operator, "/api/v1/pools", apiv1.CreatePoolRequest{Title: "pool", Dataset: testDataset, Fund: 1, Asset: "USDC",
		Allocation: "proportional", Start: now, End: now.Add(time.Hour)})
	if resp.code != http.StatusCreated {
		t.Fatalf("create pool: %d %s", resp.code, resp.body)
	}
	var p competition.Pool
	if err := json.Unmarshal([]byte(resp.body), &p); err != nil {
		t.Fatal(err)
	}
	return p.CompetitionID
}
