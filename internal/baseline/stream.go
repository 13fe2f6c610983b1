package baseline

// This file holds what chat and text completions share: the bounds on n and
// stream_options, and the server-sent event writer.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"crucible/internal/inference"
)

// MaxChoices bounds a request's "n": each choice is generated and sent,
// so n multiplies the work one request asks for.
const MaxChoices = 16

// maxStreamDuration bounds how long one stream may take to write, so a
// client that stops reading cannot hold a handler (and its connection)
// for ever.
const maxStreamDuration = 5 * time.Minute

// streamAndN checks a request's n (1 when absent) and stream_options
// (only with stream, as OpenAI requires) and returns n; on a bad value it
// answers 400 and returns false.
func streamAndN(w http.ResponseWriter, n *int, stream bool, opts *inference.StreamOptions) (int, bool) {
	if opts != nil && !stream {
		writeParamError(w, "stream_options", "stream_options is only allowed when stream is true")
		return 0, false
	}
	if n == nil {
		return 1, true
	}
	if *n < 1 || *n > MaxChoices {
		writeParamError(w, "n", fmt.Sprintf("n must be between 1 and %d", MaxChoices))
		return 0, false
	}
	return *n, true
}

// events writes one server-sent event stream, flushing every event.
type events struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startEvents(w http.ResponseWriter) *events {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// Servers without deadlines (httptest recorders) just run unbounded.
	_ = rc.SetWriteDeadline(time.Now().Add(maxStreamDuration))
	return &events{w: w, rc: rc}
}

// send writes v as one event and reports whether the client still reads.
func (e *events) send(v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	if _, err := fmt.Fprintf(e.w, "data: %s\n\n", b); err != nil {
		return false
	}
	return e.rc.Flush() == nil
}

// done ends the stream the way OpenAI does.
func (e *events) done() {
	if _, err := fmt.Fprint(e.w, "data: [DONE]\n\n"); err == nil {
		_ = e.rc.Flush()
	}
}

// end lifts the write deadline so a kept-alive connection's next
// response is not cut by this stream's bound.
func (e *events) end() { _ = e.rc.SetWriteDeadline(time.Time{}) }
