// Package identity owns ed25519 keys ("hotkeys"), the key file format and the
// signature scheme of state-changing API requests. It is pure (no database,
// no HTTP server); replay protection needs a NonceStore supplied by the caller.
//
// A key id is "ed25519:" followed by the unpadded base64url public key, so a
// server can verify any signature without a registry: the identity is the key.
//
// A signed request carries five headers:
//
//	X-Crucible-Key        the key id
//	X-Crucible-Audience   the id of the hub (or router) the request is for
//	X-Crucible-Timestamp  unix seconds when it was signed
//	X-Crucible-Nonce      16 random bytes, hex; never accepted twice for a key
//	X-Crucible-Signature  base64url ed25519 signature of the canonical message
//
// The canonical message is the lines
//
//	crucible-request-v2
//	audience
//	METHOD
//	/path?query
//	timestamp
//	nonce
//	hex(sha256(body))
//
// joined by "\n". The audience binds a signature to one hub: a request
// captured at one hub is refused by every other (a hub publishes its id at
// GET /api/v1/hub). The headers can be checked before the body is read, so a
// server spends nothing on an unsigned or misdirected request (see
// Verifier.Check).
package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

const keyIDPrefix = "ed25519:"

// Key is an ed25519 key pair.
type Key struct {
	Public  ed25519.PublicKey
	Private ed25519.PrivateKey
}

// NewKey makes a fresh key pair from crypto/rand.
func NewKey() (*Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return &Key{Public: pub, Private: priv}, nil
}

// ID returns the key id derived from the public key.
func (k *Key) ID() string { return KeyID(k.Public) }

// KeyID returns the key id of a public key.
func KeyID(pub ed25519.PublicKey) string {
	return keyIDPrefix + base64.RawURLEncoding.EncodeToString(pub)
}

// ParseKeyID returns the public key named by a key id.
func ParseKeyID(id string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(id, keyIDPrefix)
	if !ok {
		return nil, fmt.Errorf("key id %q does not start with %q", id, keyIDPrefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("key id %q is not a base64url ed25519 public key", id)
	}
	return ed25519.PublicKey(raw), nil
}

// keyFile is the on-disk JSON form of a key.
type keyFile struct {
	KeyID      string `json:"key_id"`
	PublicKey  string `json:"public_key"`
	PrivateKey string `json:"private_seed"`
}

// Save writes the key to path with mode 0600, refusing to overwrite a file.
func (k *Key) Save(path string) error {
	data, err := json.MarshalIndent(keyFile{
		KeyID:      k.ID(),
		PublicKey:  base64.RawURLEncoding.EncodeToString(k.Public),
		PrivateKey: base64.RawURLEncoding.EncodeToString(k.Private.Seed()),
	}, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	return f.Close()
}

// Load reads a key file written by Save.
func Load(path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	var kf keyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return nil, fmt.Errorf("key file %s: not JSON: %w", path, err)
	}
	seed, err := base64.RawURLEncoding.DecodeString(kf.PrivateKey)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("key file %s: private_seed is not a base64url 32-byte seed", path)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	k := &Key{Public: priv.Public().(ed25519.PublicKey), Private: priv}
	if kf.KeyID != "" && kf.KeyID != k.ID() {
		return nil, fmt.Errorf("key file %s: key_id does not match the private seed", path)
	}
	return k, nil
}

// Header names of a signed request.
const (
	HeaderKey       = "X-Crucible-Key"
	HeaderAudience  = "X-Crucible-Audience"
	HeaderTimestamp = "X-Crucible-Timestamp"
	HeaderNonce     = "X-Crucible-Nonce"
	HeaderSignature = "X-Crucible-Signature"
)

// Message is the canonical byte string that a request signature covers.
func Message(audience, method, pathAndQuery, timestamp, nonce string, body []byte) []byte {
	digest := sha256.Sum256(body)
	return []byte(strings.Join([]string{
		"crucible-request-v2", audience, strings.ToUpper(method), pathAndQuery, timestamp, nonce, hex.EncodeToString(digest[:]),
	}, "\n"))
}

// Sign returns the signature headers of a request to the hub (or router)
// whose id is audience.
func (k *Key) Sign(audience, method, pathAndQuery string, unixSeconds int64, body []byte) (map[string]string, error) {
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return nil, err
	}
	ts := fmt.Sprint(unixSeconds)
	nonce := hex.EncodeToString(n[:])
	sig := ed25519.Sign(k.Private, Message(audience, method, pathAndQuery, ts, nonce, body))
	return map[string]string{
		HeaderKey:       k.ID(),
		HeaderAudience:  audience,
		HeaderTimestamp: ts,
		HeaderNonce:     nonce,
		HeaderSignature: base64.RawURLEncoding.EncodeToString(sig),
	}, nil
}

// ErrUnauthorized is wrapped by every verification failure; its message says why.
var ErrUnauthorized = errors.New("unauthorized")
