package consensus_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"crucible/internal/consensus"
	"crucible/internal/ledger"
)

func TestARegistrationFeeIsBurnedOnceAndWithoutFundsThereIsNoUID(t *testing.T) {
	forEachDatabase(t, testRegistrationFee)
}

// testRegistrationFee: with a fee, UID churn is not free. A funded key pays
// the fee into the burn account exactly once (registering again pays
// nothing); a key without the funds gets no UID and burns nothing.
func testRegistrationFee(t *testing.T, url string) {
	ctx := context.Background()
	h := newHub(t, url, consensus.Config{RegistrationFee: 100})
	balance := func(account string) int64 {
		t.Helper()
		b, err := h.db.Balance(ctx, account, consensus.DefaultAsset)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rich, poor := keyID(t), keyID(t)
	if _, err := h.db.PostTransfer(ctx, ledger.Move("fund-rich", ledger.KindDeposit, consensus.DefaultAsset, ledger.External,
		ledger.ParticipantAccount(rich), 250, "test funds"), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.PostTransfer(ctx, ledger.Move("fund-poor", ledger.KindDeposit, consensus.DefaultAsset, ledger.External,
		ledger.ParticipantAccount(poor), 99, "test funds"), t0); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		reg, err := h.svc.Register(ctx, rich)
		if err != nil {
			t.Fatal(err)
		}
		if reg.Created != (i == 0) {
			t.Fatalf("registration %d: created = %v", i, reg.Created)
		}
	}
	if got, burned := balance(ledger.ParticipantAccount(rich)), balance(ledger.BurnAccount); got != 150 || burned != 100 {
		t.Fatalf("after registering twice: registrant holds %d, burn %d; want 150 and 100 (the fee once)", got, burned)
	}
	_, err := h.svc.Register(ctx, poor)
	if !errors.Is(err, consensus.ErrConflict) || !strings.Contains(err.Error(), "registration costs 100") || !strings.Contains(err.Error(), "insufficient funds") {
		t.Fatalf("registering without the fee: %v, want a conflict naming the fee", err)
	}
	uids, err := h.svc.UIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(uids) != 1 || uids[0].Key != rich {
		t.Fatalf("UIDs = %+v, want only the paying miner", uids)
	}
	if got, burned := balance(ledger.ParticipantAccount(poor)), balance(ledger.BurnAccount); got != 99 || burned != 100 {
		t.Fatalf("after the refused registration: registrant holds %d, burn %d; want 99 and 100", got, burned)
	}
}
