package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"crucible/internal/ledger"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

func TestValidatorTablesOnBothDatabases(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, d.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			t.Run("registrations get distinct UIDs under concurrency and a key keeps its UID", func(t *testing.T) { testRegistrations(t, db) })
			t.Run("a full registration replaces the chosen UID", func(t *testing.T) { testReplacement(t, db) })
			t.Run("stakes are set and replaced", func(t *testing.T) { testStakes(t, db) })
			t.Run("weight vectors round-trip and pending epochs are listed", func(t *testing.T) { testWeightVectors(t, db) })
			t.Run("an epoch closes once with its emission and pruning scores", func(t *testing.T) { testCloseOnce(t, db) })
		})
	}
}

// nextUID picks the next UID after the existing ones.
func nextUID(existing []store.MinerUID) (int64, error) { return int64(len(existing)), nil }

func testRegistrations(t *testing.T, db *store.DB) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, created, err := db.RegisterMiner(ctx, fmt.Sprintf("ed25519:m%d", i), t0, nil, nextUID)
			if err == nil && !created {
				err = errors.New("a new key was not created")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all, err := db.MinerUIDs(ctx)
	if err != nil || len(all) != 8 {
		t.Fatalf("uids = %v, %v", all, err)
	}
	for i, m := range all {
		if m.UID != int64(i) {
			t.Fatalf("UIDs are not 0..7: %+v", all)
		}
	}
	reg, _, created, err := db.RegisterMiner(ctx, all[3].Key, t0.Add(time.Hour), nil, func([]store.MinerUID) (int64, error) {
		return 0, errors.New("choose must not be called for a registered key")
	})
	if err != nil || created || reg.UID != 3 || !reg.RegisteredAt.Equal(t0) {
		t.Fatalf("re-registration = %+v created %v, %v", reg, created, err)
	}
}

func testReplacement(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := t0.Add(24 * time.Hour)
	reg, replaced, created, err := db.RegisterMiner(ctx, "ed25519:newcomer", at, nil, func([]store.MinerUID) (int64, error) { return 2, nil })
	if err != nil || !created || replaced == nil || replaced.Key != "ed25519:m2" && replaced.UID != 2 {
		t.Fatalf("replacement = %+v replaced %+v, %v", reg, replaced, err)
	}
	all, _ := db.MinerUIDs(ctx)
	if all[2].Key != "ed25519:newcomer" || !all[2].RegisteredAt.Equal(at) || all[2].PruningScore != 0 {
		t.Fatalf("uid 2 after replacement: %+v", all[2])
	}
	if _, _, _, err := db.RegisterMiner(ctx, "ed25519:refused", at, nil, func([]store.MinerUID) (int64, error) {
		return 0, errors.New("full")
	}); err == nil {
		t.Fatal("a refused registration succeeded")
	}
	if again, _ := db.MinerUIDs(ctx); len(again) != len(all) {
		t.Fatalf("a refused registration changed the table: %d rows, want %d", len(again), len(all))
	}
}

func testStakes(t *testing.T, db *store.DB) {
	ctx := context.Background()
	if _, err := db.GetValidatorStake(ctx, "ed25519:v1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing stake: %v, want ErrNotFound", err)
	}
	for _, s := range []int64{100, 250} {
		if err := db.SetValidatorStake(ctx, store.ValidatorStake{Key: "ed25519:v1", Stake: s, SetBy: "ed25519:admin", UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := db.GetValidatorStake(ctx, "ed25519:v1")
	if err != nil || st.Stake != 250 || st.SetBy != "ed25519:admin" {
		t.Fatalf("stake = %+v, %v", st, err)
	}
	list, _ := db.ValidatorStakes(ctx)
	if len(list) != 1 {
		t.Fatalf("stakes = %+v", list)
	}
}

func testWeightVectors(t *testing.T, db *store.DB) {
	ctx := context.Background()
	for i, e := range []int64{7, 7, 8} {
		v := store.WeightVector{ID: store.NewID("w"), Epoch: e, Validator: "ed25519:v1", Weights: map[int64]float64{0: 0.25, 3: 0.75},
			PostedAt: t0.Add(time.Duration(i) * time.Second)}
		if err := db.InsertWeightVector(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	vs, err := db.WeightVectors(ctx, 7)
	if err != nil || len(vs) != 2 || vs[1].Weights[3] != 0.75 || !vs[1].PostedAt.After(vs[0].PostedAt) {
		t.Fatalf("vectors = %+v, %v", vs, err)
	}
	pending, err := db.PendingConsensusEpochs(ctx, 8)
	if err != nil || len(pending) != 1 || pending[0] != 7 {
		t.Fatalf("pending before 8 = %v, %v (want [7])", pending, err)
	}
}

func testCloseOnce(t *testing.T, db *store.DB) {
	ctx := context.Background()
	before, _ := db.MinerUIDs(ctx)
	m0 := before[0].Key
	transfer := ledger.Transfer{Key: "consensus-test-7", Kind: ledger.KindEmission, Asset: "CRU", Legs: []ledger.Entry{
		{Account: ledger.External, Amount: -100}, {Account: "miner:" + m0, Amount: 60}, {Account: "validator:ed25519:v1", Amount: 40}}}
	pruning := []store.MinerUID{{UID: 0, Key: m0, PruningScore: 0.6}, {UID: 1, Key: "ed25519:someone-else", PruningScore: 0.4}}
	var wg sync.WaitGroup
	inserted := make(chan bool, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := db.CloseConsensusEpoch(ctx, 7, t0, map[string]int{"closer": i}, pruning, &transfer)
			if err != nil {
				t.Error(err)
			}
			inserted <- ok
		}()
	}
	wg.Wait()
	close(inserted)
	n := 0
	for ok := range inserted {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d closes recorded epoch 7, want exactly 1", n)
	}
	if bal, _ := db.Balance(ctx, "miner:"+m0, "CRU"); bal != 60 {
		t.Fatalf("miner balance %d after four closes, want 60 (paid once)", bal)
	}
	all, _ := db.MinerUIDs(ctx)
	if all[0].PruningScore != 0.6 || all[1].PruningScore != 0 {
		t.Fatalf("pruning scores %v, %v: want 0.6 for m0 and UID 1 untouched (another key holds it)", all[0].PruningScore, all[1].PruningScore)
	}
	var rec map[string]int
	if err := db.ConsensusEpoch(ctx, 7, &rec); err != nil {
		t.Fatal(err)
	}
	if latest, _ := db.LatestConsensusEpoch(ctx, 100); latest != 7 {
		t.Fatalf("latest = %d", latest)
	}
	if latest, _ := db.LatestConsensusEpoch(ctx, 7); latest != -1 {
		t.Fatalf("latest before 7 = %d, want -1", latest)
	}
	if err := db.ConsensusEpoch(ctx, 8, &rec); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("open epoch: %v, want ErrNotFound", err)
	}
	if pending, _ := db.PendingConsensusEpochs(ctx, 9); len(pending) != 1 || pending[0] != 8 {
		t.Fatalf("pending after closing 7 = %v, want [8]", pending)
	}
}
