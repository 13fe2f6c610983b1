package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// hubIDName is the row of the hub id in the create-once name → value table
// (preference_secrets, which already has exactly that shape).
const hubIDName = "hub-id"

// HubID returns this hub's id, creating it on first use: "hub_" and 16
// random bytes in hex. Every process on the database gets the same id, and it
// never changes, so request signatures (internal/identity) made for this hub
// are refused by every other.
func (db *DB) HubID(ctx context.Context) (string, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate hub id: %w", err)
	}
	if _, err := db.sql.ExecContext(ctx, db.rebind(`INSERT INTO preference_secrets (name, secret) VALUES (?, ?)
		ON CONFLICT (name) DO NOTHING`), hubIDName, "hub_"+hex.EncodeToString(raw[:])); err != nil {
		return "", fmt.Errorf("store hub id: %w", err)
	}
	var id string
	if err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT secret FROM preference_secrets WHERE name = ?`), hubIDName).Scan(&id); err != nil {
		return "", fmt.Errorf("read hub id: %w", err)
	}
	return id, nil
}
