package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"crucible/internal/app"
	"crucible/internal/competition"
	"crucible/internal/ledger"
)

func TestAllocatePreviewsRulesToTheUnit(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want map[string]int64
	}{
		{"top-k leaves the unassigned part out", []string{"--rule", "top-k:50,30", "--amount", "1000", "--scores", "a=0.9,b=0.8,c=0.7"},
			map[string]int64{"a": 500, "b": 300, "c": 0}},
		{"arithmetic-decrease rounds by largest remainder", []string{"--rule", "arithmetic-decrease", "--amount", "1000", "--scores", "a=0.9,b=0.8,c=0.7"},
			map[string]int64{"a": 500, "b": 333, "c": 167}},
		{"ties share their ranks and zero scores get nothing", []string{"--rule", "winner-take-all", "--amount", "101", "--scores", "a=0.9,b=0.9,c=0"},
			map[string]int64{"a": 51, "b": 50, "c": 0}},
		{"AO's top-10 arithmetic decrease with the progress factor", []string{"--rule", "arithmetic-decrease:top=10+progress", "--amount", "300",
			"--scores", "a=0.9,b=0.6", "--progress", "a=0.5"},
			map[string]int64{"b": 200, "a": 100}},
		{"a table with a flat payout beyond it", []string{"--rule", "table:50+flat:20", "--amount", "100", "--scores", "a=0.9,b=0.8,c=0.7,d=0.6"},
			map[string]int64{"a": 50, "b": 20, "c": 20, "d": 0}},
		{"ties=earliest without commit times orders by name", []string{"--rule", "table:60,40+ties=earliest", "--amount", "10", "--scores", "b=0.9,a=0.9"},
			map[string]int64{"a": 6, "b": 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := crucible(t, append([]string{"allocate", "--json"}, tt.args...)...)
			if code != 0 {
				t.Fatal(stderr)
			}
			var got map[string]int64
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("allocate = %v, want %v", got, tt.want)
				}
			}
		})
	}
	if _, stderr, code := crucible(t, "allocate", "--rule", "top-k:90,20", "--amount", "10", "--scores", "a=1"); code == 0 || !strings.Contains(stderr, "100") {
		t.Fatalf("a top-k over 100%%: exit %d, %q", code, stderr)
	}
	if _, stderr, code := crucible(t, "allocate", "--rule", "proportional+progress", "--amount", "10", "--scores", "a=1", "--progress", "b=0.5"); code == 0 || !strings.Contains(stderr, "no score") {
		t.Fatalf("progress for an unknown entrant: exit %d, %q", code, stderr)
	}
	if _, stderr, code := crucible(t, "allocate", "--rule", "proportional+progress", "--amount", "10", "--scores", "a=1", "--progress", "a=2"); code == 0 || !strings.Contains(stderr, "outside [0, 1]") {
		t.Fatalf("progress of 2: exit %d, %q", code, stderr)
	}
}

