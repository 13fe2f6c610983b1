package inference

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"
)

// reqBody holds a request's encoded body in a pooled buffer: an evaluation
// item's request is a few hundred bytes, allocated and collected per item
// otherwise. net/http may read and close a body after Do returns (a
// RoundTripper may close it from another goroutine), and may ask GetBody
// for another reader to retry or follow a redirect, so the buffer goes back
// to the pool only when the sender is done with it and every reader handed
// to net/http is closed.
type reqBody struct {
	buf     []byte
	refs    atomic.Int32
	getBody func() (io.ReadCloser, error) // made once: a method value allocates
}

// bodyReader is one reader of a reqBody's bytes, holding a reference to it
// until its first Close. Each is allocated afresh, never pooled, so that a
// late or repeated Close of an old one cannot release a reused buffer.
type bodyReader struct {
	bytes.Reader
	rb     *reqBody
	closed atomic.Bool
}

var reqBodies sync.Pool // *reqBody

// maxPooledBody bounds the buffers kept: a huge prompt's is left to the GC.
const maxPooledBody = 64 << 10

// newReqBody returns an empty reqBody, held by its caller until release.
func newReqBody() *reqBody {
	rb, _ := reqBodies.Get().(*reqBody)
	if rb == nil {
		rb = new(reqBody)
		rb.getBody = rb.another
	}
	rb.refs.Store(1)
	return rb
}

// reader returns a new reader of the body, a reference until it is closed.
func (rb *reqBody) reader() *bodyReader {
	rb.refs.Add(1)
	br := &bodyReader{rb: rb}
	br.Reset(rb.buf)
	return br
}

func (rb *reqBody) another() (io.ReadCloser, error) { return rb.reader(), nil }

// release drops the caller's reference.
func (rb *reqBody) release() {
	if rb.refs.Add(-1) == 0 && cap(rb.buf) <= maxPooledBody {
		rb.buf = rb.buf[:0]
		reqBodies.Put(rb)
	}
}

// Close implements io.Closer: the first Close drops the reader's reference.
func (br *bodyReader) Close() error {
	if br.closed.CompareAndSwap(false, true) {
		br.rb.release()
	}
	return nil
}
