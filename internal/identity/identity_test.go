package identity

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"crucible/internal/clock"
)

const testHub = "hub-test"

type memNonces struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *memNonces) UseNonce(_ context.Context, keyID, nonce string, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[keyID+nonce] {
		return ErrNonceReused
	}
	m.seen[keyID+nonce] = true
	return nil
}

func TestKeyFileRoundTripsAndRefusesOverwrite(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.json")
	if err := k.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != k.ID() {
		t.Fatalf("loaded key id %s, want %s", got.ID(), k.ID())
	}
	if err := k.Save(path); err == nil {
		t.Fatal("Save overwrote an existing key file")
	}
	pub, err := ParseKeyID(k.ID())
	if err != nil || !pub.Equal(k.Public) {
		t.Fatalf("ParseKeyID(%s) = %v, %v", k.ID(), pub, err)
	}
}

func TestVerify(t *testing.T) {
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	k, _ := NewKey()
	other, _ := NewKey()
	body := []byte(`{"title":"x"}`)
	signed := func(key *Key, at time.Time, method, path string, b []byte) http.Header {
		hs, err := key.Sign(testHub, method, path, at.Unix(), b)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		for name, v := range hs {
			h.Set(name, v)
		}
		return h
	}
	tests := []struct {
		name    string
		header  func() http.Header
		body    []byte
		path    string
		wantErr string
	}{
		{"a fresh signature is accepted", func() http.Header { return signed(k, start, "POST", "/api/v1/x", body) }, body, "/api/v1/x", ""},
		{"an unsigned request is refused", func() http.Header { return http.Header{} }, body, "/api/v1/x", "not signed"},
		{"a changed body is refused", func() http.Header { return signed(k, start, "POST", "/api/v1/x", body) }, []byte(`{"title":"y"}`), "/api/v1/x", "bad signature"},
		{"a changed path is refused", func() http.Header { return signed(k, start, "POST", "/api/v1/x", body) }, body, "/api/v1/y", "bad signature"},
		{"an old timestamp is refused", func() http.Header { return signed(k, start.Add(-6*time.Minute), "POST", "/api/v1/x", body) }, body, "/api/v1/x", "outside"},
		{"a future timestamp is refused", func() http.Header { return signed(k, start.Add(6*time.Minute), "POST", "/api/v1/x", body) }, body, "/api/v1/x", "outside"},
		{"a signature by another key is refused", func() http.Header {
			h := signed(other, start, "POST", "/api/v1/x", body)
			h.Set(HeaderKey, k.ID())
			return h
		}, body, "/api/v1/x", "bad signature"},
		{"a request signed for another hub is refused", func() http.Header {
			hs, _ := k.Sign("hub-elsewhere", "POST", "/api/v1/x", start.Unix(), body)
			h := http.Header{}
			for name, v := range hs {
				h.Set(name, v)
			}
			return h
		}, body, "/api/v1/x", "signed for another hub"},
		{"a signature moved to another audience header is refused", func() http.Header {
			hs, _ := k.Sign("hub-elsewhere", "POST", "/api/v1/x", start.Unix(), body)
			h := http.Header{}
			for name, v := range hs {
				h.Set(name, v)
			}
			h.Set(HeaderAudience, testHub)
			return h
		}, body, "/api/v1/x", "bad signature"},
		{"a nonce that is not hex is refused", func() http.Header {
			h := signed(k, start, "POST", "/api/v1/x", body)
			h.Set(HeaderNonce, "zzzzzzzzzzzzzzzzzzzzzzzz\x00")
			return h
		}, body, "/api/v1/x", "hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &Verifier{Audience: testHub, Clock: clock.NewFake(start), Nonces: &memNonces{seen: map[string]bool{}}}
			id, err := v.Verify(context.Background(), "POST", tt.path, tt.header(), tt.body)
			if tt.wantErr == "" {
				if err != nil || id != k.ID() {
					t.Fatalf("Verify = %q, %v; want %q, nil", id, err, k.ID())
				}
				return
			}
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Verify error = %v, want unauthorized containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyRefusesAReplayedNonce(t *testing.T) {
	now := time.Now()
	k, _ := NewKey()
	v := &Verifier{Audience: testHub, Clock: clock.NewFake(now), Nonces: &memNonces{seen: map[string]bool{}}}
	hs, _ := k.Sign(testHub, "POST", "/p", now.Unix(), nil)
	h := http.Header{}
	for name, val := range hs {
		h.Set(name, val)
	}
	if _, err := v.Verify(context.Background(), "POST", "/p", h, nil); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(context.Background(), "POST", "/p", h, nil)
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("second use of a nonce: %v, want a replay refusal", err)
	}
}

// SignedBy checks the signature as Confirm does but burns nothing: the
// nonce NonceOf names is the caller's to burn.
func TestSignedByLeavesTheNonceToItsCaller(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k, _ := NewKey()
	nonces := &memNonces{seen: map[string]bool{}}
	v := &Verifier{Audience: testHub, Clock: clock.NewFake(now), Nonces: nonces}
	hs, _ := k.Sign(testHub, "POST", "/p", now.Unix(), []byte("body"))
	h := http.Header{}
	for name, val := range hs {
		h.Set(name, val)
	}
	c, err := v.Check(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.SignedBy(c, "POST", "/p", []byte("other")); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("SignedBy over another body: %v, want a bad signature", err)
	}
	if id, err := v.SignedBy(c, "POST", "/p", []byte("body")); err != nil || id != k.ID() {
		t.Fatalf("SignedBy = %q, %v; want %s", id, err, k.ID())
	}
	if len(nonces.seen) != 0 {
		t.Fatalf("SignedBy burned %d nonces; want none", len(nonces.seen))
	}
	nonce, expires := v.NonceOf(h)
	if nonce != h.Get(HeaderNonce) || !expires.Equal(now.Add(DefaultWindow)) {
		t.Fatalf("NonceOf = %s, %s; want the header's nonce, expiring %s", nonce, expires, now.Add(DefaultWindow))
	}
	if _, err := v.Confirm(context.Background(), c, "POST", "/p", []byte("body")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Confirm(context.Background(), c, "POST", "/p", []byte("body")); err == nil || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("Confirm after Confirm: %v, want a replay refusal", err)
	}
}
