package app

import (
	"context"
	"io"

	"crucible/internal/api"
	"crucible/internal/consensus"
	"crucible/internal/identity"
	"crucible/internal/store"
)

// The CLI fills these settings of the server packages from its flags. It
// imports no server package itself (internal/deps_test.go), so it names
// them here.
type (
	// Quotas are the API's per-key quotas (Config.Quotas).
	Quotas = api.Quotas
	// ConsensusConfig is the validator network's settings (Config.Consensus).
	ConsensusConfig = consensus.Config
)

// Defaults of the flags that set Quotas and ConsensusConfig.
const (
	DefaultCompetitionsPerDay = api.DefaultCompetitionsPerDay
	DefaultSubmissionsPerDay  = api.DefaultSubmissionsPerDay
	DefaultOpenSubmissions    = api.DefaultOpenSubmissions

	DefaultMaxUIDs  = consensus.DefaultMaxUIDs
	DefaultImmunity = consensus.DefaultImmunity
	DefaultEmission = consensus.DefaultEmission
	DefaultAsset    = consensus.DefaultAsset
	MaxEmission     = consensus.MaxEmission
)

// NonceDB is a database's table of seen request nonces.
type NonceDB interface {
	identity.NonceStore
	io.Closer
}

// OpenNonces opens the database (a SQLite path or a postgres:// URL) whose
// nonces several routers share, so that a signed request replayed at
// another router is refused (crucible router --database).
func OpenNonces(ctx context.Context, database string) (NonceDB, error) {
	db, err := store.Open(ctx, database)
	if err != nil {
		return nil, err
	}
	return db, nil
}
