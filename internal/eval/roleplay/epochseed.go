package roleplay

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
)

// NewEpochSeed draws a secret seed for one epoch's fresh items from
// crypto/rand. It is non-negative (63 random bits): far too many to try
// against a published commitment.
func NewEpochSeed() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics on a broken system source)
	return int64(binary.BigEndian.Uint64(b[:]) >> 1)
}

// SeedCommitment is the hex SHA-256 of the seed's decimal text, what the
// hub publishes when an epoch opens. Anyone can check a revealed seed with
// `printf %d SEED | sha256sum`.
func SeedCommitment(seed int64) string {
	sum := sha256.Sum256([]byte(strconv.FormatInt(seed, 10)))
	return hex.EncodeToString(sum[:])
}

// DefaultContaminationThreshold is the largest gap between a model's score
// on the public practice items and on an epoch's fresh items that is not
// flagged as contamination (overfitting the public set).
const DefaultContaminationThreshold = 0.15

// GapThreshold is the configured contamination threshold, or the default.
func (c CompetitionConfig) GapThreshold() float64 {
	if c.ContaminationThreshold > 0 {
		return c.ContaminationThreshold
	}
	return DefaultContaminationThreshold
}