func TestPoolCommandsOverARealServer(t *testing.T) {
	dir := t.TempDir()
	dataset := filepath.Join(dir, "siqa.jsonl")
	if err := os.WriteFile(dataset, app.SampleDataset, 0o644); err != nil {
		t.Fatal(err)
	}
	newKey := func(name string) (file, id string) {
		file = filepath.Join(dir, name+".key")
		out, stderr, code := crucible(t, "keys", "new", "--out", file, "--json")
		var k struct {
			KeyID string `json:"key_id"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &k) != nil {
			t.Fatalf("keys new: %d %q %q", code, out, stderr)
		}
		return file, k.KeyID
	}
	operator, operatorID := newKey("operator")
	key, funderID := newKey("funder")
	// No workers: no evaluation tick settles the ended pool below before the test does.
	server := serveInProcess(t, "--admin-key", operatorID, "--no-work")
	poolCreate := []string{"pool", "create", "--server", server, "--key", key, "--dataset", dataset, "--title", "SIQA pool", "--json"}
	create := append(slices.Clone(poolCreate), "--fund", "5000", "--asset", "USDC", "--allocation", "top-k:60,40", "--start", "now", "--end", "+24h", "--budget", "500/h")
	if _, stderr, code := crucible(t, create...); code != 1 || !strings.Contains(stderr, "insufficient funds") || !strings.Contains(stderr, "ledger deposit") {
		t.Fatalf("creating a pool without money: exit %d, %q; want a refusal pointing to ledger deposit", code, stderr)
	}
	deposit := []string{"ledger", "deposit", "--server", server, "--to", funderID, "--amount", "5000", "--asset", "USDC", "--idempotency-key", "wire-1"}
	if _, stderr, code := crucible(t, append(deposit, "--key", key)...); code != 1 || !strings.Contains(stderr, "403") {
		t.Fatalf("a deposit signed by the funder: exit %d, %q; want a 403 refusal", code, stderr)
	}
	for _, want := range []string{"deposited 5000 USDC to funder:" + funderID, "already deposited (nothing moved)"} {
		if out, stderr, code := crucible(t, append(deposit, "--key", operator)...); code != 0 || !strings.Contains(out, want) {
			t.Fatalf("ledger deposit: exit %d, %q %q; want %q", code, out, stderr, want)
		}
	}
	var p competition.Pool
	out, stderr, code := crucible(t, create...)
	if code != 0 {
		t.Fatal(stderr)
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	if p.BudgetPerHour != 500 || p.Amount != 5000 || p.Rule != "top-k:60,40" || p.PrivateFraction != 0.5 {
		t.Fatalf("pool %+v", p)
	}
	if _, stderr, code := crucible(t, "pool", "join", "--server", server, "--key", key, "--pool", p.CompetitionID,
		"--base-url", "http://127.0.0.1:9/v1", "--model", "m"); code != 0 {
		t.Fatal(stderr)
	}
	out, stderr, code = crucible(t, "ledger", "balance", "--server", server, "--account", ledger.EscrowAccount(p.CompetitionID), "--json")
	if code != 0 {
		t.Fatal(stderr)
	}
	var bals []ledger.Balance
	if err := json.Unmarshal([]byte(out), &bals); err != nil || len(bals) != 1 || bals[0].Amount != 5000 {
		t.Fatalf("escrow balances %s (%v), want 5000", out, err)
	}
	for _, force := range []string{"--force=false", "--force"} {
		if _, stderr, code := crucible(t, "pool", "settle", "--server", server, "--key", key, "--pool", p.CompetitionID, force); code != 1 || !strings.Contains(stderr, "409") {
			t.Fatalf("settling an open pool (%s): exit %d, %q; want a 409 refusal", force, code, stderr)
		}
	}
	if out, stderr, code := crucible(t, "pool", "status", "--server", server, "--pool", p.CompetitionID); code != 0 || !strings.Contains(out, "escrow 5000") {
		t.Fatalf("pool status: %d %q %q", code, out, stderr)
	}

	// A pool that has already ended waits for its final evaluation tick,
	// unless its funder forces settlement.
	if _, stderr, code := crucible(t, "ledger", "deposit", "--server", server, "--key", operator, "--to", "funder:"+funderID,
		"--amount", "100", "--asset", "USDC"); code != 0 {
		t.Fatal(stderr)
	}
	out, stderr, code = crucible(t, append(poolCreate, "--fund", "100", "--asset", "USDC", "--allocation", "winner-take-all",
		"--start", time.Now().Add(-48*time.Hour).Format(time.RFC3339), "--end", time.Now().Add(-24*time.Hour).Format(time.RFC3339))...)
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil {
		t.Fatalf("creating an ended pool: %d %q", code, stderr)
	}
	settle := []string{"pool", "settle", "--server", server, "--key", key, "--pool", p.CompetitionID}
	if _, stderr, code := crucible(t, settle...); code != 1 || !strings.Contains(stderr, "409") || !strings.Contains(stderr, "next evaluation tick") {
		t.Fatalf("settling before the final tick: exit %d, %q; want a 409 refusal", code, stderr)
	}
	if out, stderr, code := crucible(t, append(settle, "--force")...); code != 0 || !strings.Contains(out, "forced before the final evaluation tick by "+funderID) ||
		!strings.Contains(out, "refunded to the funder: 100") {
		t.Fatalf("forced settlement: exit %d, %q %q", code, out, stderr)
	}
	if out, stderr, code := crucible(t, "pool", "status", "--server", server, "--pool", p.CompetitionID); code != 0 || !strings.Contains(out, "forced before the final evaluation tick by "+funderID) {
		t.Fatalf("pool status of a forced settlement: %d %q %q", code, out, stderr)
	}
}
