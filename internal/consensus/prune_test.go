package consensus_test

import (
	"testing"
	"time"

	"crucible/internal/consensus"
	"crucible/internal/store"
)

func TestPruneCandidateTakesTheLowestScoreOutOfImmunityThenTheOldest(t *testing.T) {
	now := time.Unix(10_000, 0)
	old, older, fresh := now.Add(-2*time.Hour), now.Add(-3*time.Hour), now.Add(-time.Minute)
	tests := []struct {
		name string
		all  []store.MinerUID
		want int64 // -1: none
	}{
		{"the lowest pruning score goes", []store.MinerUID{{UID: 0, RegisteredAt: old, PruningScore: 0.3}, {UID: 1, RegisteredAt: old, PruningScore: 0.1}}, 1},
		{"an immune miner is spared although lowest", []store.MinerUID{{UID: 0, RegisteredAt: old, PruningScore: 0.3}, {UID: 1, RegisteredAt: fresh, PruningScore: 0}}, 0},
		{"a tie goes to the oldest registration", []store.MinerUID{{UID: 0, RegisteredAt: old, PruningScore: 0.2}, {UID: 1, RegisteredAt: older, PruningScore: 0.2}}, 1},
		{"a full tie goes to the lowest UID", []store.MinerUID{{UID: 4, RegisteredAt: old}, {UID: 2, RegisteredAt: old}}, 2},
		{"nobody goes when everyone is immune", []store.MinerUID{{UID: 0, RegisteredAt: fresh}}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := consensus.PruneCandidate(tt.all, now, time.Hour)
			if got := map[bool]int64{true: m.UID, false: -1}[ok]; got != tt.want {
				t.Fatalf("pruned UID %d, want %d", got, tt.want)
			}
		})
	}
}
