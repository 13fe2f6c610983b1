package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/client"
	"crucible/internal/eval/kinds"
	"crucible/internal/identity"
	"crucible/internal/labeling"
	"crucible/internal/ledger"
	"crucible/internal/store/storetest"
)

// rewardTasks are eight organic tasks of four responses, best first.
func rewardTasks() string {
	var b strings.Builder
	for i := range 8 {
		fmt.Fprintf(&b, `{"id":"t%d","instruction":"Task %d","responses":["best %d","good %d","poor %d","worst %d"]}`+"\n", i, i, i, i, i, i)
	}
	return b.String()
}

// TestPreferenceRewardsArePaidOnceAtTheEpochClose: a funded preference
// competition escrows its reward; three honest miners and one random one
// rate their copies; before the deadlines nobody may close it, and only the
// creator or an operator may ask early. After the deadlines, concurrent
// closes (the API's and the periodic tick's) pay the escrow out once: the
// honest miners in proportion to their preference scores, the untrusted
// random one nothing, the rest back to the funder; every leg sums to zero
// and a later close returns the stored record and moves nothing.
func TestPreferenceRewardsArePaidOnceAtTheEpochClose(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			h := startSealHub(t, d.URL)
			const asset, amount = "USDC", 1000
			create := apiv1.CreatePreferenceCompetitionRequest{Title: "rewarded", DatasetName: "organic", Dataset: rewardTasks(),
				Preference: kinds.PreferenceSpec{TTL: "2m"}, Reward: amount, Asset: asset}

			negative := create
			negative.Reward = -1
			_, err := h.funder.CreatePreferenceCompetition(ctx, negative)
			wantStatus(t, "a negative reward", err, http.StatusBadRequest, "reward -1 must be 0..")
			_, err = h.funder.CreatePreferenceCompetition(ctx, create)
			wantStatus(t, "a reward its creator cannot fund", err, http.StatusBadRequest, "insufficient")
			if list, err := h.funder.Competitions(ctx); err != nil || len(list) != 0 {
				t.Fatalf("the refused competition was stored: %d competitions (%v)", len(list), err)
			}
			if _, err := h.operator.Deposit(ctx, apiv1.DepositRequest{To: h.funderID, Amount: 1500, Asset: asset, IdempotencyKey: "wire"}); err != nil {
				t.Fatal(err)
			}
			comp, err := h.funder.CreatePreferenceCompetition(ctx, create)
			if err != nil {
				t.Fatal(err)
			}
			page := func() string {
				t.Helper()
				resp, err := http.Get(h.base + "/c/" + comp.ID)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("competition page: %d %v", resp.StatusCode, err)
				}
				return string(b)
			}
			if p := page(); !strings.Contains(p, "1000 USDC in escrow") {
				t.Fatalf("the page does not show the escrowed reward:\n%s", p)
			}
			escrow := ledger.EscrowAccount(comp.ID)
			if got := balance(t, h.operator, escrow, asset); got != amount {
				t.Fatalf("escrow holds %d, want %d", got, amount)
			}

			oracle, err := labeling.New(labeling.Config{DB: h.app.DB, Clock: h.clock})
			if err != nil {
				t.Fatal(err)
			}
			miners := map[string]*client.Client{}
			names := []string{"honest-1", "honest-2", "honest-3", "random"}
			ids := map[string]string{}
			for _, name := range names {
				k, err := identity.NewKey()
				if err != nil {
					t.Fatal(err)
				}
				if miners[name], err = client.New(client.Config{Server: h.base, Key: k}); err != nil {
					t.Fatal(err)
				}
				ids[name] = k.ID()
			}
			rng := rand.New(rand.NewPCG(14, 2))
			for _, name := range names {
				copies, err := miners[name].PreferenceCopies(ctx, comp.ID)
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range copies.Tasks {
					cp, err := oracle.Copy(ctx, comp.ID, v.TaskID, ids[name])
					if err != nil {
						t.Fatal(err)
					}
					// A rank per shown response: the canonical rank for an
					// honest miner, a random one for the other.
					canon := []int{1, 2, 3, 4}
					if name == "random" {
						rng.Shuffle(len(canon), func(i, j int) { canon[i], canon[j] = canon[j], canon[i] })
					}
					values := make([]int, len(cp.Perm))
					for i, c := range cp.Perm {
						values[i] = canon[c]
					}
					if _, err := miners[name].RatePreference(ctx, comp.ID, apiv1.PreferenceRatingRequest{TaskID: v.TaskID, Values: values}); err != nil {
						t.Fatalf("%s rates %s: %v", name, v.TaskID, err)
					}
				}
			}

			_, err = h.funder.ClosePreference(ctx, comp.ID)
			wantStatus(t, "a close before the deadlines", err, http.StatusConflict, "open until")
			h.clock.Advance(3 * time.Minute)
			_, err = h.competitor.ClosePreference(ctx, comp.ID)
			wantStatus(t, "a stranger's close", err, http.StatusForbidden, "creator or an operator")

			tick, err := labeling.New(labeling.Config{DB: h.app.DB, Clock: h.clock})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			records := make([]apiv1.PreferenceClose, 4)
			errs := make([]error, 5)
			for i, c := range []*client.Client{h.funder, h.operator, h.funder, h.operator} {
				wg.Go(func() { records[i], errs[i] = c.ClosePreference(ctx, comp.ID) })
			}
			wg.Go(func() { errs[4] = tick.CloseDue(ctx) })
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("closer %d: %v", i, err)
				}
			}
			first, _ := json.Marshal(records[0])
			for _, r := range records[1:] {
				if again, _ := json.Marshal(r); string(again) != string(first) {
					t.Fatalf("concurrent closes returned different records:\n%s\n%s", first, again)
				}
			}
			rec := records[0]
			paid := map[string]int64{}
			var total int64
			for _, p := range rec.Payouts {
				paid[p.Miner] = p.Units
				total += p.Units
			}
			if total+rec.Refunded != amount {
				t.Fatalf("payouts %d + refund %d != %d", total, rec.Refunded, amount)
			}
			if paid[ids["random"]] != 0 {
				t.Fatalf("the random miner was paid %d: %+v", paid[ids["random"]], rec.Payouts)
			}
			for _, name := range names[:3] {
				if paid[ids[name]] < amount/4 {
					t.Fatalf("%s was paid %d, want about a third of %d: %+v", name, paid[ids[name]], amount, rec.Payouts)
				}
			}

			check := func(when string) {
				t.Helper()
				sum := balance(t, h.operator, ledger.External, asset) + balance(t, h.operator, ledger.FunderAccount(h.funderID), asset) +
					balance(t, h.operator, escrow, asset)
				for _, name := range names {
					got := balance(t, h.operator, ledger.ParticipantAccount(ids[name]), asset)
					if got != paid[ids[name]] {
						t.Fatalf("%s: %s holds %d, want its payout %d", when, name, got, paid[ids[name]])
					}
					sum += got
				}
				if sum != 0 {
					t.Fatalf("%s: the legs sum to %d, want 0", when, sum)
				}
				if got := balance(t, h.operator, escrow, asset); got != 0 {
					t.Fatalf("%s: escrow still holds %d", when, got)
				}
				if got, want := balance(t, h.operator, ledger.FunderAccount(h.funderID), asset), int64(1500-amount)+rec.Refunded; got != want {
					t.Fatalf("%s: the funder holds %d, want %d", when, got, want)
				}
			}
			check("after the close")
			p := page()
			for _, name := range names {
				row := fmt.Sprintf(`<code>%s</code></th><td>`, ids[name])
				i := strings.Index(p, row)
				if i < 0 || !strings.Contains(p[i:min(len(p), i+300)], fmt.Sprintf(`<td class="num">%d</td></tr>`, paid[ids[name]])) {
					t.Fatalf("the page does not show %s's payout of %d:\n%s", name, paid[ids[name]], p)
				}
			}
			h.clock.Advance(time.Minute)
			again, err := h.competitor.ClosePreference(ctx, comp.ID)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := json.Marshal(again); string(b) != string(first) {
				t.Fatalf("a later close returned another record:\n%s\n%s", first, b)
			}
			if err := tick.CloseDue(ctx); err != nil {
				t.Fatal(err)
			}
			check("after a second close and tick")
		})
	}
}

// balance is account's balance of asset (0 when it has none).
func balance(t *testing.T, c *client.Client, account, asset string) int64 {
	t.Helper()
	bs, err := c.Balances(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.Asset == asset {
			return b.Amount
		}
	}
	return 0
}
