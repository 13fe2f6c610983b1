package api_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/competition"
	"crucible/internal/store/storetest"
)

// TestASealedPoolIsNeverServedFromTheCache: the seal is checked on every
// read before the cache is, so even a board cached under the pool's
// current version (which no computation makes while it is open) is not
// served until the pool settles.
func TestASealedPoolIsNeverServedFromTheCache(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			h := startSealHub(t, d.URL)
			ctx := context.Background()
			if _, err := h.operator.Deposit(ctx, apiv1.DepositRequest{To: h.funderID, Amount: 100, Asset: "USDC", IdempotencyKey: "wire"}); err != nil {
				t.Fatal(err)
			}
			now := h.clock.Now()
			p, err := h.funder.CreatePool(ctx, apiv1.CreatePoolRequest{Title: "sealed", Dataset: string(app.SampleDataset),
				Fund: 100, Asset: "USDC", Allocation: "proportional", Start: now, End: now.Add(time.Hour),
				BudgetPerHour: 1000, PrivateFraction: 0.5})
			if err != nil {
				t.Fatal(err)
			}
			version, err := h.app.DB.LeaderboardVersion(ctx, p.CompetitionID)
			if err != nil {
				t.Fatal(err)
			}
			planted := []byte(`[{"name":"planted-private-row"}]`)
			h.app.API.PlantBoard(p.CompetitionID, version, planted, []competition.Row{{Rank: 1, Name: "planted-private-row"}})
			path := h.base + "/api/v1/competitions/" + p.CompetitionID + "/leaderboard"
			for _, q := range []string{"", "?limit=1", "?offset=0&limit=10"} {
				code, tag, body := get(t, path+q, "")
				if code != http.StatusConflict || bytes.Contains(body, []byte("planted")) || tag != "" {
					t.Fatalf("GET leaderboard%s of an open pool: %d, tag %q, %s; want 409 and nothing cached", q, code, tag, body)
				}
				if code, _, body := get(t, path+q, `"planted"`); code != http.StatusConflict {
					t.Fatalf("GET leaderboard%s of an open pool with the cached tag: %d %s; want 409", q, code, body)
				}
			}
		})
	}
}
