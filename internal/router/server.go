package router

// This file holds the lean HTTP/1.1 server `crucible router` serves the
// router with instead of net/http's: one goroutine per connection, pooled
// buffers, the strict parser of server_parse.go, and the three proxied
// endpoints handled without building an http.Request (every other path is
// served by Router.ServeHTTP through the same response writer). net/http's
// server was a third of the router's CPU per request (bench/README.md,
// "## router").

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves a Router over HTTP/1.1 (TLS is not offered: the router
// runs on a trusted network).
type Server struct {
	// Router handles the requests.
	Router *Router
	// ReadHeaderTimeout bounds reading a request head, from its first byte
	// (the connection's first request: from the accept) (default 10s).
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for a keep-alive connection's next
	// request; 0 waits as long as the client keeps it open, as
	// http.Server does without IdleTimeout and ReadTimeout.
	IdleTimeout time.Duration
	// Logger receives handler panics and accept errors; nil uses the
	// Router's logger.
	Logger *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	closing   atomic.Bool
}

// Connection states, for graceful shutdown.
const (
	connNew    int32 = iota // accepted, no request yet
	connActive              // reading a request or serving it
	connIdle                // waiting for the next request
)

// shutdownPoll is how often Shutdown looks for connections gone idle.
const shutdownPoll = 20 * time.Millisecond

// discardLimit is the most of an unread request body the server reads
// away to keep the connection; with more left it closes it.
const discardLimit = 256 << 10

// rstAvoidanceDelay is how long a connection closed with request bytes
// unread stays half-closed, so that the client reads the response before
// the kernel's reset discards it (as net/http does).
const rstAvoidanceDelay = 500 * time.Millisecond

var (
	readerPool sync.Pool // *bufio.Reader of maxLineBytes
	writerPool sync.Pool // *bufio.Writer of 4 KiB
)

// Serve accepts connections on ln and serves each on its own goroutine
// until Shutdown or Close; it then returns http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*serverConn]struct{}{}
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			if !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger().Warn("router: accept", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := s.newConn(nc)
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			nc.Close()
			return http.ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go c.serve()
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return s.Router.log
}

// Shutdown stops accepting, closes idle connections, lets active ones
// finish their request and closes them, and returns when none is left or,
// closing the rest, when ctx is done (with ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	t := time.NewTicker(shutdownPoll)
	defer t.Stop()
	for {
		if s.closeIdle() {
			return nil
		}
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.closeListeners()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
	return nil
}

func (s *Server) closeListeners() {
	s.closing.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.listeners {
		ln.Close()
	}
}

// closeIdle closes the connections not serving a request and reports
// whether none is left. A new connection counts as idle after
// ReadHeaderTimeout without a request, as net/http's does after 5s.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		st := c.state.Load()
		if st == connIdle || st == connNew && time.Since(c.accepted) > s.headerTimeout() {
			c.nc.Close()
		}
	}
	return len(s.conns) == 0
}

func (s *Server) headerTimeout() time.Duration {
	if s.ReadHeaderTimeout > 0 {
		return s.ReadHeaderTimeout
	}
	return 10 * time.Second
}

// serverConn is one client connection.
type serverConn struct {
	srv      *Server
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	state    atomic.Int32
	accepted time.Time
	ctx      context.Context // cancelled when the client goes away
	cancel   context.CancelFunc
	head     headReader
	req      leanRequest
	body     bodyReader
	w        response
	peeking  bool       // a background read is running (see startBackgroundRead)
	peeked   chan error // its result
}

