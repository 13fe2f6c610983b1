package router

// This file holds the lean server's request parser (see server.go): the
// request line and header fields, read with bounds and parsed strictly,
// and the body readers (Content-Length and chunked). Anything ambiguous
// (the shapes request smuggling uses: obs-fold, whitespace before a colon,
// bare CR or LF, Content-Length beside Transfer-Encoding, repeated or
// malformed lengths, unknown transfer codings) is rejected with 400 or 501
// and the connection is closed, so the router and the worker behind it
// can never disagree about where one request ends.

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
)

const (
	// maxLineBytes bounds the request line and each header line; it is
	// the connection's read buffer size (nginx's default is 8 KiB too).
	maxLineBytes = 8 << 10
	// maxHeaderFields bounds the header fields of one request.
	maxHeaderFields = 128
	// maxHeaderBytes bounds the request head, as http.Server's default.
	maxHeaderBytes = http.DefaultMaxHeaderBytes
	// maxTrailerBytes bounds the trailer section of a chunked body.
	maxTrailerBytes = 4 << 10
)

// parseError is a request the server answers with status and closes.
type parseError struct {
	status int
	msg    string
}

func (e *parseError) Error() string { return e.msg }

func badRequest(msg string) error { return &parseError{status: http.StatusBadRequest, msg: msg} }

// leanRequest is one parsed request head.
type leanRequest struct {
	method, target string
	minor          int // 0 or 1: HTTP/1.0 or HTTP/1.1
	header         http.Header
	host           string
	contentLength  int64 // -1 for chunked
	chunked        bool
	close          bool // the connection closes after this request
	expectContinue bool // the client waits for 100 Continue before the body
}

// headReader reads request heads, reusing its scratch space across the
// requests of one connection.
type headReader struct {
	buf  []byte                   // the head's lines without their CRLFs
	ends [maxHeaderFields + 1]int // where the request line and each field end in buf
	vals []string                 // backs the header's value slices
}

// read reads and parses one request head from br into req.
func (h *headReader) read(br *bufio.Reader, req *leanRequest) error {
	h.buf = h.buf[:0]
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return &parseError{status: http.StatusRequestHeaderFieldsTooLarge, msg: "header line too long"}
		}
		if err != nil {
			if n == 0 && len(h.buf) == 0 && len(line) == 0 {
				return err // the connection ended between requests
			}
			return badRequest("incomplete request head")
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return badRequest("line not ended by CRLF")
		}
		line = line[:len(line)-2]
		if len(line) == 0 {
			if n == 0 {
				return badRequest("empty request line")
			}
			break
		}
		if n == len(h.ends) {
			return &parseError{status: http.StatusRequestHeaderFieldsTooLarge, msg: "too many header fields"}
		}
		if len(h.buf)+len(line) > maxHeaderBytes {
			return &parseError{status: http.StatusRequestHeaderFieldsTooLarge, msg: "request head too large"}
		}
		h.buf = append(h.buf, line...)
		h.ends[n] = len(h.buf)
		n++
	}
	return h.parse(n, req)
}

// parse checks the n lines in h.buf and fills req. Field names are
// canonicalised in place so that one string conversion holds every name
// and value of the request.
func (h *headReader) parse(n int, req *leanRequest) error {
	b := h.buf
	rl := b[:h.ends[0]]
	sp1 := indexByte(rl, ' ')
	if sp1 <= 0 || !isToken(rl[:sp1]) {
		return badRequest("malformed method")
	}
	rest := rl[sp1+1:]
	sp2 := indexByte(rest, ' ')
	if sp2 <= 0 || rest[0] != '/' {
		return badRequest("request target must be an absolute path")
	}
	for _, c := range rest[:sp2] {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return badRequest("invalid byte in request target")
		}
	}
	if !validEscapes(rest[:sp2]) {
		return badRequest("invalid URL escape in request target")
	}
	switch string(rest[sp2+1:]) {
	case "HTTP/1.1":
		req.minor = 1
	case "HTTP/1.0":
		req.minor = 0
	default:
		return &parseError{status: http.StatusHTTPVersionNotSupported, msg: "unsupported protocol version"}
	}
	for i := 1; i < n; i++ {
		f := b[h.ends[i-1]:h.ends[i]]
		colon := 0
		for colon < len(f) && tokenByte(f[colon]) {
			colon++
		}
		switch {
		case colon == len(f) || f[colon] != ':':
			return badRequest("malformed header field (obs-fold, whitespace before the colon or an invalid name)")
		case colon == 0:
			return badRequest("empty header field name")
		}
		canonicalize(f[:colon])
		for _, c := range f[colon+1:] {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return badRequest("invalid byte in header field value")
			}
		}
	}

	s := string(b)
	req.method = s[:sp1]
	req.target = s[sp1+1 : sp1+1+sp2]
	// The map and the values' backing array are the connection's, reused
	// by its next request: no handler keeps a request's header past it.
	if req.header == nil {
		req.header = make(http.Header, n)
	} else {
		clear(req.header)
	}
	h.vals = slices.Grow(h.vals[:0], n-1)[:n-1]
	vals := h.vals
	for i := 1; i < n; i++ {
		start, end := h.ends[i-1], h.ends[i]
		colon := start + indexByte(b[start:end], ':')
		k, v := s[start:colon], strings.Trim(s[colon+1:end], " \t")
		if vv := req.header[k]; vv != nil {
			req.header[k] = append(vv, v)
		} else {
			vals[i-1] = v
			req.header[k] = vals[i-1 : i : i]
		}
	}
	return req.framing()
}

