package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	"crucible/internal/api/apiv1"
	"crucible/internal/identity"
	"crucible/internal/store"
)

// Every request's body is read by wrap, up to its route's limit, before the
// handler runs; a signed route's headers are checked first
// (identity.Verifier.Check), so an unsigned, stale or misdirected request is
// refused before one byte of its body is read, and one that passes costs at
// most its route's limit.
const (
	// DefaultBodyBytes bounds the body of a route that carries no dataset.
	DefaultBodyBytes = 1 << 20
	// SubmissionBodyBytes bounds a submission (a code patch is the largest).
	SubmissionBodyBytes = 8 << 20
)

// bodyLimits lists the routes whose bodies may exceed DefaultBodyBytes.
var bodyLimits = map[string]int64{
	"POST /api/v1/competitions":                  MaxBodyBytes,
	"POST /api/v1/pools":                         MaxBodyBytes,
	"POST /api/v1/preference/competitions":       MaxBodyBytes,
	"POST /api/v1/competitions/{id}/submissions": SubmissionBodyBytes,
}

// bodyLimit returns the most bytes the route's body may have.
func (rt route) bodyLimit() int64 {
	if n, ok := bodyLimits[rt.method+" "+rt.pattern]; ok {
		return n
	}
	return DefaultBodyBytes
}

func (s *Server) hub(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, http.StatusOK, apiv1.HubInfo{HubID: s.cfg.HubID})
}

// readBody reads the request body up to the route's limit; a larger body is
// a 413 naming the limit. A body that announces more than the limit is
// refused without reading it, and an announced length reserves at most
// DefaultBodyBytes up front (the rest grows as bytes actually arrive).
func readBody(w http.ResponseWriter, r *http.Request, rt route) ([]byte, error) {
	limit := rt.bodyLimit()
	tooLarge := &httpError{http.StatusRequestEntityTooLarge,
		fmt.Sprintf("request body is larger than the %s limit of %s %s", size(limit), rt.method, rt.pattern)}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	var buf bytes.Buffer
	buf.Grow(int(min(max(r.ContentLength, 0), DefaultBodyBytes)) + bytes.MinRead)
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case err != nil:
		return nil, badRequest("read request body: %v", err)
	}
	return buf.Bytes(), nil
}

// burnsOwnNonce lists the routes whose handler burns the request's nonce
// itself, in the transaction that does what the request asks, instead of
// authenticate in a commit of its own (createSubmission: intake.Entry.Nonce).
// Such a handler must burn it on every way out.
var burnsOwnNonce = map[string]bool{
	"POST /api/v1/competitions/{id}/submissions": true,
}

// authenticate checks a signed route's headers, then reads its body, then
// checks the signature over the body and burns the nonce (unless the route
// burns its own). It returns the signer's key id and the body.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, rt route) (string, []byte, error) {
	claim, err := s.verifier.Check(r.Header)
	if err != nil {
		return "", nil, &httpError{http.StatusUnauthorized, err.Error()}
	}
	body, err := readBody(w, r, rt)
	if err != nil {
		return "", nil, err
	}
	var keyID string
	if burnsOwnNonce[rt.method+" "+rt.pattern] {
		keyID, err = s.verifier.SignedBy(claim, r.Method, r.URL.RequestURI(), body)
	} else {
		keyID, err = s.verifier.Confirm(r.Context(), claim, r.Method, r.URL.RequestURI(), body)
	}
	if err != nil {
		if errors.Is(err, identity.ErrUnauthorized) {
			return "", nil, &httpError{http.StatusUnauthorized, err.Error()}
		}
		return "", nil, err
	}
	return keyID, body, nil
}

// size writes a byte count for people: "1 MiB", "64 MiB", "512-byte".
func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d-byte", n)
}

// burnThen burns a nonce that authenticate left to its handler (see
// burnsOwnNonce), alone, for a request refused before the transaction that
// would have burned it, and returns refused; a replay is refused as one,
// whatever else is wrong with it. The burn outlives the caller's
// cancellation, as the request reached the hub whole.
func (s *Server) burnThen(ctx context.Context, use *store.NonceUse, refused error) error {
	err := s.cfg.DB.UseNonce(context.WithoutCancel(ctx), use.KeyID, use.Nonce, use.Expires)
	switch {
	case errors.Is(err, identity.ErrNonceReused):
		return &httpError{http.StatusUnauthorized, identity.Replayed(use.Nonce).Error()}
	case err != nil:
		return fmt.Errorf("record nonce: %w", err)
	}
	return refused
}