func (s *Server) newConn(nc net.Conn) *serverConn {
	c := &serverConn{srv: s, nc: nc, accepted: time.Now(), peeked: make(chan error, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if br, ok := readerPool.Get().(*bufio.Reader); ok {
		br.Reset(nc)
		c.br = br
	} else {
		c.br = bufio.NewReaderSize(nc, maxLineBytes)
	}
	if bw, ok := writerPool.Get().(*bufio.Writer); ok {
		bw.Reset(nc)
		c.bw = bw
	} else {
		c.bw = bufio.NewWriterSize(nc, 4<<10)
	}
	c.body.br = c.br
	c.body.onStart = c.sendContinue
	c.body.onEOF = c.startBackgroundRead
	c.w.c = c
	return c
}

// serve reads and serves requests until the connection ends or one of
// them asks for (or needs) the connection to close.
func (c *serverConn) serve() {
	defer c.close()
	c.nc.SetReadDeadline(c.accepted.Add(c.srv.headerTimeout()))
	deadline := true // a read deadline is set on the connection
	for first := true; ; first = false {
		if !first {
			c.state.Store(connIdle)
			if c.srv.closing.Load() {
				return
			}
			if c.srv.IdleTimeout > 0 {
				c.nc.SetReadDeadline(time.Now().Add(c.srv.IdleTimeout))
				deadline = true
			}
			if err := c.waitFirstByte(); err != nil {
				return
			}
			// A head that arrived whole needs no more reads, so no
			// deadline: setting one costs a timer update per request.
			deadline = deadline || !headBuffered(c.br)
			if deadline {
				c.nc.SetReadDeadline(time.Now().Add(c.srv.headerTimeout()))
			}
		}
		c.state.Store(connActive)
		err := c.head.read(c.br, &c.req)
		if err != nil {
			var pe *parseError
			if errors.As(err, &pe) {
				c.fail(pe)
			}
			return
		}
		if deadline {
			c.nc.SetReadDeadline(time.Time{}) // the body is not bounded in time, as with http.Server
			deadline = false
		}
		if !c.serveRequest() {
			return
		}
	}
}

// headBuffered reports whether br holds a whole request head.
func headBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.Contains(b, []byte("\r\n\r\n"))
}

// fail answers a request the parser refused, and the connection closes.
func (c *serverConn) fail(pe *parseError) {
	writeStatusLine(c.bw, pe.status)
	c.bw.WriteString("Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n")
	msg := "router: bad request: " + pe.msg + "\n"
	c.bw.Write(appendContentLength(c.bw.AvailableBuffer(), int64(len(msg))))
	c.bw.WriteString("\r\n")
	c.bw.WriteString(msg)
	c.bw.Flush()
	c.lingerClose()
}

// serveRequest serves the parsed request and reports whether the
// connection stays open for another.
func (c *serverConn) serveRequest() (keep bool) {
	req := &c.req
	c.body.reset(req, c.srv.Router.cfg.MaxBodyBytes)
	c.w.reset(req)
	if c.body.done {
		c.startBackgroundRead()
	}
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				c.srv.logger().Error("router: panic serving "+req.method+" "+req.target, "panic", p, "stack", string(debug.Stack()))
			}
			// Send what was written, never an ending: the client sees a
			// cut response, not a complete one.
			c.bw.Flush()
			keep = false
		}
	}()
	if ep, ok := hotEndpoint(req.method, req.target); ok {
		c.srv.Router.proxyBody(c.ctx, &c.w, req.header, &c.body, req.contentLength, ep)
	} else if hr, err := c.httpRequest(); err != nil {
		openAIError(&c.w, http.StatusBadRequest, "invalid_request_error", "invalid_request", "router: malformed request target")
	} else {
		c.srv.Router.ServeHTTP(&c.w, hr)
	}
	if c.ctx.Err() != nil {
		return false // the client went away
	}
	discard := false
	if !c.body.done {
		// A small unread body is read away to keep the connection; any
		// other (too large, chunked, broken, or never asked for with
		// 100-continue) closes it.
		discard = c.body.err == nil && !c.body.chunked && c.body.left <= discardLimit && !(req.expectContinue && !c.body.started)
		if !discard {
			c.w.closeAfter = true
			defer c.lingerClose()
		}
	}
	if !c.w.finish() || c.w.closeAfter {
		return false
	}
	if discard {
		c.nc.SetReadDeadline(time.Now().Add(c.srv.headerTimeout()))
		if _, err := c.br.Discard(int(c.body.left)); err != nil {
			return false
		}
		c.nc.SetReadDeadline(time.Time{})
	}
	return true
}

// hotEndpoint recognises the proxied endpoints by their exact target.
func hotEndpoint(method, target string) (endpoint, bool) {
	if method != http.MethodPost {
		return 0, false
	}
	switch target {
	case "/v1/chat/completions":
		return chatEndpoint, true
	case "/v1/completions":
		return completionsEndpoint, true
	case "/v1/embeddings":
		return embeddingsEndpoint, true
	}
	return 0, false
}

// httpRequest builds the http.Request the router's other handlers take.
func (c *serverConn) httpRequest() (*http.Request, error) {
	req := &c.req
	u, err := url.ParseRequestURI(req.target)
	if err != nil {
		return nil, err
	}
	hr := &http.Request{
		Method: req.method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: req.minor,
		Header: req.header, Body: &c.body, ContentLength: req.contentLength, Close: req.close,
		Host: req.host, RemoteAddr: c.nc.RemoteAddr().String(), RequestURI: req.target,
	}
	if req.minor == 0 {
		hr.Proto = "HTTP/1.0"
	}
	if req.chunked {
		hr.TransferEncoding = []string{"chunked"}
	}
	return hr.WithContext(c.ctx), nil
}

// sendContinue answers Expect: 100-continue when the handler starts
// reading the body.
func (c *serverConn) sendContinue() {
	if c.req.expectContinue && !c.w.headSent {
		c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		c.bw.Flush()
	}
}

// lingerClose half-closes the connection and waits a little before the
// close, so a client still sending reads the response instead of a reset.
// It reads (and drops) what arrives until the client closes or the delay
// ends, bounded in time, not bytes: a client still sending a long body
// must get to read the response before the close resets the connection.
func (c *serverConn) lingerClose() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
		c.nc.SetReadDeadline(time.Now().Add(rstAvoidanceDelay))
		for {
			if _, err := c.br.Discard(maxLineBytes); err != nil {
				return
			}
		}
	}
}

func (c *serverConn) close() {
	c.cancel()
	c.nc.Close()
	if c.peeking {
		<-c.peeked // the background read ends with the connection; then br is free
	}
	s := c.srv
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.bw.Reset(nil)
	writerPool.Put(c.bw)
}

// startBackgroundRead starts waiting for the next request's first byte
// while the handler runs, once the request's body has been read: a client
// that goes away meanwhile (EOF or reset) cancels the request at once,
// which frees its worker slot, instead of when the response is written.
// net/http does this with a one-byte read it aborts (with a read deadline)
// when the handler returns; here the read is the next request's own, so
// it is never aborted and costs no extra system call: serve picks up its
// result with waitFirstByte. The connection's read buffer is the
// background goroutine's until then (the body reader no longer touches it
// once at its end).
func (c *serverConn) startBackgroundRead() {
	if c.peeking {
		return
	}
	c.peeking = true
	go func() {
		_, err := c.br.Peek(1)
		if err != nil {
			c.cancel()
		}
		c.peeked <- err
	}()
}

// waitFirstByte waits until the next request's first byte is buffered.
func (c *serverConn) waitFirstByte() error {
	if c.peeking {
		c.peeking = false
		return <-c.peeked
	}
	_, err := c.br.Peek(1)
	return err
}
