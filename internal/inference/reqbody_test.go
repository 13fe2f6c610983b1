package inference

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// hookTransport answers every request with a canned chat completion after
// passing it to hook, which may keep, read or close its body.
type hookTransport struct{ hook func(*http.Request) }

func (h hookTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h.hook(req)
	body := `{"choices":[{"message":{"content":"A"}}]}`
	return &http.Response{StatusCode: http.StatusOK, ContentLength: int64(len(body)),
		Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

func askFor(t *testing.T, c *Client, prompt string) string {
	t.Helper()
	req := ChatRequest{Model: "m", Messages: []ChatMessage{{Role: "user", Content: prompt}}}
	want, err := encodeChat(nil, &req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChatAnswer(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	return string(want)
}

func readBody(t *testing.T, rc io.ReadCloser) string {
	t.Helper()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRequestBodyOutlivesDo: net/http may read and close a request body
// after Do returns, so the pooled buffer must not be reused before: a body
// read late, after later requests, is still its own (fails when the sender
// releases the buffer when Do returns), also after a stale second Close of
// an earlier body, and GetBody's reader, taken after the first is closed,
// is the same bytes (fails when the sender holds no reference).
func TestRequestBodyOutlivesDo(t *testing.T) {
	var kept []*http.Request
	keep := func(r *http.Request) { kept = append(kept, r) }
	c, err := New(Config{BaseURL: "http://model.invalid/v1", HTTPClient: &http.Client{Transport: hookTransport{keep}}})
	if err != nil {
		t.Fatal(err)
	}
	want1 := askFor(t, c, "first prompt, kept unread")
	want2 := askFor(t, c, "second prompt, also kept unread")
	if got := readBody(t, kept[0].Body); got != want1 {
		t.Fatalf("first body read late:\n%s\nwant\n%s", got, want1)
	}
	kept[0].Body.Close()
	askFor(t, c, "3rd") // no longer than the second: written over it
	if got := readBody(t, kept[1].Body); got != want2 {
		t.Fatalf("second body read late:\n%s\nwant\n%s", got, want2)
	}
	kept[1].Body.Close()

	// A stale second Close of the third body, after its buffer went back
	// to the pool and was taken by the fourth request.
	kept[2].Body.Close()
	want4 := askFor(t, c, "fourth prompt, kept unread")
	kept[2].Body.Close()
	askFor(t, c, "5th") // no longer than the fourth: written over it
	if got := readBody(t, kept[3].Body); got != want4 {
		t.Fatalf("fourth body after a stale Close:\n%s\nwant\n%s", got, want4)
	}
	kept[3].Body.Close()
	kept[4].Body.Close()

	// GetBody, as net/http's retries and redirects call it: after the
	// first body is closed, while the request is in flight.
	var again string
	c2, err := New(Config{BaseURL: "http://model.invalid/v1", HTTPClient: &http.Client{Transport: hookTransport{func(*http.Request) {}}}})
	if err != nil {
		t.Fatal(err)
	}
	c.http.Transport = hookTransport{func(r *http.Request) {
		r.Body.Close()
		askFor(t, c2, "in between")
		b, err := r.GetBody()
		if err != nil {
			t.Fatal(err)
		}
		again = readBody(t, b)
		b.Close()
	}}
	if want := askFor(t, c, "retried prompt"); again != want {
		t.Fatalf("GetBody read:\n%s\nwant\n%s", again, want)
	}
}

// TestBodyReaderClosesOnce: a repeated Close drops one reference, not two,
// so a stale Close cannot release a buffer reused since (fails without
// bodyReader's closed flag).
func TestBodyReaderClosesOnce(t *testing.T) {
	rb := newReqBody()
	rb.buf = append(rb.buf, "{}"...)
	r := rb.reader()
	r.Close()
	r.Close()
	if n := rb.refs.Load(); n != 1 {
		t.Fatalf("after two Closes of its one reader, %d references, want the sender's 1", n)
	}
	rb.release()
}
