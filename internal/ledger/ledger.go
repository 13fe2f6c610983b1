// Package ledger owns money: double-entry transfers between named accounts
// in integer base units of a named asset, their validation, and the
// allocation rules that split a pool (allocation.go). A balance is always
// derived from entries, never stored on its own. Persistence is the store's
// (internal/store/ledger.go); this package is pure and must never import the
// store, the job queue or the API.
//
// Accounts are named by kind and owner:
//
//	external            the world outside Crucible: deposits come from it, withdrawals go to it
//	funder:<key id>     a funder's available money
//	escrow:<pool id>    money locked in a pool until settlement
//	participant:<key id> a competitor's winnings
//	fee                 the operator's fees
//
// Only external may go negative; its balance is minus the net money in the
// system, so for every asset the sum over all other accounts equals total
// deposits minus total withdrawals. That net is capped at MaxSupply, so every
// balance, and every running sum of an account's entries, fits in an int64.
package ledger

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// External is the account on the other side of deposits and withdrawals.
const External = "external"

// Account names for the account kinds.
func FunderAccount(keyID string) string      { return "funder:" + keyID }
func EscrowAccount(poolID string) string     { return "escrow:" + poolID }
func ParticipantAccount(keyID string) string { return "participant:" + keyID }

// FeeAccount collects the operator's fees.
const FeeAccount = "fee"

// BurnAccount receives burned money (registration fees): nothing ever
// moves out of it.
const BurnAccount = "burn"

// Entry is one leg of a transfer: a signed amount on an account.
type Entry struct {
	Account string `json:"account"`
	Amount  int64  `json:"amount"`
}

// Transfer is a balanced set of entries in one asset, posted atomically and
// at most once per idempotency key.
type Transfer struct {
	// Key makes the transfer idempotent: posting a transfer whose key was
	// already used moves no money and returns the first posting.
	Key   string  `json:"key"`
	Kind  string  `json:"kind"`
	Asset string  `json:"asset"`
	Memo  string  `json:"memo,omitempty"`
	Legs  []Entry `json:"entries"`
}

// Transfer kinds.
const (
	KindDeposit    = "deposit"
	KindWithdrawal = "withdrawal"
	KindEscrow     = "escrow"
	KindPayout     = "payout"
	KindRefund     = "refund"
	KindEmission   = "emission"
	KindBurn       = "burn"
)

var (
	assetRE   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)
	accountRE = regexp.MustCompile(`^(external|fee|burn|(funder|escrow|participant|validator|miner):[^\s]{1,200})$`)
)

// MaxSupply caps the money in the ledger per asset (what came in from
// external and has not gone back), in base units: 2^62. No account then holds
// more than MaxSupply, external never holds less than −MaxSupply, and a
// database SUM over any account's entries in the order they were posted never
// leaves the int64 range, on SQLite (which fails on overflow) as on
// PostgreSQL (whose bigint SUM is numeric, scanned back into int64).
const MaxSupply int64 = 1 << 62

// ErrInsufficientFunds is returned when a transfer would overdraw an account.
var ErrInsufficientFunds = errors.New("insufficient funds")

// ErrSupplyCap is returned when a transfer from external would bring the
// money in the ledger above MaxSupply.
var ErrSupplyCap = errors.New("ledger supply cap")

// Validate checks that a transfer is well formed and balanced.
func (t Transfer) Validate() error {
	if strings.TrimSpace(t.Key) == "" {
		return errors.New("transfer needs an idempotency key")
	}
	if !assetRE.MatchString(t.Asset) {
		return fmt.Errorf("asset %q: want 1-32 letters, digits, '_', '.' or '-'", t.Asset)
	}
	if len(t.Legs) < 2 {
		return errors.New("transfer needs at least two entries")
	}
	var sum int64
	seen := map[string]bool{}
	for _, e := range t.Legs {
		if !accountRE.MatchString(e.Account) {
			return fmt.Errorf("account %q is not a known kind (external, fee, burn, funder:, escrow:, participant:, validator:, miner:)", e.Account)
		}
		if e.Amount == 0 {
			return fmt.Errorf("entry on %s has amount 0", e.Account)
		}
		if e.Amount > MaxSupply || e.Amount < -MaxSupply {
			return fmt.Errorf("entry on %s moves %d units, more than the ledger's cap of %d per asset", e.Account, e.Amount, MaxSupply)
		}
		if seen[e.Account] {
			return fmt.Errorf("account %s appears twice in one transfer", e.Account)
		}
		seen[e.Account] = true
		next := sum + e.Amount
		if (e.Amount > 0 && next < sum) || (e.Amount < 0 && next > sum) {
			return errors.New("transfer amounts overflow")
		}
		sum = next
	}
	if sum != 0 {
		return fmt.Errorf("transfer is unbalanced by %d units", sum)
	}
	return nil
}

// Move is the common two-legged transfer of amount from one account to another.
func Move(key, kind, asset, from, to string, amount int64, memo string) Transfer {
	return Transfer{Key: key, Kind: kind, Asset: asset, Memo: memo,
		Legs: []Entry{{Account: from, Amount: -amount}, {Account: to, Amount: amount}}}
}

// Posted is a transfer as recorded.
type Posted struct {
	ID       string    `json:"id"`
	At       time.Time `json:"at"`
	Transfer Transfer  `json:"transfer"`
	// Replayed is true when the key had been used before and this call moved nothing.
	Replayed bool `json:"replayed"`
}

// Balance is an account's derived balance in one asset.
type Balance struct {
	Account string `json:"account"`
	Asset   string `json:"asset"`
	Amount  int64  `json:"amount"`
}