// framing derives the host, body length and connection handling from the
// header fields, rejecting every ambiguous combination.
func (req *leanRequest) framing() error {
	h := req.header
	req.host, req.contentLength, req.chunked, req.expectContinue = "", 0, false, false
	switch hosts := h["Host"]; {
	case len(hosts) > 1:
		return badRequest("more than one Host field")
	case len(hosts) == 1:
		if !validHost(hosts[0]) {
			return badRequest("malformed Host field")
		}
		req.host = hosts[0]
		delete(h, "Host") // as net/http, the Host field moves to the request's Host
	case req.minor == 1:
		return badRequest("missing Host field")
	}
	cl := h["Content-Length"]
	if len(cl) > 1 {
		return badRequest("more than one Content-Length field")
	}
	if te, ok := h["Transfer-Encoding"]; ok {
		switch {
		case req.minor == 0:
			return badRequest("Transfer-Encoding in an HTTP/1.0 request")
		case len(cl) > 0:
			return badRequest("both Content-Length and Transfer-Encoding")
		case len(te) != 1 || !strings.EqualFold(te[0], "chunked"):
			return &parseError{status: http.StatusNotImplemented, msg: "unsupported Transfer-Encoding"}
		}
		req.chunked, req.contentLength = true, -1
		delete(h, "Transfer-Encoding") // as net/http, which records it in TransferEncoding
	} else if len(cl) == 1 {
		n, ok := parseLength(cl[0])
		if !ok {
			return badRequest("malformed Content-Length")
		}
		req.contentLength = n
	}
	keepAlive, closing := false, false
	for _, v := range h["Connection"] {
		for opt := range strings.SplitSeq(v, ",") {
			opt = strings.Trim(opt, " \t")
			closing = closing || strings.EqualFold(opt, "close")
			keepAlive = keepAlive || strings.EqualFold(opt, "keep-alive")
		}
	}
	req.close = closing || (req.minor == 0 && !keepAlive)
	if ex, ok := h["Expect"]; ok {
		if len(ex) != 1 || !strings.EqualFold(ex[0], "100-continue") {
			return &parseError{status: http.StatusExpectationFailed, msg: "unsupported Expect"}
		}
		// As net/http: HTTP/1.0 clients do not wait for 100 Continue.
		req.expectContinue = req.minor == 1 && req.contentLength != 0
	}
	return nil
}

// parseLength parses a Content-Length: decimal digits only, at most 18.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// validHost accepts the characters of a URI authority (RFC 3986): host,
// IP literal and port.
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(tokenByte(c) || c == ':' || c == '[' || c == ']' || c == '(' || c == ')' || c == ',' || c == ';' || c == '=' || c == '@') {
			return false
		}
	}
	return true
}

