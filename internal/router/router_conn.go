package router

// This file holds the router's upstream client: a pool of HTTP/1.1
// keep-alive connections per worker, used synchronously by the goroutine
// serving the request. Compared with http.Transport it writes each request
// with one system call and hands no work to other goroutines, which is most
// of the proxy's cost per request.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxIdlePerWorker caps the idle keep-alive connections kept per worker.
const maxIdlePerWorker = 1024

// upstream is the connection pool of one worker.
type upstream struct {
	network string // "tcp"
	addr    string // host:port to dial
	host    string // Host header
	tls     *tls.Config
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)

	mu     sync.Mutex
	idle   []*pconn
	closed bool
}

// pconn is one keep-alive connection. br reads through lim, which bounds
// what a response head may take from the connection (see readFinalResponse).
type pconn struct {
	conn net.Conn
	lim  *io.LimitedReader
	br   *bufio.Reader
	bw   *bufio.Writer
}

func newUpstream(base *url.URL, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *upstream {
	u := &upstream{network: "tcp", host: base.Host, dial: dial}
	port := base.Port()
	if port == "" {
		port = "80"
		if base.Scheme == "https" {
			port = "443"
		}
	}
	u.addr = net.JoinHostPort(base.Hostname(), port)
	if base.Scheme == "https" {
		u.tls = &tls.Config{ServerName: base.Hostname(), NextProtos: []string{"http/1.1"}}
	}
	return u
}

// get returns an idle connection, or dials a new one before deadline (a
// dial cut by it wraps os.ErrDeadlineExceeded). reused says which.
func (u *upstream) get(ctx context.Context, deadline time.Time) (pc *pconn, reused bool, err error) {
	u.mu.Lock()
	if n := len(u.idle); n > 0 {
		pc = u.idle[n-1]
		u.idle[n-1] = nil
		u.idle = u.idle[:n-1]
		u.mu.Unlock()
		return pc, true, nil
	}
	u.mu.Unlock()
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	c, err := u.dial(ctx, u.network, u.addr)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("dial %s: %w (%w)", u.addr, os.ErrDeadlineExceeded, err)
		}
		return nil, false, err
	}
	if u.tls != nil {
		tc := tls.Client(c, u.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, false, err
		}
		c = tc
	}
	lim := &io.LimitedReader{R: c, N: math.MaxInt64}
	return &pconn{conn: c, lim: lim, br: bufio.NewReaderSize(lim, upstreamBufSize), bw: bufio.NewWriterSize(c, upstreamBufSize)}, false, nil
}

// put returns a healthy connection to the pool.
func (u *upstream) put(pc *pconn) {
	u.mu.Lock()
	if u.closed || len(u.idle) >= maxIdlePerWorker {
		u.mu.Unlock()
		pc.conn.Close()
		return
	}
	u.idle = append(u.idle, pc)
	u.mu.Unlock()
}

// close closes the idle connections and stops pooling.
func (u *upstream) close() {
	u.mu.Lock()
	idle := u.idle
	u.idle, u.closed = nil, true
	u.mu.Unlock()
	for _, pc := range idle {
		pc.conn.Close()
	}
}

// errNoResponse wraps failures that happened before any byte of a response
// arrived: the request can be retried elsewhere without the client noticing.
type errNoResponse struct{ err error }

func (e *errNoResponse) Error() string { return e.err.Error() }
func (e *errNoResponse) Unwrap() error { return e.err }

// aLongTimeAgo is a deadline in the past, used to interrupt blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// exchange is one request on one connection.
type exchange struct {
	pc     *pconn
	resp   *http.Response
	stop   func() bool // stops the cancellation hook
	broken bool        // the connection must not be reused
}

