package router

// This file holds the request path: routing by URL, picking the least-loaded
// worker, queueing when every worker is busy, proxying the exchange (with
// retries on a fresh worker when nothing was sent yet) and OpenAI-shaped
// errors.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"crucible/internal/inference"
)

// endpoint is a proxied API route.
type endpoint int

const (
	chatEndpoint endpoint = iota
	completionsEndpoint
	embeddingsEndpoint
	numEndpoints
)

// endpointPaths returns the request paths of the proxied endpoints on a
// worker whose API root has the given escaped path ("/v1").
func endpointPaths(root string) [numEndpoints]string {
	return [numEndpoints]string{
		chatEndpoint:        root + "/chat/completions",
		completionsEndpoint: root + "/completions",
		embeddingsEndpoint:  root + "/embeddings",
	}
}

// ServeHTTP implements http.Handler.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case "/v1/chat/completions":
		if req.Method == http.MethodPost {
			r.proxyBody(req.Context(), w, req.Header, req.Body, req.ContentLength, chatEndpoint)
			return
		}
	case "/v1/completions":
		if req.Method == http.MethodPost {
			r.proxyBody(req.Context(), w, req.Header, req.Body, req.ContentLength, completionsEndpoint)
			return
		}
	case "/v1/embeddings":
		if req.Method == http.MethodPost {
			r.proxyBody(req.Context(), w, req.Header, req.Body, req.ContentLength, embeddingsEndpoint)
			return
		}
	case "/v1/models":
		if req.Method == http.MethodGet || req.Method == http.MethodHead {
			r.serveModels(w)
			return
		}
	case "/metrics":
		r.metricsH.ServeHTTP(w, req)
		return
	case "/healthz":
		r.serveHealthz(w)
		return
	case adminPath:
		r.serveAdmin(w, req)
		return
	default:
		if id, ok := strings.CutPrefix(req.URL.Path, "/v1/models/"); ok && id != "" {
			if req.Method == http.MethodGet || req.Method == http.MethodHead {
				r.serveModel(w, id)
				return
			}
			break
		}
		openAIError(w, http.StatusNotFound, "invalid_request_error", "not_found",
			"router: no route for "+req.Method+" "+req.URL.Path+"; it serves /v1/models, /v1/models/{id}, /v1/chat/completions, /v1/completions, /v1/embeddings, /healthz, /metrics and "+adminPath)
		return
	}
	w.Header().Set("Allow", allowFor(req.URL.Path))
	openAIError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed",
		"router: "+req.Method+" is not allowed on "+req.URL.Path)
}

func allowFor(path string) string {
	if strings.HasPrefix(path, "/v1/models") {
		return "GET, HEAD"
	}
	return "POST"
}

