// Package inference owns Crucible's connection to model servers: the
// OpenAI-compatible wire types (types.go) and a lean HTTP client over
// net/http (client.go) used on the evaluation hot path. It classifies
// failures so callers can tell deterministic ones (a wrong model name, a bad
// request) from transient ones worth retrying.
//
// The package must never import the store, the job queue or any eval kind.
package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"crucible/internal/egress"
)

// MaxResponseBytes is the largest response body the client reads; a larger
// body fails with an error rather than exhausting memory.
const MaxResponseBytes = 8 << 20

// Config configures a Client.
type Config struct {
	// BaseURL is the server's API root, e.g. "http://127.0.0.1:8000/v1";
	// see NormalizeBaseURL for the accepted forms.
	BaseURL string
	// APIKey, when set, is sent as "Authorization: Bearer <APIKey>".
	APIKey string
	// HTTPClient overrides the default client, which reuses up to 256 idle
	// connections per host and applies no overall timeout (use contexts).
	HTTPClient *http.Client
}

// Client talks to one OpenAI-compatible server. It is safe for concurrent use.
type Client struct {
	base   string
	auth   string
	http   *http.Client
	chat   string
	compl  string
	models string
	bufs   sync.Pool // *bodyBuf for response bodies
}

// bodyBuf reads one response body; its LimitedReader is kept with it so
// that reading allocates nothing.
type bodyBuf struct {
	bytes.Buffer
	lr io.LimitedReader
}

// New returns a Client for cfg.BaseURL.
func New(cfg Config) (*Client, error) {
	base, err := NormalizeBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: NewTransport()}
	}
	c := &Client{
		base:   base,
		http:   hc,
		chat:   base + "/chat/completions",
		compl:  base + "/completions",
		models: base + "/models",
	}
	if cfg.APIKey != "" {
		c.auth = "Bearer " + cfg.APIKey
	}
	return c, nil
}

// NewTransport returns an http.Transport tuned for many concurrent requests
// to few hosts: it keeps up to 256 idle connections per host.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// BaseURL returns the normalised API root the client sends requests to.
func (c *Client) BaseURL() string { return c.base }

// NormalizeBaseURL turns a user-supplied server address into an API root
// without a trailing slash. "http://host:port/v1", "http://host:port/v1/" and
// "http://host:port" (to which "/v1" is appended) are accepted; other paths
// are kept as given. Schemes other than http and https and URLs without a
// host are rejected.
func NormalizeBaseURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", errors.New("inference: base URL is empty; want e.g. http://127.0.0.1:8000/v1")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("inference: base URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("inference: base URL %q: scheme must be http or https, e.g. http://127.0.0.1:8000/v1", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("inference: base URL %q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("inference: base URL %q must not have a query or fragment", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if u.Path == "" {
		u.Path = "/v1"
	}
	return u.String(), nil
}

