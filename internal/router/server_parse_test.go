package router

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// parseAll runs the lean parser over raw: the head, then the body bounded
// by limit. It returns the request and body, or the error that refused it.
func parseAll(raw string, limit int64) (*leanRequest, []byte, error) {
	br := bufio.NewReaderSize(strings.NewReader(raw), maxLineBytes)
	var h headReader
	req := &leanRequest{}
	if err := h.read(br, req); err != nil {
		return nil, nil, err
	}
	b := bodyReader{br: br}
	b.reset(req, limit)
	body, err := io.ReadAll(&b)
	if err != nil {
		return nil, nil, err
	}
	return req, body, nil
}

// statusOf is the status the server answers err with (0: not a parse error).
func statusOf(err error) int {
	var pe *parseError
	if errors.As(err, &pe) {
		return pe.status
	}
	return 0
}

// Each case is one smuggling or bounds defence: removing it lets the case
// through, so the test fails.
func TestParseRejects(t *testing.T) {
	const ok = "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\n"
	long := strings.Repeat("a", maxLineBytes)
	many := strings.Repeat("X-A: 1\r\n", maxHeaderFields)
	cases := []struct {
		name, raw string
		status    int
	}{
		{"obs-fold", ok + "X-A: 1\r\n continued\r\n\r\n", 400},
		{"tab obs-fold", ok + "X-A: 1\r\n\tcontinued\r\n\r\n", 400},
		{"space before colon", ok + "Content-Length : 3\r\n\r\nabc", 400},
		{"invalid name byte", ok + "X(A): 1\r\n\r\n", 400},
		{"empty name", ok + ": 1\r\n\r\n", 400},
		{"bare LF ending a field", ok + "X-A: 1\nContent-Length: 3\r\n\r\nabc", 400},
		{"bare CR in a value", ok + "X-A: 1\rContent-Length: 3\r\n\r\nabc", 400},
		{"NUL in a value", ok + "X-A: a\x00b\r\n\r\n", 400},
		{"bare LF ending the request line", "POST / HTTP/1.1\nHost: r\r\n\r\n", 400},
		{"CL with TE", ok + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE with CL", ok + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400},
		{"two equal CLs", ok + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
		{"differing CLs", ok + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"CL list", ok + "Content-Length: 3, 3\r\n\r\nabc", 400},
		{"signed CL", ok + "Content-Length: +3\r\n\r\nabc", 400},
		{"hex CL", ok + "Content-Length: 0x3\r\n\r\nabc", 400},
		{"huge CL", ok + "Content-Length: 99999999999999999999\r\n\r\n", 400},
		{"TE gzip", ok + "Transfer-Encoding: gzip\r\n\r\n", 501},
		{"TE gzip, chunked", ok + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"TE chunked, chunked", ok + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 501},
		{"two TE fields", ok + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
		{"TE with junk", ok + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"HTTP/2.0", "POST / HTTP/2.0\r\nHost: r\r\n\r\n", 505},
		{"HTTP/0.9", "GET /\r\n\r\n", 400},
		{"lower-case version", "POST / http/1.1\r\nHost: r\r\n\r\n", 505},
		{"missing Host", "POST / HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"bad Host", "POST / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"double space in request line", "POST  / HTTP/1.1\r\nHost: r\r\n\r\n", 400},
		{"absolute-form target", "POST http://w/v1/chat/completions HTTP/1.1\r\nHost: r\r\n\r\n", 400},
		{"control byte in target", "POST /a\x01 HTTP/1.1\r\nHost: r\r\n\r\n", 400},
		{"fragment in target", "POST /a#b HTTP/1.1\r\nHost: r\r\n\r\n", 400},
		{"method with a slash", "PO/ST / HTTP/1.1\r\nHost: r\r\n\r\n", 400},
		{"Expect other than 100-continue", ok + "Expect: 200-ok\r\n\r\n", 417},
		{"line too long", ok + "X-A: " + long + "\r\n\r\n", 431},
		{"too many fields", ok + many + "\r\n", 431},
		{"chunk extension", ok + "Transfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk size with space", ok + "Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", 400},
		{"chunk size with bare LF", ok + "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400},
		{"chunk data without CRLF", ok + "Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 400},
		{"chunk size overflow", ok + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffff1\r\n", 400},
		{"trailer with CL", ok + "Transfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n", 400},
		{"obs-fold trailer", ok + "Transfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n b\r\n\r\n", 400},
		{"trailers too large", ok + "Transfer-Encoding: chunked\r\n\r\n0\r\n" + strings.Repeat("X-A: "+strings.Repeat("b", 1000)+"\r\n", 5) + "\r\n", 400},
		{"too much chunk framing", ok + "Transfer-Encoding: chunked\r\n\r\n" + strings.Repeat("0000000000000001\r\na\r\n", 9000) + "0\r\n\r\n", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := parseAll(c.raw, 1<<20)
			if got := statusOf(err); got != c.status {
				t.Errorf("status %d (err %v), want %d", got, err, c.status)
			}
		})
	}
}

func TestParseBodyBounds(t *testing.T) {
	const head = "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\n"
	// A Content-Length over the bound fails before any byte is read.
	br := bufio.NewReaderSize(strings.NewReader(head+"Content-Length: 11\r\n\r\n0123456789A"), maxLineBytes)
	var h headReader
	req := &leanRequest{}
	if err := h.read(br, req); err != nil {
		t.Fatal(err)
	}
	b := bodyReader{br: br}
	b.reset(req, 10)
	if n, err := b.Read(make([]byte, 64)); n != 0 || err != errBodyTooLarge || br.Buffered() != 11 {
		t.Errorf("over-long Content-Length: read %d, %v, %d bytes left buffered; want 0, errBodyTooLarge, 11", n, err, br.Buffered())
	}
	// A chunked body fails at the chunk that crosses the bound.
	if _, _, err := parseAll(head+"Transfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n6\r\n56789A\r\n0\r\n\r\n", 10); err != errBodyTooLarge {
		t.Errorf("over-long chunked body: %v, want errBodyTooLarge", err)
	}
	if _, body, err := parseAll(head+"Transfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\nX-T: 1\r\n\r\n", 10); err != nil || string(body) != "0123456789" {
		t.Errorf("chunked body at the bound: %q, %v", body, err)
	}
	// A body cut short is an error, not a shorter body.
	if _, _, err := parseAll(head+"Content-Length: 5\r\n\r\nab", 10); err != io.ErrUnexpectedEOF {
		t.Errorf("short body: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, _, err := parseAll(head+"Transfer-Encoding: chunked\r\n\r\n5\r\nab", 10); err != io.ErrUnexpectedEOF {
		t.Errorf("short chunk: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestParseAccepts(t *testing.T) {
	raw := "POST /v1/chat/completions HTTP/1.1\r\nhost: r:8080\r\ncontent-TYPE:  application/json \r\nX-Multi: a\r\nx-multi: b\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\n{}"
	req, body, err := parseAll(raw, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := http.Header{"Content-Type": {"application/json"}, "X-Multi": {"a", "b"}, "Connection": {"keep-alive, close"}, "Content-Length": {"2"}}
	if req.method != "POST" || req.target != "/v1/chat/completions" || req.host != "r:8080" || !req.close || req.contentLength != 2 ||
		string(body) != "{}" || !maps.EqualFunc(req.header, want, slices.Equal) {
		t.Errorf("parsed %+v, body %q", req, body)
	}
	req, _, err = parseAll("GET /healthz HTTP/1.0\r\n\r\n", 10)
	if err != nil || !req.close || req.minor != 0 {
		t.Errorf("HTTP/1.0 without keep-alive: %+v, %v; want close", req, err)
	}
	req, _, err = parseAll("GET /healthz HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 10)
	if err != nil || req.close {
		t.Errorf("HTTP/1.0 with keep-alive: %+v, %v; want kept", req, err)
	}
}

// FuzzParseRequest checks the lean parser against net/http's: whatever
// the lean parser accepts, http.ReadRequest accepts with the same method,
// target, Host, header fields and body.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\nContent-Length: 2\r\n\r\n{}",
		"POST /v1/embeddings HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: 1\r\n\r\n",
		"GET /v1/models?x=1 HTTP/1.0\r\nConnection: keep-alive\r\nx-a:  b \r\nx-A: c\r\n\r\n",
		"POST /v1/completions HTTP/1.1\r\nHost: [::1]:80\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
		"POST / HTTP/1.1\r\nHost: r\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: r\r\nX: 1\r\n y\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, body, err := parseAll(string(data), 1<<16)
		if err != nil {
			return
		}
		std, err := http.ReadRequest(bufio.NewReaderSize(bytes.NewReader(data), 1<<17))
		if err != nil {
			t.Fatalf("lean accepted what net/http refuses (%v): %q", err, data)
		}
		stdBody, err := io.ReadAll(std.Body)
		if err != nil {
			t.Fatalf("lean read a body net/http refuses (%v): %q", err, data)
		}
		if std.Method != req.method || std.RequestURI != req.target || std.Host != req.host {
			t.Fatalf("net/http %q %q %q, lean %q %q %q: %q", std.Method, std.RequestURI, std.Host, req.method, req.target, req.host, data)
		}
		if !maps.EqualFunc(std.Header, req.header, slices.Equal) {
			t.Fatalf("net/http header %q, lean %q: %q", std.Header, req.header, data)
		}
		if !bytes.Equal(stdBody, body) {
			t.Fatalf("net/http body %q, lean %q: %q", stdBody, body, data)
		}
	})
}