// healthyModels returns the models of the healthy workers, each once (the
// first worker's entry wins), sorted by id.
func (r *Router) healthyModels() []inference.Model {
	t := r.table.Load()
	out := []inference.Model{}
	seen := map[string]bool{}
	for _, wk := range t.all {
		if !wk.healthy.Load() {
			continue
		}
		r.mu.Lock()
		ms := wk.list
		r.mu.Unlock()
		for _, m := range ms {
			if !seen[m.ID] {
				seen[m.ID] = true
				if m.Object == "" {
					m.Object = "model"
				}
				out = append(out, m)
			}
		}
	}
	slices.SortFunc(out, func(a, b inference.Model) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (r *Router) serveModels(w http.ResponseWriter) {
	writeJSONResponse(w, http.StatusOK, inference.ModelList{Object: "list", Data: r.healthyModels()})
}

// serveModel answers GET /v1/models/{id} from the healthy workers' lists,
// as the models list does, so the two never disagree.
func (r *Router) serveModel(w http.ResponseWriter, id string) {
	for _, m := range r.healthyModels() {
		if m.ID == id {
			writeJSONResponse(w, http.StatusOK, m)
			return
		}
	}
	openAIError(w, http.StatusNotFound, "invalid_request_error", "model_not_found",
		fmt.Sprintf("router: no healthy worker serves model %q; GET /v1/models lists the models served", id))
}

func (r *Router) serveHealthz(w http.ResponseWriter) {
	healthy := 0
	t := r.table.Load()
	for _, wk := range t.all {
		if wk.healthy.Load() {
			healthy++
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if healthy == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "no healthy worker (%d registered)\n", len(t.all))
		return
	}
	fmt.Fprintf(w, "ok: %d of %d workers healthy\n", healthy, len(t.all))
}

// proxyState is the per-request scratch space, pooled. The upstream
// client writes the body synchronously, so the buffer is free again when
// the request is done.
type proxyState struct {
	body  bytes.Buffer
	copy  []byte
	limit io.LimitedReader // bounds the request body without allocating
}

func (r *Router) getState() *proxyState {
	if st, ok := r.states.Get().(*proxyState); ok {
		return st
	}
	return &proxyState{copy: make([]byte, 32<<10)}
}

func (r *Router) putState(st *proxyState) {
	if st.body.Cap() <= 1<<20 {
		st.body.Reset()
		r.states.Put(st)
	}
}

// pickResult says why no worker was picked.
type pickResult int

const (
	picked pickResult = iota
	noSuchModel
	noneHealthy
	allBusy
)

// pick chooses the healthy, untried worker serving model with the fewest
// requests in flight (ties by round-robin) and claims a slot on it.
func (r *Router) pick(t *routeTable, model []byte, tried []*worker) (*worker, pickResult) {
	list := t.byModel[string(model)]
	n := len(list)
	if n == 0 {
		return nil, noSuchModel
	}
	start := 0
	if n > 1 {
		start = int(r.rr.Add(1) % uint64(n))
	}
	for {
		var best *worker
		bestLoad := int64(1<<63 - 1)
		healthy := 0
		for i := 0; i < n; i++ {
			j := start + i
			if j >= n {
				j -= n
			}
			w := list[j]
			if !w.healthy.Load() || slices.Contains(tried, w) {
				continue
			}
			healthy++
			in := w.inflight.Load()
			if w.max > 0 && in >= w.max {
				continue
			}
			if in < bestLoad {
				best, bestLoad = w, in
			}
		}
		if best == nil {
			if healthy == 0 {
				return nil, noneHealthy
			}
			return nil, allBusy
		}
		if best.acquire() {
			return best, picked
		}
	}
}

// acquire claims a slot on w, honouring its max concurrency.
func (w *worker) acquire() bool {
	if w.max <= 0 {
		w.inflight.Add(1)
		return true
	}
	for {
		in := w.inflight.Load()
		if in >= w.max {
			return false
		}
		if w.inflight.CompareAndSwap(in, in+1) {
			return true
		}
	}
}

// release frees w's slot and wakes queued requests.
func (r *Router) release(w *worker) {
	w.inflight.Add(-1)
	if r.waiters.Load() > 0 {
		r.notifyFree()
	}
}

func (r *Router) notifyFree() {
	r.freeMu.Lock()
	close(r.freed)
	r.freed = make(chan struct{})
	r.freeMu.Unlock()
}

// errQueueTimeout is returned by acquire when no slot frees in time.
var errQueueTimeout = errors.New("queue timeout")

// acquire picks a worker, waiting up to QueueTimeout while all are busy.
func (r *Router) acquire(ctx context.Context, model []byte, tried []*worker) (*worker, pickResult, error) {
	w, res := r.pick(r.table.Load(), model, tried)
	if res != allBusy || r.cfg.QueueTimeout < 0 {
		return w, res, nil
	}
	r.waiters.Add(1)
	defer r.waiters.Add(-1)
	timer := time.NewTimer(r.cfg.QueueTimeout)
	defer timer.Stop()
	for {
		r.freeMu.Lock()
		ch := r.freed
		r.freeMu.Unlock()
		if w, res = r.pick(r.table.Load(), model, tried); res != allBusy {
			return w, res, nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil, allBusy, errQueueTimeout
		case <-ctx.Done():
			return nil, allBusy, ctx.Err()
		}
	}
}

// proxyBody relays one inference request: ctx is the client's (done when
// it goes away), h its header, body its body of contentLength bytes (-1:
// unknown). The lean server calls it without building an http.Request.
func (r *Router) proxyBody(ctx context.Context, w http.ResponseWriter, h http.Header, body io.Reader, contentLength int64, ep endpoint) {
	st := r.getState()
	defer r.putState(st)

	if contentLength > r.cfg.MaxBodyBytes {
		r.reject(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "body_too_large",
			fmt.Sprintf("router: request body of %d bytes exceeds the limit of %d", contentLength, r.cfg.MaxBodyBytes))
		return
	}
	if contentLength > 0 {
		st.body.Grow(int(contentLength))
	}
	st.limit = io.LimitedReader{R: body, N: r.cfg.MaxBodyBytes + 1}
	_, err := st.body.ReadFrom(&st.limit)
	st.limit.R = nil // the pool must not keep the request alive
	if errors.Is(err, errBodyTooLarge) {
		r.reject(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "body_too_large",
			fmt.Sprintf("router: request body exceeds the limit of %d bytes", r.cfg.MaxBodyBytes))
		return
	}
	if err != nil {
		r.reject(w, http.StatusBadRequest, "invalid_request_error", "invalid_body", "router: read request body: "+err.Error())
		return
	}
	if int64(st.body.Len()) > r.cfg.MaxBodyBytes {
		r.reject(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "body_too_large",
			fmt.Sprintf("router: request body exceeds the limit of %d bytes", r.cfg.MaxBodyBytes))
		return
	}
	payload := st.body.Bytes()
	model, ok := modelField(payload)
	if !ok {
		r.reject(w, http.StatusBadRequest, "invalid_request_error", "invalid_request",
			`router: the request body must be a JSON object with a "model" string`)
		return
	}

	var triedBuf [4]*worker
	tried := triedBuf[:0]
	var lastErr error
	for attempt := 0; attempt < r.cfg.MaxAttempts; attempt++ {
		wk, res, err := r.acquire(ctx, model, tried)
		if res != picked {
			if ctx.Err() != nil {
				return
			}
			r.noWorker(w, res, string(model), len(tried), lastErr, err)
			return
		}
		start := time.Now()
		ex, err := wk.up.roundTrip(ctx, start.Add(r.cfg.MaxResponseDuration), wk.paths[ep], h, payload)
		if err != nil {
			r.release(wk)
			if ctx.Err() != nil {
				return // the client went away
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				wk.errs.Add(1)
				r.reject(w, http.StatusGatewayTimeout, "server_error", "worker_timeout",
					fmt.Sprintf("router: the worker did not answer within %s", r.cfg.MaxResponseDuration))
				return
			}
			wk.errs.Add(1)
			if isDialError(err) {
				r.markDown(wk, err)
			}
			lastErr = err
			tried = append(tried, wk)
			continue
		}
		r.relay(ctx, w, ex, wk, start, st.copy)
		return
	}
	r.noWorker(w, noneHealthy, string(model), len(tried), lastErr, nil)
}

// relay copies a worker's response to the client and releases the worker.
// ctx is the client's request context; the exchange's own deadline (start
// + MaxResponseDuration, set on the worker connection) cuts the worker's
// side, and the same deadline on writes to the client stops a client that
// does not read from blocking the relay.
func (r *Router) relay(ctx context.Context, w http.ResponseWriter, ex *exchange, wk *worker, start time.Time, buf []byte) {
	resp := ex.resp
	h := w.Header()
	conn := resp.Header["Connection"]
	for k, vv := range resp.Header {
		if !hopByHop(k) && !namedIn(conn, k) {
			h[k] = vv
		}
	}
	// A writer without deadlines (a test recorder) relays unbounded.
	if setWriteDeadline(w, start.Add(r.cfg.MaxResponseDuration)) == nil {
		// Lift it afterwards so the connection's next request is unaffected.
		defer setWriteDeadline(w, time.Time{})
	}
	w.WriteHeader(resp.StatusCode)
	var flusher http.Flusher
	if isEventStream(resp.Header["Content-Type"]) {
		flusher, _ = w.(http.Flusher)
		if flusher != nil {
			flusher.Flush()
		}
	}
	broken := false
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				ex.broken = true // the client went away
				break
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			ex.broken = true
			broken = ctx.Err() == nil
			break
		}
	}
	wk.up.finish(ex)
	wk.latency.Observe(time.Since(start).Seconds())
	wk.served.Add(1)
	if broken || resp.StatusCode >= 500 {
		wk.errs.Add(1)
	}
	r.release(wk)
	if broken {
		// Abort the response so the client sees a failure, never a
		// truncated body passed off as complete.
		panic(http.ErrAbortHandler)
	}
}

