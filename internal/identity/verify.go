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

// Verifier checks signed requests in two steps: Check looks at the headers
// alone (cheap, before the body is read), Confirm checks the signature over
// the body and burns the nonce. Verify does both.
type Verifier struct {
	// Audience is this server's id; a request signed for any other
	// audience is refused.
	Audience string
	Clock    clock.Clock
	Window   time.Duration
	Nonces   NonceStore
}

// Claim is what a request's signature headers assert, checked for shape,
// audience and time by Verifier.Check but not yet against the body.
type Claim struct {
	// KeyID is the key the request claims to be signed by.
	KeyID     string
	pub       ed25519.PublicKey
	timestamp string
	signedAt  time.Time
	nonce     string
	sig       []byte
}

func unauthorized(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnauthorized, fmt.Sprintf(format, args...))
}

// Check parses and checks the signature headers without the body: all five
// present, a well-formed key id, this server's audience, a timestamp inside
// the window, a hex nonce and a signature of the right size. A server calls
// it before reading the body, so an unsigned or misdirected request costs no
// more than its headers. Every failure wraps ErrUnauthorized with a reason a
// person can act on.
func (v *Verifier) Check(h http.Header) (*Claim, error) {
	keyID, aud, ts, nonce, sig := h.Get(HeaderKey), h.Get(HeaderAudience), h.Get(HeaderTimestamp), h.Get(HeaderNonce), h.Get(HeaderSignature)
	if keyID == "" || aud == "" || ts == "" || nonce == "" || sig == "" {
		return nil, unauthorized("request is not signed: %s, %s, %s, %s and %s headers are required (use the crucible CLI or sign as documented in the OpenAPI document)",
			HeaderKey, HeaderAudience, HeaderTimestamp, HeaderNonce, HeaderSignature)
	}
	pub, err := ParseKeyID(keyID)
	if err != nil {
		return nil, unauthorized("%v", err)
	}
	if aud != v.Audience {
		return nil, unauthorized("signed for another hub: the signature names audience %q, this server is %q (a hub publishes its id at GET /api/v1/hub)",
			truncate(aud), v.Audience)
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, unauthorized("timestamp %q is not unix seconds", truncate(ts))
	}
	window := v.Window
	if window == 0 {
		window = DefaultWindow
	}
	now := v.Clock.Now()
	signedAt := time.Unix(secs, 0)
	if d := now.Sub(signedAt); d > window || d < -window {
		return nil, unauthorized("timestamp %s is outside the ±%s window around the server time %s (check the clock)",
			signedAt.UTC().Format(time.RFC3339), window, now.UTC().Format(time.RFC3339))
	}
	if !isHex(nonce) || len(nonce) < 16 || len(nonce) > 128 {
		return nil, unauthorized("nonce must be 16 to 128 hex digits")
	}
	rawSig, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(rawSig) != ed25519.SignatureSize {
		return nil, unauthorized("signature is not a base64url ed25519 signature")
	}
	return &Claim{KeyID: keyID, pub: pub, timestamp: ts, signedAt: signedAt, nonce: nonce, sig: rawSig}, nil
}

// Confirm checks the claim's signature over the method, path and body, then
// burns its nonce, and returns the signer's key id. Only a correctly signed
// request burns its nonce, so garbage cannot fill the store.
func (v *Verifier) Confirm(ctx context.Context, c *Claim, method, pathAndQuery string, body []byte) (string, error) {
	keyID, err := v.SignedBy(c, method, pathAndQuery, body)
	if err != nil {
		return "", err
	}
	if err := v.Nonces.UseNonce(ctx, c.KeyID, c.nonce, v.expires(c.signedAt)); err != nil {
		if errors.Is(err, ErrNonceReused) {
			return "", Replayed(c.nonce)
		}
		return "", fmt.Errorf("record nonce: %w", err)
	}
	return keyID, nil
}

// SignedBy checks the claim's signature over the method, path and body and
// returns the signer's key id, like Confirm, but leaves the nonce to burn:
// for a server that burns it in the transaction that does what the request
// asks (NonceOf), so the two commit together. Until it is burned the
// request may be replayed: every outcome of the request must burn it.
func (v *Verifier) SignedBy(c *Claim, method, pathAndQuery string, body []byte) (string, error) {
	if !ed25519.Verify(c.pub, Message(v.Audience, method, pathAndQuery, c.timestamp, c.nonce, body), c.sig) {
		return "", unauthorized("bad signature: it does not cover this method, path and body with this key")
	}
	return c.KeyID, nil
}

// NonceOf returns the nonce of a request whose headers Check accepted and
// whose signature SignedBy confirmed, and when the store may forget it.
func (v *Verifier) NonceOf(h http.Header) (nonce string, expires time.Time) {
	secs, _ := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	return h.Get(HeaderNonce), v.expires(time.Unix(secs, 0))
}

// expires is when a nonce signed at signedAt may be forgotten: its
// timestamp is refused from then on.
func (v *Verifier) expires(signedAt time.Time) time.Time {
	window := v.Window
	if window == 0 {
		window = DefaultWindow
	}
	return signedAt.Add(window)
}

// Replayed is the refusal of a request whose nonce was already used.
func Replayed(nonce string) error {
	return unauthorized("replayed request: nonce %s was already used", nonce)
}

// Verify checks the signature headers of a request and its body (Check then
// Confirm) and returns the signer's key id.
func (v *Verifier) Verify(ctx context.Context, method, pathAndQuery string, h http.Header, body []byte) (string, error) {
	c, err := v.Check(h)
	if err != nil {
		return "", err
	}
	return v.Confirm(ctx, c, method, pathAndQuery, body)
}

func isHex(s string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
			return false
		}
	}
	return true
}

// truncate keeps error messages short when a header is huge.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
