package router

// This file holds the lean server's http.ResponseWriter. A response with a
// Content-Length (every relayed worker response that has one) goes to the
// connection's write buffer as it is written; one without is held until
// the handler returns, to be sent with its length, unless it outgrows
// pendingLimit or is flushed (a streamed event stream), in which case it is
// sent chunked (HTTP/1.0: until the connection closes).

import (
	"bufio"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// pendingLimit is the most body a response without Content-Length holds
// back to send with its length.
const pendingLimit = 4 << 10

// response is the http.ResponseWriter of one request; reused across the
// requests of a connection.
type response struct {
	c             *serverConn
	req           *leanRequest
	header        http.Header
	status        int
	wroteHeader   bool  // WriteHeader was called
	headSent      bool  // the head is in the write buffer
	noBody        bool  // HEAD, 1xx, 204 or 304
	chunking      bool  // the body is sent chunked
	contentLength int64 // declared by the handler; -1 if not
	written       int64 // body bytes accepted
	pending       []byte
	closeAfter    bool // the connection closes after this response
}

// reset readies w for req, reusing the header map of the connection's
// previous response (no handler keeps it past its request).
func (w *response) reset(req *leanRequest) {
	h := w.header
	if h == nil {
		h = make(http.Header)
	} else {
		clear(h)
	}
	*w = response{c: w.c, req: req, header: h, contentLength: -1, pending: w.pending[:0]}
}

// Header implements http.ResponseWriter.
func (w *response) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter.
func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("router: invalid WriteHeader code " + strconv.Itoa(code))
	}
	w.wroteHeader, w.status = true, code
	w.noBody = w.req.method == http.MethodHead || code < 200 || code == http.StatusNoContent || code == http.StatusNotModified
	if cl := w.header["Content-Length"]; len(cl) == 1 {
		if n, ok := parseLength(cl[0]); ok {
			w.contentLength = n
		}
	}
	if w.contentLength < 0 {
		delete(w.header, "Content-Length")
	}
}

// Write implements http.ResponseWriter.
func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.contentLength >= 0 && w.written+int64(len(p)) > w.contentLength {
		n, _ := w.Write(p[:w.contentLength-w.written])
		return n, http.ErrContentLength
	}
	if !w.headSent {
		if w.contentLength < 0 && len(w.pending)+len(p) <= pendingLimit {
			w.pending = append(w.pending, p...)
			w.written += int64(len(p))
			return len(p), nil
		}
		w.sendHead(false)
	}
	w.written += int64(len(p))
	if w.noBody || len(p) == 0 {
		return len(p), nil
	}
	return w.writeBody(p)
}

func (w *response) writeBody(p []byte) (int, error) {
	bw := w.c.bw
	if w.chunking {
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16))
		bw.WriteString("\r\n")
		n, err := bw.Write(p)
		bw.WriteString("\r\n")
		return n, err
	}
	return bw.Write(p)
}

// Flush implements http.Flusher.
func (w *response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(false)
	}
	w.c.bw.Flush()
}

// SetWriteDeadline bounds writes to the client, as
// http.ResponseController's does.
func (w *response) SetWriteDeadline(t time.Time) error {
	return w.c.nc.SetWriteDeadline(t)
}

// sendHead writes the status line and header fields, with the framing:
// the declared Content-Length, the whole body's length when the handler
// is done (final), else chunked.
func (w *response) sendHead(final bool) {
	w.headSent = true
	body := w.pending
	w.pending = w.pending[:0]
	req, bw := w.req, w.c.bw
	writeStatusLine(bw, w.status)
	for k, vv := range w.header {
		switch k {
		case "Connection", "Transfer-Encoding", "Content-Length":
			if k == "Connection" && namedIn(vv, "close") {
				w.closeAfter = true
			}
			continue
		}
		if !isToken(k) {
			continue // as net/http, an invalid field name is dropped
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeFieldValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
	if _, ok := w.header["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	bodyless := w.status < 200 || w.status == http.StatusNoContent || w.status == http.StatusNotModified
	switch {
	case bodyless:
	case w.contentLength >= 0:
		bw.Write(appendContentLength(bw.AvailableBuffer(), w.contentLength))
	case final && (len(body) > 0 || req.method != http.MethodHead):
		bw.Write(appendContentLength(bw.AvailableBuffer(), int64(len(body))))
	case w.noBody:
	case req.minor == 1:
		w.chunking = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	default:
		w.closeAfter = true // HTTP/1.0: the body ends with the connection
	}
	if req.close || w.c.srv.closing.Load() {
		w.closeAfter = true
	}
	if w.closeAfter {
		bw.WriteString("Connection: close\r\n")
	} else if req.minor == 0 {
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
	if len(body) > 0 && !w.noBody {
		w.writeBody(body)
	}
}

// finish completes the response once the handler returned and reports
// whether it reached the client whole.
func (w *response) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(true)
	} else if w.chunking {
		w.c.bw.WriteString("0\r\n\r\n")
	}
	if !w.noBody && w.contentLength >= 0 && w.written < w.contentLength {
		w.closeAfter = true // a short body: only closing tells the client
	}
	return w.c.bw.Flush() == nil
}

// writeStatusLine writes "HTTP/1.1 200 OK\r\n".
func writeStatusLine(bw *bufio.Writer, code int) {
	b := append(bw.AvailableBuffer(), "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\n"...)
	bw.Write(b)
}

func appendContentLength(b []byte, n int64) []byte {
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, "\r\n"...)
}

// writeFieldValue writes a header value with CR and LF made spaces, as
// net/http does, so a value can never end the field early.
func writeFieldValue(bw *bufio.Writer, v string) {
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			b := []byte(v)
			for j := i; j < len(b); j++ {
				if b[j] == '\r' || b[j] == '\n' {
					b[j] = ' '
				}
			}
			bw.Write(b)
			return
		}
	}
	bw.WriteString(v)
}

// dateCache holds the Date header value of the current second.
var dateCache atomic.Pointer[dateEntry]

type dateEntry struct {
	sec int64
	s   string
}

func httpDate() string {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.s
	}
	d := &dateEntry{sec: now.Unix(), s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.s
}