// noWorker answers a request no worker could take.
func (r *Router) noWorker(w http.ResponseWriter, res pickResult, model string, tried int, lastErr, waitErr error) {
	switch {
	case res == noSuchModel:
		r.reject(w, http.StatusNotFound, "invalid_request_error", "model_not_found",
			fmt.Sprintf("router: no worker serves model %q; GET /v1/models lists the models served", model))
	case res == allBusy && errors.Is(waitErr, errQueueTimeout):
		w.Header().Set("Retry-After", "1")
		r.reject(w, http.StatusServiceUnavailable, "server_error", "workers_busy",
			fmt.Sprintf("router: every worker serving model %q is at its max concurrency and none freed up within %s; retry later", model, r.cfg.QueueTimeout))
	case res == allBusy:
		w.Header().Set("Retry-After", "1")
		r.reject(w, http.StatusServiceUnavailable, "server_error", "workers_busy",
			fmt.Sprintf("router: every worker serving model %q is at its max concurrency; retry later", model))
	case lastErr != nil:
		r.reject(w, http.StatusBadGateway, "server_error", "worker_unreachable",
			fmt.Sprintf("router: could not reach a worker for model %q (tried %d): %v", model, tried, lastErr))
	default:
		w.Header().Set("Retry-After", "2")
		r.reject(w, http.StatusServiceUnavailable, "server_error", "no_healthy_worker",
			fmt.Sprintf("router: no healthy worker serves model %q right now (all failed their health checks); retry later", model))
	}
}

