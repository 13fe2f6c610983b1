package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"crucible/internal/clock"
	"crucible/internal/identity"
)

// adminPath is the router's admin API: GET lists the workers, POST
// registers one (body: a WorkerSpec as JSON), DELETE ?url=... unregisters
// one. Every request, GET included, must be signed (see internal/identity)
// by one of Config.AdminKeys.
const adminPath = "/api/v1/router/workers"

// maxAdminBody bounds admin request bodies.
const maxAdminBody = 64 << 10

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSONResponse(w, status, map[string]string{"error": msg})
}

func (r *Router) serveAdmin(w http.ResponseWriter, req *http.Request) {
	switch req.Method {
	case http.MethodGet, http.MethodPost, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		adminError(w, http.StatusMethodNotAllowed, "router: "+req.Method+" is not allowed on "+adminPath)
		return
	}
	if r.cfg.Verifier == nil || len(r.admins) == 0 {
		adminError(w, http.StatusForbidden, "router: the admin API is disabled; start the router with --admin-key KEYID to allow that key to register workers")
		return
	}
	unauthorized := func(err error) {
		status := http.StatusUnauthorized
		if !errors.Is(err, identity.ErrUnauthorized) {
			status = http.StatusInternalServerError
		}
		adminError(w, status, "router: "+err.Error())
	}
	// The signature headers are checked before the body is read, so an
	// unsigned request costs no more than its headers.
	claim, err := r.cfg.Verifier.Check(req.Header)
	if err != nil {
		unauthorized(err)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxAdminBody+1))
	if err != nil {
		adminError(w, http.StatusBadRequest, "router: read request body: "+err.Error())
		return
	}
	if len(body) > maxAdminBody {
		adminError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("router: request body exceeds %d bytes", maxAdminBody))
		return
	}
	keyID, err := r.cfg.Verifier.Confirm(req.Context(), claim, req.Method, req.URL.RequestURI(), body)
	if err != nil {
		unauthorized(err)
		return
	}
	if !r.admins[keyID] {
		adminError(w, http.StatusForbidden, fmt.Sprintf("router: key %s is not an admin key of this router (start it with --admin-key %s)", keyID, keyID))
		return
	}
	switch req.Method {
	case http.MethodGet:
		writeJSONResponse(w, http.StatusOK, r.Workers())
	case http.MethodPost:
		var spec WorkerSpec
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil {
			adminError(w, http.StatusBadRequest, `router: body must be {"url": "http://host:port/v1", "model": "name", "max_concurrency": 8}: `+err.Error())
			return
		}
		spec, err := r.AddWorker(spec)
		switch {
		case errors.Is(err, ErrWorkerExists):
			adminError(w, http.StatusConflict, err.Error()+"; DELETE it first to change its settings")
			return
		case err != nil:
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		r.log.Info("router: worker registered", "worker", spec.URL, "model", spec.Model, "max_concurrency", spec.MaxConcurrency, "by", keyID)
		writeJSONResponse(w, http.StatusCreated, spec)
	case http.MethodDelete:
		u := req.URL.Query().Get("url")
		if u == "" {
			adminError(w, http.StatusBadRequest, "router: DELETE needs ?url=WORKER_URL")
			return
		}
		if !r.RemoveWorker(u) {
			adminError(w, http.StatusNotFound, fmt.Sprintf("router: no worker %s is registered", u))
			return
		}
		r.log.Info("router: worker unregistered", "worker", u, "by", keyID)
		writeJSONResponse(w, http.StatusOK, map[string]string{"removed": u})
	}
}

// MemoryNonces is an in-memory identity.NonceStore for a router running
// without a database. Nonces are forgotten when they expire (and when the
// process exits, which is safe because signed requests also expire). The
// zero value is ready to use.
type MemoryNonces struct {
	// Clock decides when nonces expire; nil means the wall clock.
	Clock clock.Clock

	mu      sync.Mutex
	seen    map[string]time.Time // keyID + "\x00" + nonce → expiry
	inserts int
}

// UseNonce implements identity.NonceStore.
func (m *MemoryNonces) UseNonce(_ context.Context, keyID, nonce string, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	k := keyID + "\x00" + nonce
	if _, ok := m.seen[k]; ok {
		return identity.ErrNonceReused
	}
	m.seen[k] = expires
	if m.inserts++; m.inserts%1024 == 0 {
		var now time.Time
		if m.Clock != nil {
			now = m.Clock.Now()
		} else {
			now = time.Now()
		}
		for k, exp := range m.seen {
			if exp.Before(now) {
				delete(m.seen, k)
			}
		}
	}
	return nil
}
