package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"crucible/internal/ledger"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// checkConservation asserts the ledger invariant for one asset: the sum over
// all accounts but external equals deposits minus withdrawals, and no account
// but external is negative.
func checkConservation(t interface {
	Helper()
	Fatal(...any)
	Fatalf(string, ...any)
}, db *store.DB, asset string, deposited, withdrawn int64) {
	t.Helper()
	bals, err := db.Balances(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var held int64
	for _, b := range bals {
		if b.Asset != asset || b.Account == ledger.External {
			continue
		}
		if b.Amount < 0 {
			t.Fatalf("%s is overdrawn: %d %s", b.Account, b.Amount, b.Asset)
		}
		held += b.Amount
	}
	if held != deposited-withdrawn {
		t.Fatalf("asset %s: accounts hold %d, deposits − withdrawals = %d", asset, held, deposited-withdrawn)
	}
}

func TestLedgerConservesMoneyUnderRandomOperations(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			db, err := store.Open(context.Background(), d.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			run := 0
			rapid.Check(t, func(rt *rapid.T) {
				run++
				ctx := context.Background()
				// Each rapid run uses its own asset, so runs do not interfere.
				asset := fmt.Sprintf("A%d", run)
				var deposited, withdrawn int64
				accounts := []string{ledger.FunderAccount("f1"), ledger.FunderAccount("f2"), ledger.EscrowAccount("p1"),
					ledger.ParticipantAccount("m1"), ledger.ParticipantAccount("m2"), ledger.FeeAccount}
				var keys []string
				for i, n := 0, rapid.IntRange(1, 25).Draw(rt, "ops"); i < n; i++ {
					amount := rapid.Int64Range(1, 1000).Draw(rt, "amount")
					var tr ledger.Transfer
					switch op := rapid.IntRange(0, 3).Draw(rt, "op"); {
					case op == 0 || len(keys) == 0:
						to := rapid.SampledFrom(accounts).Draw(rt, "to")
						tr = ledger.Move(fmt.Sprintf("%s-dep-%d", asset, i), ledger.KindDeposit, asset, ledger.External, to, amount, "")
					case op == 1:
						from := rapid.SampledFrom(accounts).Draw(rt, "from")
						tr = ledger.Move(fmt.Sprintf("%s-wd-%d", asset, i), ledger.KindWithdrawal, asset, from, ledger.External, amount, "")
					case op == 2:
						from := rapid.SampledFrom(accounts).Draw(rt, "from")
						to := rapid.SampledFrom(accounts).Draw(rt, "to")
						if from == to {
							continue
						}
						tr = ledger.Move(fmt.Sprintf("%s-mv-%d", asset, i), ledger.KindPayout, asset, from, to, amount, "")
					default:
						// Retry an earlier transfer: it must move nothing.
						key := rapid.SampledFrom(keys).Draw(rt, "retry")
						before, _ := db.Balances(ctx, "")
						p, err := db.TransferByKey(ctx, key)
						if err != nil {
							rt.Fatal(err)
						}
						again, err := db.PostTransfer(ctx, p.Transfer, time.Now())
						if err != nil || !again.Replayed {
							rt.Fatalf("retrying %s: %+v %v", key, again, err)
						}
						after, _ := db.Balances(ctx, "")
						if fmt.Sprint(before) != fmt.Sprint(after) {
							rt.Fatalf("a retried transfer moved money")
						}
						continue
					}
					_, err := db.PostTransfer(ctx, tr, time.Now())
					if errors.Is(err, ledger.ErrInsufficientFunds) {
						continue
					}
					if err != nil {
						rt.Fatal(err)
					}
					keys = append(keys, tr.Key)
					switch tr.Kind {
					case ledger.KindDeposit:
						deposited += amount
					case ledger.KindWithdrawal:
						withdrawn += amount
					}
				}
				checkConservation(rt, db, asset, deposited, withdrawn)
			})
		})
	}
}

func TestLedgerPaysEachKeyOnceUnderAThousandConcurrentRequests(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, d.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			escrow := ledger.EscrowAccount("pool")
			const funded = 5000
			if _, err := db.PostTransfer(ctx, ledger.Move("fund", ledger.KindDeposit, "USDC", ledger.External, escrow, funded, ""), time.Now()); err != nil {
				t.Fatal(err)
			}
			// 1,000 requests over 100 distinct payouts of 70 units: each payout
			// is requested 10 times; only 71 fit in the escrow (5000/70).
			var wg sync.WaitGroup
			var mu sync.Mutex
			paid := map[string]int{}
			refused := 0
			for i := 0; i < 1000; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					key := fmt.Sprintf("payout-%d", i%100)
					p, err := db.PostTransfer(ctx, ledger.Move(key, ledger.KindPayout, "USDC", escrow, ledger.ParticipantAccount(key), 70, ""), time.Now())
					mu.Lock()
					defer mu.Unlock()
					switch {
					case errors.Is(err, ledger.ErrInsufficientFunds):
						refused++
					case err != nil:
						t.Errorf("payout %s: %v", key, err)
					case !p.Replayed:
						paid[key]++
					}
				}(i)
			}
			wg.Wait()
			for key, n := range paid {
				if n != 1 {
					t.Errorf("%s was paid %d times", key, n)
				}
			}
			if len(paid) != funded/70 {
				t.Errorf("%d payouts went through, want %d (all that fit)", len(paid), funded/70)
			}
			left, _ := db.Balance(ctx, escrow, "USDC")
			if left != funded-70*int64(len(paid)) {
				t.Errorf("escrow holds %d, want %d", left, funded-70*int64(len(paid)))
			}
			checkConservation(t, db, "USDC", funded, 0)
		})
	}
}