// reject writes an error the router itself produced and counts it.
func (r *Router) reject(w http.ResponseWriter, status int, typ, code, msg string) {
	r.metrics.rejected(code).Inc()
	openAIError(w, status, typ, code, msg)
}

func openAIError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSONResponse(w, status, inference.ErrorResponse{Error: inference.ErrorDetail{Message: msg, Type: typ, Code: &code}})
}

// isDialError reports whether err is a failure to connect (as opposed to
// a connection that broke), which means the worker is down.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// hopByHop reports whether a canonical header name is connection-specific
// (RFC 9110 section 7.6.1) and so must not be forwarded.
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// setWriteDeadline is http.ResponseController's SetWriteDeadline without
// allocating a controller when w (net/http's own writer) has the method.
func setWriteDeadline(w http.ResponseWriter, t time.Time) error {
	if d, ok := w.(interface{ SetWriteDeadline(time.Time) error }); ok {
		return d.SetWriteDeadline(t)
	}
	return http.NewResponseController(w).SetWriteDeadline(t)
}

// namedIn reports whether the header name k is one of the options of a
// Connection header (values conn), which makes it hop-by-hop too (RFC 9110
// section 7.6.1). Field names are case-insensitive; EqualFold compares
// them without allocating. Most messages carry no Connection header, so
// the common case is a nil conn and no work.
func namedIn(conn []string, k string) bool {
	for _, v := range conn {
		for opt := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(opt), k) {
				return true
			}
		}
	}
	return false
}

func isEventStream(ct []string) bool {
	return len(ct) > 0 && strings.HasPrefix(ct[0], "text/event-stream")
}
