// Package jsonl reads JSON Lines (https://jsonlines.org): one JSON value per
// line. It is the one reader behind every JSONL file Crucible takes from a
// user (datasets, persona sets, seed instructions, patch tasks and issues),
// so they share one size bound, one line count and one error wording. It
// reads from an io.Reader and does no other I/O.
//
// A line ends at "\n" or "\r\n"; the last line needs no line ending. A line
// that is empty or only white space is skipped but counted, so errors name
// the line an editor shows. Any other line holds exactly one JSON value.
// Checking a decoded value is the caller's: its error is reported with the
// line too.
package jsonl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Defaults for a zero Options field.
const (
	DefaultMaxLineBytes = 1 << 20
	DefaultMaxValues    = 1 << 20
)

// Options bound a read and choose how strictly a line decodes. The zero
// value is usable.
type Options struct {
	// MaxLineBytes bounds one line, without its line ending: memory stays
	// bounded whatever the input. 0 means DefaultMaxLineBytes.
	MaxLineBytes int
	// MaxValues bounds the values (non-blank lines). 0 means
	// DefaultMaxValues.
	MaxValues int
	// DisallowUnknownFields rejects an object key that matches no field of
	// the value's type, so a misspelt key is an error, not ignored.
	DisallowUnknownFields bool
}

// Error is an error on one line of the input.
type Error struct {
	Line int // 1-based
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *Error) Unwrap() error { return e.Err }

// Each decodes every non-blank line of r into a T and passes it to fn with
// its 1-based line number, in order. It stops at the first error: a read
// error, a line over the bounds, a line that is not exactly one JSON value
// of T, or fn's error; each is an *Error naming the line.
func Each[T any](r io.Reader, opt Options, fn func(line int, v T) error) error {
	maxLine := orDefault(opt.MaxLineBytes, DefaultMaxLineBytes)
	maxValues := orDefault(opt.MaxValues, DefaultMaxValues)
	// The buffer is small for small limits; a longer line grows buf only.
	br := bufio.NewReaderSize(r, min(maxLine+len("\r\n"), 64<<10))
	var buf []byte
	values := 0
	for line := 1; ; line++ {
		var err error
		buf, err = readLine(br, buf[:0], maxLine)
		if err != nil && err != io.EOF {
			return &Error{Line: line, Err: err}
		}
		if b := bytes.TrimSpace(buf); len(b) > 0 {
			if values == maxValues {
				return &Error{Line: line, Err: fmt.Errorf("more than %d values", maxValues)}
			}
			values++
			v, derr := decode[T](b, opt.DisallowUnknownFields)
			if derr == nil {
				derr = fn(line, v)
			}
			if derr != nil {
				return &Error{Line: line, Err: derr}
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// orDefault returns v, or def when v is not positive.
func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// readLine appends the next line of br to buf, without its line ending. It
// returns io.EOF with the last line (possibly empty), and an error without
// reading further once the line is over max bytes.
func readLine(br *bufio.Reader, buf []byte, max int) ([]byte, error) {
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > max+len("\r\n") {
			return nil, fmt.Errorf("longer than %d bytes", max)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err != nil && err != io.EOF:
			return nil, fmt.Errorf("read: %w", err)
		}
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		buf = bytes.TrimSuffix(buf, []byte("\r"))
		if len(buf) > max {
			return nil, fmt.Errorf("longer than %d bytes", max)
		}
		return buf, err
	}
}

// errTrailing is a line holding more after its JSON value.
var errTrailing = errors.New("more than one JSON value on the line")

// decode decodes b, one trimmed line, as exactly one JSON value of T.
func decode[T any](b []byte, strict bool) (T, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(b))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("invalid JSON: %w", err)
	}
	// b is trimmed, so anything after the value is not white space.
	if dec.InputOffset() != int64(len(b)) {
		return v, errTrailing
	}
	return v, nil
}