// tokenByte reports whether c may appear in a token (RFC 9110 section 5.6.2).
func tokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken[T string | []byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if !tokenByte(b[i]) {
			return false
		}
	}
	return len(b) > 0
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// canonicalize rewrites a valid field name in place as
// textproto.CanonicalMIMEHeaderKey would ("content-type" becomes
// "Content-Type").
func canonicalize(k []byte) {
	upper := true
	for i, c := range k {
		if upper && 'a' <= c && c <= 'z' {
			k[i] = c - 'a' + 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			k[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
}

// errBodyTooLarge is a request body over the server's bound.
var errBodyTooLarge = errors.New("request body too large")

// bodyReader reads one request body (Content-Length or chunked) from the
// connection, bounded by limit. It is reused across the requests of one
// connection.
type bodyReader struct {
	br      *bufio.Reader
	limit   int64  // most body bytes accepted
	left    int64  // bytes left of the body (Content-Length) or of the current chunk
	chunked bool   // chunked coding
	total   int64  // chunked: data bytes so far
	excess  int64  // chunked: framing bytes not paid for by data, as net/http counts them
	done    bool   // the body was read to its end
	err     error  // sticky
	started bool   // Read was called
	onStart func() // called before the first read (sends 100 Continue)
	onEOF   func() // called once the body is read to its end
}

func (b *bodyReader) reset(req *leanRequest, limit int64) {
	*b = bodyReader{br: b.br, limit: limit, onStart: b.onStart, onEOF: b.onEOF, chunked: req.chunked}
	if !req.chunked {
		b.left = req.contentLength
		b.done = req.contentLength == 0
	}
}

// Read implements io.Reader.
func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	if !b.started {
		b.started = true
		if !b.chunked && b.left > b.limit {
			b.err = errBodyTooLarge
			return 0, b.err
		}
		if b.onStart != nil {
			b.onStart()
		}
	}
	var n int
	if b.chunked {
		n, b.err = b.readChunked(p)
	} else {
		n, b.err = b.readFixed(p)
	}
	if b.done {
		if b.onEOF != nil {
			b.onEOF()
		}
		if n > 0 && b.err == io.EOF {
			b.err = nil
		}
	}
	return n, b.err
}

// Close implements io.Closer for the http.Request built for handlers.
func (b *bodyReader) Close() error { return nil }

func (b *bodyReader) readFixed(p []byte) (int, error) {
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if b.left == 0 {
		b.done = true
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *bodyReader) readChunked(p []byte) (int, error) {
	for b.left == 0 {
		size, err := b.chunkHeader()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := b.trailers(); err != nil {
				return 0, err
			}
			b.done = true
			return 0, io.EOF
		}
		if b.total+size > b.limit {
			return 0, errBodyTooLarge
		}
		b.total += size
		b.left = size
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	if err == nil && b.left == 0 {
		err = b.crlf()
	}
	return n, err
}

// chunkHeader reads a chunk-size line: hex digits and CRLF, no extensions.
func (b *bodyReader) chunkHeader() (int64, error) {
	line, err := b.br.ReadSlice('\n')
	if err != nil {
		return 0, badOrEOF(err, "malformed chunk size line")
	}
	b.excess += int64(len(line))
	if len(line) < 3 || len(line) > 18 || line[len(line)-2] != '\r' {
		return 0, badRequest("malformed chunk size line")
	}
	var n int64
	for _, c := range line[:len(line)-2] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, badRequest("malformed chunk size")
		}
		if n > 1<<59 {
			return 0, badRequest("chunk size too large")
		}
		n = n<<4 | int64(c)
	}
	// net/http refuses bodies with over 16 KiB of framing beyond 16 bytes
	// plus twice the data per chunk; refuse them too, so that whatever
	// this server accepts a net/http worker would accept.
	b.excess = max(b.excess+2-16-2*n, 0)
	if b.excess > 16<<10 {
		return 0, badRequest("chunked body with too much framing")
	}
	return n, nil
}

// crlf reads the CRLF that ends a chunk's data.
func (b *bodyReader) crlf() error {
	c1, err := b.br.ReadByte()
	if err == nil {
		var c2 byte
		if c2, err = b.br.ReadByte(); err == nil && (c1 != '\r' || c2 != '\n') {
			return badRequest("chunk data not followed by CRLF")
		}
	}
	return badOrEOF(err, "")
}

// trailers reads and discards the trailer section: field lines as strict as
// the head's, at most maxTrailerBytes in all, then the final CRLF.
func (b *bodyReader) trailers() error {
	size := 0
	for {
		line, err := b.br.ReadSlice('\n')
		if err != nil {
			return badOrEOF(err, "malformed trailer")
		}
		size += len(line)
		if size > maxTrailerBytes {
			return badRequest("trailer section too large")
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return badRequest("trailer line not ended by CRLF")
		}
		line = line[:len(line)-2]
		if len(line) == 0 {
			return nil
		}
		colon := 0
		for colon < len(line) && tokenByte(line[colon]) {
			colon++
		}
		if colon == 0 || colon == len(line) || line[colon] != ':' {
			return badRequest("malformed trailer field")
		}
		switch strings.ToLower(string(line[:colon])) {
		case "content-length", "transfer-encoding", "trailer", "host":
			return badRequest("forbidden trailer field")
		}
		for _, c := range line[colon+1:] {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return badRequest("invalid byte in trailer field")
			}
		}
	}
}

// badOrEOF maps a read error inside a chunked body: a cut connection is
// io.ErrUnexpectedEOF, a line too long is a bad request.
func badOrEOF(err error, msg string) error {
	switch {
	case err == nil:
		return nil
	case err == io.EOF:
		return io.ErrUnexpectedEOF
	case errors.Is(err, bufio.ErrBufferFull):
		return badRequest(msg)
	}
	return err
}

// validEscapes reports whether every '%' in target's path (before any '?')
// starts a two-digit hex escape, as url.ParseRequestURI, and so net/http,
// requires; the query is left to whoever reads it, as there.
func validEscapes(target []byte) bool {
	if q := indexByte(target, '?'); q >= 0 {
		target = target[:q]
	}
	for i := 0; i < len(target); i++ {
		if target[i] != '%' {
			continue
		}
		if i+2 >= len(target) || !isHex(target[i+1]) || !isHex(target[i+2]) {
			return false
		}
		i += 2
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
