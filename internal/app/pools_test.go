package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/consensus"
	"crucible/internal/identity"
	"crucible/internal/ledger"
	"crucible/internal/store/storetest"
)

// poolHub is a whole server on a fake clock (no workers: the test ticks the
// pools itself) with three signed clients: an operator (--admin-key), a
// funder and a stranger.
type poolHub struct {
	app                        *app.App
	clock                      *clock.Fake
	operator, funder, stranger *client.Client
	operatorID, funderID       string
}

func startPoolHub(t *testing.T, database string, demo bool) *poolHub {
	t.Helper()
	keys := make([]*identity.Key, 3)
	for i := range keys {
		k, err := identity.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	// The fake clock stays within the ±5 min signature window of the real one.
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	a, url := startApp(t, app.Config{Database: database, Clock: clk, NoWork: true, DemoFunding: demo,
		Consensus: consensus.Config{Admins: []string{keys[0].ID()}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h := &poolHub{app: a, clock: clk, operatorID: keys[0].ID(), funderID: keys[1].ID()}
	for i, c := range []**client.Client{&h.operator, &h.funder, &h.stranger} {
		var err error
		if *c, err = client.New(client.Config{Server: url, Key: keys[i]}); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// createPool has the funder create a winner-take-all pool of fund USDC
// running from now for two minutes.
func (h *poolHub) createPool(fund int64) (competition.Pool, error) {
	now := h.clock.Now()
	return h.funder.CreatePool(context.Background(), apiv1.CreatePoolRequest{Title: "SIQA pool", Dataset: string(app.SampleDataset),
		Fund: fund, Asset: "USDC", Allocation: "winner-take-all", Start: now, End: now.Add(2 * time.Minute)})
}

func (h *poolHub) deposit(t *testing.T, to string, amount int64, key string) ledger.Posted {
	t.Helper()
	p, err := h.operator.Deposit(context.Background(), apiv1.DepositRequest{To: to, Amount: amount, Asset: "USDC", IdempotencyKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wantRefusal asserts err is the server's refusal with code and a reason containing want.
func wantRefusal(t *testing.T, what string, err error, code int, want string) {
	t.Helper()
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != code || !strings.Contains(ae.Message, want) {
		t.Fatalf("%s: got %v; want a %d refusal saying %q", what, err, code, want)
	}
}

func balance(t *testing.T, c *client.Client, account string) int64 {
	t.Helper()
	bals, err := c.Balances(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, b := range bals {
		if b.Asset == "USDC" {
			sum += b.Amount
		}
	}
	return sum
}

// TestAPoolIsEnteredOnlyByJoiningWhileOpen replays the bypass: a generic
// submission to a pool's competition (evaluated in full, outside the
// budget, even after the end) must be refused, and joins after the end too.
func TestAPoolIsEnteredOnlyByJoiningWhileOpen(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			h := startPoolHub(t, d.URL, false)
			ctx := context.Background()
			h.deposit(t, h.funderID, 1000, "wire-1")
			p, err := h.createPool(1000)
			if err != nil {
				t.Fatal(err)
			}
			model := apiv1.CreateSubmissionRequest{BaseURL: "http://127.0.0.1:9/v1", Model: "m"}
			_, err = h.stranger.Submit(ctx, p.CompetitionID, model)
			wantRefusal(t, "a generic submission to an open pool", err, http.StatusConflict, "POST /api/v1/pools/"+p.CompetitionID+"/entries")
			first, err := h.stranger.JoinPool(ctx, p.CompetitionID, apiv1.JoinPoolRequest{BaseURL: model.BaseURL, Model: "m"})
			if err != nil {
				t.Fatalf("joining an open pool: %v", err)
			}
			_, err = h.funder.JoinPool(ctx, p.CompetitionID, apiv1.JoinPoolRequest{BaseURL: model.BaseURL, Model: "m"})
			wantRefusal(t, "the same model joined again from another key", err, http.StatusConflict, "copy of "+first.ID)
			h.clock.Advance(2*time.Minute + time.Second)
			_, err = h.stranger.Submit(ctx, p.CompetitionID, model)
			wantRefusal(t, "a generic submission to an ended pool", err, http.StatusConflict, "funded pool")
			_, err = h.stranger.JoinPool(ctx, p.CompetitionID, apiv1.JoinPoolRequest{BaseURL: model.BaseURL, Model: "late"})
			wantRefusal(t, "joining an ended pool", err, http.StatusBadRequest, "takes no more entrants")
			subs, err := h.stranger.Submissions(ctx, p.CompetitionID)
			if err != nil || len(subs) != 1 || subs[0].Model.Model != "m" {
				t.Fatalf("the pool has entrants %+v (%v); want only the one that joined while it was open", subs, err)
			}
		})
	}
}

// TestAPoolSettlesAfterItsFinalTickOrByForce replays the early settlement:
// a stranger settling an ended pool before the final evaluation tick is
// refused; the funder or an operator may force it, and the settlement says so.
func TestAPoolSettlesAfterItsFinalTickOrByForce(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			h := startPoolHub(t, d.URL, false)
			ctx := context.Background()
			h.deposit(t, h.funderID, 3000, "wire-1")
			var pools []competition.Pool
			for range 3 {
				p, err := h.createPool(1000)
				if err != nil {
					t.Fatal(err)
				}
				pools = append(pools, p)
			}
			ticked, byFunder, byOperator := pools[0].CompetitionID, pools[1].CompetitionID, pools[2].CompetitionID
			_, err := h.funder.SettlePool(ctx, ticked, true)
			wantRefusal(t, "forcing settlement before the end", err, http.StatusConflict, "ends at")

			h.clock.Advance(2*time.Minute + time.Second)
			_, err = h.stranger.SettlePool(ctx, ticked, false)
			wantRefusal(t, "a stranger settling before the final tick", err, http.StatusConflict, "next evaluation tick")
			_, err = h.stranger.SettlePool(ctx, ticked, true)
			wantRefusal(t, "a stranger forcing settlement", err, http.StatusForbidden, "funder")
			if st, err := h.stranger.Pool(ctx, ticked); err != nil || st.Pool.State != competition.PoolOpen || st.Escrow != 1000 {
				t.Fatalf("after the refused settlements the pool is %+v (%v); want open with 1000 in escrow", st.Pool, err)
			}

			for c, id := range map[*client.Client]string{h.funder: byFunder, h.operator: byOperator} {
				st, err := c.SettlePool(ctx, id, true)
				if err != nil {
					t.Fatal(err)
				}
				shown, err := h.stranger.Pool(ctx, id)
				if err != nil || shown.Pool.Settlement == nil || shown.Pool.Settlement.ForcedBy != st.ForcedBy || st.ForcedBy == "" {
					t.Fatalf("forced settlement %+v, shown as %+v (%v): want forced_by recorded and shown", st, shown.Pool.Settlement, err)
				}
			}
			if st, _ := h.stranger.Pool(ctx, byFunder); st.Pool.Settlement.ForcedBy != h.funderID {
				t.Fatalf("the funder's forced settlement records %q", st.Pool.Settlement.ForcedBy)
			}
			if st, _ := h.stranger.Pool(ctx, byOperator); st.Pool.Settlement.ForcedBy != h.operatorID {
				t.Fatalf("the operator's forced settlement records %q", st.Pool.Settlement.ForcedBy)
			}

			if err := h.app.Pools.TickAll(ctx); err != nil {
				t.Fatal(err)
			}
			first, err := h.stranger.SettlePool(ctx, ticked, false)
			if err != nil || first.ForcedBy != "" {
				t.Fatalf("settling after the final tick: %+v, %v; want the tick's regular settlement", first, err)
			}
			again, err := h.stranger.SettlePool(ctx, ticked, false)
			if err != nil || !again.SettledAt.Equal(first.SettledAt) {
				t.Fatalf("settling again: %+v, %v; want the first result", again, err)
			}
			if got := balance(t, h.stranger, ledger.FunderAccount(h.funderID)); got != 3000 {
				t.Fatalf("the funder holds %d after three unentered pools settled; want its 3000 refunded once", got)
			}
		})
	}
}

// TestLedgerMoneyComesOnlyFromOperatorDepositsUpToTheCap replays the
// unbacked funding and the two pools of 2^63−1 that broke the balances.
func TestLedgerMoneyComesOnlyFromOperatorDepositsUpToTheCap(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			h := startPoolHub(t, d.URL, false)
			ctx := context.Background()
			for name, c := range map[string]*client.Client{"a stranger": h.stranger, "the funder": h.funder} {
				_, err := c.Deposit(ctx, apiv1.DepositRequest{To: h.funderID, Amount: 1000, Asset: "USDC", IdempotencyKey: "self-" + name})
				wantRefusal(t, name+" depositing", err, http.StatusForbidden, "operator")
			}
			_, err := h.createPool(1000)
			wantRefusal(t, "funding a pool without a deposit", err, http.StatusBadRequest, "insufficient funds")

			if first := h.deposit(t, h.funderID, 1000, "wire-1"); first.Replayed {
				t.Fatal("a first deposit reported as replayed")
			}
			if again := h.deposit(t, h.funderID, 1000, "wire-1"); !again.Replayed {
				t.Fatal("a replayed deposit was not reported as replayed")
			}
			_, err = h.operator.Deposit(ctx, apiv1.DepositRequest{To: h.funderID, Amount: 5, Asset: "USDC", IdempotencyKey: "wire-1"})
			wantRefusal(t, "another deposit under a used key", err, http.StatusBadRequest, "already used")
			if got := balance(t, h.stranger, ledger.FunderAccount(h.funderID)); got != 1000 {
				t.Fatalf("the funder holds %d after one deposit and its replays; want 1000", got)
			}

			for range 2 {
				_, err := h.createPool(math.MaxInt64)
				wantRefusal(t, "a pool of 2^63−1", err, http.StatusBadRequest, "cap")
			}
			h.deposit(t, h.funderID, ledger.MaxSupply-1000, "wire-2")
			_, err = h.operator.Deposit(ctx, apiv1.DepositRequest{To: "ed25519:other", Amount: 1, Asset: "USDC", IdempotencyKey: "wire-3"})
			wantRefusal(t, "a deposit beyond the supply cap", err, http.StatusBadRequest, "cap")
			if _, err := h.createPool(ledger.MaxSupply); err != nil {
				t.Fatalf("a pool of the whole supply: %v", err)
			}
			if got := balance(t, h.stranger, ""); got != 0 {
				t.Fatalf("the balances sum to %d; want 0 (external holds minus the rest)", got)
			}
			if got := balance(t, h.stranger, ledger.External); got != -ledger.MaxSupply {
				t.Fatalf("external holds %d; want −MaxSupply", got)
			}
		})
	}
}

// TestDemoFundingIsCappedToo replays the two pools funded from nothing in
// the one mode that still allows it: the second is refused, the balances
// keep answering.
func TestDemoFundingIsCappedToo(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			h := startPoolHub(t, d.URL, true)
			if _, err := h.createPool(ledger.MaxSupply); err != nil {
				t.Fatalf("a demo pool funded from nothing: %v", err)
			}
			_, err := h.createPool(ledger.MaxSupply)
			wantRefusal(t, "a second demo pool beyond the cap", err, http.StatusBadRequest, "cap")
			_, err = h.createPool(math.MaxInt64)
			wantRefusal(t, "a demo pool of 2^63−1", err, http.StatusBadRequest, "cap")
			if got := balance(t, h.stranger, ""); got != 0 {
				t.Fatalf("the balances sum to %d; want 0 (external holds minus the rest)", got)
			}
			if got := balance(t, h.stranger, ledger.External); got != -ledger.MaxSupply {
				t.Fatalf("external holds %d; want −MaxSupply", got)
			}
		})
	}
}
