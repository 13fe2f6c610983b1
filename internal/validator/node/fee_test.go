package node_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"crucible/internal/client"
	"crucible/internal/consensus"
	"crucible/internal/identity"
	"crucible/internal/ledger"
)

// TestRegistrationOverHTTPBurnsTheFeeOrRefuses: against a live hub started
// with a registration fee, a miner without the funds is refused (409, the
// fee named) and gets no UID; a funded one registers and its fee lands in
// the burn account once, however often it registers again.
func TestRegistrationOverHTTPBurnsTheFeeOrRefuses(t *testing.T) {
	ctx := context.Background()
	h := newClockHub(t, consensus.Config{RegistrationFee: 500})
	k, _ := identity.NewKey()
	c := h.client(t, k)
	_, err := c.Register(ctx)
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict || !strings.Contains(apiErr.Message, "registration costs 500") {
		t.Fatalf("registering without funds: %v, want 409 naming the fee", err)
	}
	if uids, err := c.UIDs(ctx); err != nil || len(uids) != 0 {
		t.Fatalf("UIDs after a refused registration: %+v, %v; want none", uids, err)
	}
	if _, err := h.db.PostTransfer(ctx, ledger.Move("fund", ledger.KindDeposit, consensus.DefaultAsset, ledger.External,
		ledger.ParticipantAccount(k.ID()), 800, "winnings"), time.Now()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Register(ctx); err != nil {
			t.Fatal(err)
		}
	}
	left, _ := h.db.Balance(ctx, ledger.ParticipantAccount(k.ID()), consensus.DefaultAsset)
	burned, _ := h.db.Balance(ctx, ledger.BurnAccount, consensus.DefaultAsset)
	if left != 300 || burned != 500 {
		t.Fatalf("after three registrations: %d left, %d burned; want 300 and 500", left, burned)
	}
}
