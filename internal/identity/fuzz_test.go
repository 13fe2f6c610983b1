package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"testing"
	"time"

	"crucible/internal/clock"
)

// FuzzVerify signs a request with a fixed key, then lets the fuzzer replace
// any of its headers, its path or its body. Whatever it sends, the verifier
// must not panic, must refuse with ErrUnauthorized, and may accept only when
// what it checked is byte for byte what the key signed for this hub. The
// untouched request must verify exactly once.
func FuzzVerify(f *testing.F) {
	f.Add("POST", "/api/v1/competitions", []byte(`{"title":"x"}`), "/api/v1/pools", []byte(`{}`),
		"ed25519:AAAA", "hub-other", "1", "00112233445566778899aabbccddeeff", "sig", uint16(0))
	f.Add("GET", "/api/v1/contributor-keys", []byte(nil), "/api/v1/contributor-keys?x=1", []byte("x"),
		"", "", "", "", "", uint16(0x7f))
	f.Add("post", "/p", []byte("body"), "/p", []byte("body"),
		"ed25519:"+string(make([]byte, 43)), testHub, "99999999999999999999", "zz", "AAAA", uint16(0x1f))

	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	k := &Key{Private: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))}
	k.Public = k.Private.Public().(ed25519.PublicKey)
	names := []string{HeaderKey, HeaderAudience, HeaderTimestamp, HeaderNonce, HeaderSignature}

	f.Fuzz(func(t *testing.T, method, path string, body []byte, altPath string, altBody []byte,
		key, audience, timestamp, nonce, sig string, mask uint16) {
		signed, err := k.Sign(testHub, method, path, now.Unix(), body)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		for name, v := range signed {
			h.Set(name, v)
		}
		for i, v := range []string{key, audience, timestamp, nonce, sig} {
			if mask&(1<<i) != 0 {
				h.Set(names[i], v)
			}
		}
		vPath, vBody := path, body
		if mask&(1<<5) != 0 {
			vPath = altPath
		}
		if mask&(1<<6) != 0 {
			vBody = altBody
		}
		v := &Verifier{Audience: testHub, Clock: clock.NewFake(now), Nonces: &memNonces{seen: map[string]bool{}}}
		id, err := v.Verify(context.Background(), method, vPath, h, vBody)
		if err != nil {
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("refusal does not wrap ErrUnauthorized: %v", err)
			}
			if mask&0x7f == 0 {
				t.Fatalf("the untouched signed request was refused: %v", err)
			}
			return
		}
		want := Message(testHub, method, path, signed[HeaderTimestamp], signed[HeaderNonce], body)
		got := Message(h.Get(HeaderAudience), method, vPath, h.Get(HeaderTimestamp), h.Get(HeaderNonce), vBody)
		if id != k.ID() || h.Get(HeaderKey) != k.ID() || !bytes.Equal(got, want) {
			t.Fatalf("accepted a request that differs from what was signed: key %q, message %q, signed %q", id, got, want)
		}
		if _, err := v.Verify(context.Background(), method, vPath, h, vBody); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("a correctly signed request verified twice: %v", err)
		}
	})
}