// roundTrip sends a POST with body to path and returns the response with
// its headers read. Connections reused from the pool that turn out to be
// closed by the worker are replaced transparently; a failure on a fresh
// connection is returned (as *errNoResponse when nothing was received).
//
// deadline bounds the whole exchange, including reading the body later: it
// is set on the connection, where it costs no context and timer of its
// own, and a failure it causes wraps os.ErrDeadlineExceeded. ctx is the
// client's: its cancellation interrupts the exchange at once.
func (u *upstream) roundTrip(ctx context.Context, deadline time.Time, path string, h http.Header, body []byte) (*exchange, error) {
	for {
		pc, reused, err := u.get(ctx, deadline)
		if err != nil {
			return nil, err
		}
		// The deadline goes first: the cancellation hook overrides it.
		pc.conn.SetDeadline(deadline)
		ex := &exchange{pc: pc}
		ex.stop = context.AfterFunc(ctx, func() { pc.conn.SetDeadline(aLongTimeAgo) })
		writeRequest(pc.bw, path, u.host, h, body)
		err = pc.bw.Flush()
		if err == nil {
			ex.resp, err = pc.readFinalResponse()
		}
		if err == nil {
			return ex, nil
		}
		ex.stop()
		pc.conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if reused && isStaleConn(err) {
			continue // the worker closed this idle connection; try another
		}
		return nil, &errNoResponse{err: fmt.Errorf("POST %s%s: %w", u.addr, path, err)}
	}
}

// maxInterim bounds the informational responses a worker may send before
// its answer (net/http's client allows 5 too).
const maxInterim = 5

// upstreamBufSize is the size of a worker connection's read and write
// buffers.
const upstreamBufSize = 16 << 10

// maxResponseHeadBytes bounds a worker's response heads (informational
// ones included), as net/http's Transport bounds them by default: a
// worker sending headers without end would otherwise grow the router's
// memory until it dies.
const maxResponseHeadBytes = 1 << 20

// readFinalResponse reads the worker's answer, skipping the informational
// (1xx) responses before it: taken for the answer, a 1xx would give the
// client an empty response and leave the real one on the pooled
// connection for the next client's request to read. The router never asks
// to switch protocols, so a 101 is a broken worker.
func (pc *pconn) readFinalResponse() (*http.Response, error) {
	// The bound counts what the buffer reads beyond the head too.
	pc.lim.N = maxResponseHeadBytes + upstreamBufSize
	defer func() { pc.lim.N = math.MaxInt64 }()
	for range maxInterim + 1 {
		resp, err := http.ReadResponse(pc.br, nil)
		if err != nil && pc.lim.N <= 0 {
			return nil, fmt.Errorf("the worker's response head exceeds %d bytes", maxResponseHeadBytes)
		}
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("the worker switched protocols unasked")
		case resp.StatusCode >= 200 || resp.StatusCode < 100:
			return resp, nil
		}
	}
	return nil, fmt.Errorf("more than %d informational responses before the answer", maxInterim)
}

// finish releases the exchange's connection: back to the pool if the body
// was read to the end and the worker keeps the connection alive.
func (u *upstream) finish(ex *exchange) {
	cancelled := !ex.stop()
	if ex.broken || cancelled || ex.resp.Close {
		ex.pc.conn.Close()
		ex.resp.Body.Close()
		return
	}
	ex.resp.Body.Close()
	u.put(ex.pc)
}

// isStaleConn reports whether err looks like a keep-alive connection the
// peer closed while it sat idle.
func isStaleConn(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) {
		s := op.Err.Error()
		return strings.Contains(s, "reset by peer") || strings.Contains(s, "broken pipe")
	}
	return false
}

// writeRequest writes a POST request with the end-to-end headers of h.
func writeRequest(bw *bufio.Writer, path, host string, h http.Header, body []byte) {
	bw.WriteString("POST ")
	bw.WriteString(path)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	conn := h["Connection"]
	for k, vv := range h {
		if hopByHop(k) || k == "Content-Length" || k == "Host" || k == "Expect" || namedIn(conn, k) {
			continue
		}
		for _, v := range vv {
			// The server already rejected header values with CR or LF.
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("Content-Length: ")
	// Appending to the writer's free space saves a scratch allocation.
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(body)), 10))
	bw.WriteString("\r\n\r\n")
	bw.Write(body)
}