// StatusError is a non-2xx response from the server.
type StatusError struct {
	// StatusCode is the HTTP status code.
	StatusCode int
	// Message is the server's error message, or the start of the body.
	Message string
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("inference: server returned %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// IsPermanent reports whether err is a deterministic failure that retrying
// will not fix: a 4xx response other than 408 (timeout) and 429 (rate
// limit), such as an unknown model or a malformed request. 5xx responses,
// 408, 429, connection errors, timeouts and cancellations are not permanent.
func IsPermanent(err error) bool {
	if egress.IsRefused(err) {
		return true // the address policy will refuse it every time
	}
	var se *StatusError
	if !errors.As(err, &se) {
		return false
	}
	c := se.StatusCode
	return c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests
}

// Chat sends a chat completion request. Streaming requests are rejected;
// the client reads whole responses only.
func (c *Client) Chat(ctx context.Context, req ChatRequest) (*ChatResponse, error) {
	if req.Stream {
		return nil, errors.New("inference: Chat does not support stream=true")
	}
	body, err := encodeChat(nil, &req)
	if err != nil {
		return nil, fmt.Errorf("inference: encode request: %w", err)
	}
	var resp ChatResponse
	if err := c.do(ctx, http.MethodPost, c.chat, body, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// ChatAnswer sends a chat completion request as Chat does and returns only
// what an evaluation reads of the response (see ChatAnswer). The usual
// bodies are decoded without building a ChatResponse, its choices and its
// id and model strings; every other body is decoded as Chat decodes it, so
// the two agree on every body, malformed ones included.
func (c *Client) ChatAnswer(ctx context.Context, req ChatRequest) (ChatAnswer, error) {
	if req.Stream {
		return ChatAnswer{}, errors.New("inference: ChatAnswer does not support stream=true")
	}
	body, err := encodeChat(nil, &req)
	if err != nil {
		return ChatAnswer{}, fmt.Errorf("inference: encode request: %w", err)
	}
	buf, err := c.send(ctx, http.MethodPost, c.chat, body)
	if err != nil {
		return ChatAnswer{}, err
	}
	defer c.release(buf)
	var a ChatAnswer
	if decodeAnswer(buf.Bytes(), &a) {
		return a, nil
	}
	return c.chatAnswerSlow(buf.Bytes())
}

// chatAnswerSlow decodes a body decodeAnswer gave up on as Chat does; apart,
// so that its ChatResponse is allocated only when it is needed.
func (c *Client) chatAnswerSlow(data []byte) (ChatAnswer, error) {
	var resp ChatResponse
	if err := decode(data, &resp, http.MethodPost, c.chat); err != nil {
		return ChatAnswer{}, err
	}
	return answerOf(&resp), nil
}

// Completion sends a text completion request (POST /v1/completions).
func (c *Client) Completion(ctx context.Context, req CompletionRequest) (*CompletionResponse, error) {
	body, err := encodeCompletion(nil, &req)
	if err != nil {
		return nil, fmt.Errorf("inference: encode request: %w", err)
	}
	var resp CompletionResponse
	if err := c.do(ctx, http.MethodPost, c.compl, body, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Models lists the models the server offers (GET /v1/models).
func (c *Client) Models(ctx context.Context) (*ModelList, error) {
	var resp ModelList
	if err := c.do(ctx, http.MethodGet, c.models, nil, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// do sends body (nil: none) and decodes the response into out.
func (c *Client) do(ctx context.Context, method, endpoint string, body []byte, out any) error {
	buf, err := c.send(ctx, method, endpoint, body)
	if err != nil {
		return err
	}
	defer c.release(buf)
	return decode(buf.Bytes(), out, method, endpoint)
}

// decode fills out from a response body. The fast path handles the usual
// chat and completion bodies; anything else, including every malformed
// body, goes to encoding/json.
func decode(data []byte, out any, method, endpoint string) error {
	if decodeFast(data, out) {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("inference: %s %s: decode response: %w", method, endpoint, err)
	}
	return nil
}

// send sends body (nil: none) and returns the 2xx response's body, at most
// MaxResponseBytes, in a pooled buffer the caller hands back to release
// once it no longer reads it.
func (c *Client) send(ctx context.Context, method, endpoint string, body []byte) (*bodyBuf, error) {
	var r io.Reader
	if body != nil {
		// A *bytes.Reader, which net/http knows to be in memory: it writes
		// the head and the body in one write. Any other reader has it flush
		// the head first, a second write and a second read at the server
		// (about 10 µs an item, bench/eval-throughput; TestRequestIsOneWrite).
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, r)
	if err != nil {
		return nil, fmt.Errorf("inference: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("inference: %s %s: %w", method, endpoint, err)
	}
	defer resp.Body.Close()
	buf, _ := c.bufs.Get().(*bodyBuf)
	if buf == nil {
		buf = new(bodyBuf)
	}
	if n := resp.ContentLength; n > 0 && n <= MaxResponseBytes {
		buf.Grow(int(n) + 1)
	}
	buf.lr = io.LimitedReader{R: resp.Body, N: MaxResponseBytes + 1}
	_, err = buf.ReadFrom(&buf.lr)
	data := buf.Bytes()
	switch {
	case err != nil:
		err = fmt.Errorf("inference: %s %s: read response: %w", method, endpoint, err)
	case len(data) > MaxResponseBytes:
		err = fmt.Errorf("inference: %s %s: response body exceeds %d bytes", method, endpoint, MaxResponseBytes)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		err = &StatusError{StatusCode: resp.StatusCode, Message: errorMessage(data)}
	}
	if err != nil {
		c.release(buf)
		return nil, err
	}
	return buf, nil
}

// release returns buf to the pool, unless it grew huge.
func (c *Client) release(buf *bodyBuf) {
	buf.lr = io.LimitedReader{}
	if buf.Cap() <= 1<<20 { // don't pin huge buffers
		buf.Reset()
		c.bufs.Put(buf)
	}
}

// errorMessage extracts a human-readable message from an error body in
// OpenAI's shape, or the common {"detail": ...}/{"message": ...} shapes,
// falling back to the first 512 bytes of the body.
func errorMessage(data []byte) string {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(data, &e) == nil {
		var inner struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case len(e.Error) > 0 && json.Unmarshal(e.Error, &inner) == nil && inner.Message != "":
			return inner.Message
		case len(e.Error) > 0 && json.Unmarshal(e.Error, &s) == nil && s != "":
			return s
		case e.Message != "":
			return e.Message
		case len(e.Detail) > 0:
			if json.Unmarshal(e.Detail, &s) == nil {
				return s
			}
			return string(e.Detail)
		}
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	if msg == "" {
		msg = "(empty body)"
	}
	return msg
}
