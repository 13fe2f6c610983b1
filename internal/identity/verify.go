package identity

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"crucible/internal/clock"
)

// DefaultWindow is how far a request's timestamp may be from the server's clock.
const DefaultWindow = 5 * time.Minute

// ErrNonceReused is returned by a NonceStore for a nonce it has seen before.
var ErrNonceReused = errors.New("nonce already used")

// NonceStore remembers nonces until they expire, so a captured request cannot
// be replayed inside the timestamp window.
type NonceStore interface {
	// UseNonce records the nonce, or returns ErrNonceReused if it is known.
	UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error
}

// Verifier checks signed requests.
type Verifier struct {
	Clock  clock.Clock
	Window time.Duration
	Nonces NonceStore
}

// Verify checks the signature headers of a request and returns the signer's
// key id. Every failure wraps ErrUnauthorized with a reason a person can act on.
func (v *Verifier) Verify(ctx context.Context, method, pathAndQuery string, h http.Header, body []byte) (string, error) {
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("%w: %s", ErrUnauthorized, fmt.Sprintf(format, args...))
	}
	keyID, ts, nonce, sig := h.Get(HeaderKey), h.Get(HeaderTimestamp), h.Get(HeaderNonce), h.Get(HeaderSignature)
	if keyID == "" || ts == "" || nonce == "" || sig == "" {
		return fail("request is not signed: %s, %s, %s and %s headers are required (use the crucible CLI or sign as documented in the OpenAPI document)",
			HeaderKey, HeaderTimestamp, HeaderNonce, HeaderSignature)
	}
	pub, err := ParseKeyID(keyID)
	if err != nil {
		return fail("%v", err)
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fail("timestamp %q is not unix seconds", ts)
	}
	window := v.Window
	if window == 0 {
		window = DefaultWindow
	}
	now := v.Clock.Now()
	signedAt := time.Unix(secs, 0)
	if d := now.Sub(signedAt); d > window || d < -window {
		return fail("timestamp %s is outside the ±%s window around the server time %s (check the clock)",
			signedAt.UTC().Format(time.RFC3339), window, now.UTC().Format(time.RFC3339))
	}
	if len(nonce) < 16 || len(nonce) > 128 {
		return fail("nonce must be 16 to 128 characters")
	}
	rawSig, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(rawSig) != ed25519.SignatureSize {
		return fail("signature is not a base64url ed25519 signature")
	}
	if !ed25519.Verify(pub, Message(method, pathAndQuery, ts, nonce, body), rawSig) {
		return fail("bad signature: it does not cover this method, path and body with this key")
	}
	// Only a correctly signed request burns its nonce, so garbage cannot fill the store.
	if err := v.Nonces.UseNonce(ctx, keyID, nonce, signedAt.Add(window)); err != nil {
		if errors.Is(err, ErrNonceReused) {
			return fail("replayed request: nonce %s was already used", nonce)
		}
		return "", fmt.Errorf("record nonce: %w", err)
	}
	return keyID, nil
}
