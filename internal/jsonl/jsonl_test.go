package jsonl_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"crucible/internal/jsonl"
)

type row struct {
	A string `json:"a"`
	N int    `json:"n"`
}

// read collects the values Each passes, or returns its error.
func read[T any](r io.Reader, opt jsonl.Options) ([]T, error) {
	var out []T
	err := jsonl.Each(r, opt, func(_ int, v T) error {
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func TestEach(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		opt  jsonl.Options
		want []row
		err  string // substring of the error; "" for none
	}{
		{name: "one value per line", in: "{\"a\":\"x\"}\n{\"n\":2}\n", want: []row{{A: "x"}, {N: 2}}},
		{name: "the last line needs no line ending", in: "{\"a\":\"x\"}\n{\"n\":2}", want: []row{{A: "x"}, {N: 2}}},
		{name: "CRLF line endings", in: "{\"a\":\"x\"}\r\n\r\n{\"n\":2}\r\n", want: []row{{A: "x"}, {N: 2}}},
		{name: "blank and white-space lines are skipped", in: "\n  \t\n{\"n\":1}\n\u00a0\n", want: []row{{N: 1}}},
		{name: "an empty input has no values", in: "", want: nil},
		{name: "only blank lines have no values", in: "\n\n \n", want: nil},
		{name: "invalid JSON names its line", in: "{\"n\":1}\n\n{nope\n", err: "line 3: invalid JSON: invalid character"},
		{name: "a truncated value is invalid", in: "{\"n\":", err: "line 1: invalid JSON: unexpected EOF"},
		{name: "a wrong type is invalid", in: `{"n":"x"}`, err: "line 1: invalid JSON: json: cannot unmarshal"},
		{name: "two values on a line", in: `{"n":1} {"n":2}`, err: "line 1: more than one JSON value on the line"},
		{name: "trailing garbage", in: `{"n":1}x`, err: "line 1: more than one JSON value on the line"},
		{name: "a stray closing brace", in: "{\"n\":1}}\n", err: "line 1: more than one JSON value on the line"},
		{name: "unknown fields are ignored by default", in: `{"n":1,"b":2}`, want: []row{{N: 1}}},
		{name: "unknown fields are refused when asked", in: "\n" + `{"n":1,"b":2}`, opt: jsonl.Options{DisallowUnknownFields: true}, err: `line 2: invalid JSON: json: unknown field "b"`},
		{name: "a line at the limit", in: `{"a":"xx"}` + "\r\n", opt: jsonl.Options{MaxLineBytes: 10}, want: []row{{A: "xx"}}},
		{name: "a line over the limit", in: "{}\n" + `{"a":"xxx"}` + "\n", opt: jsonl.Options{MaxLineBytes: 10}, err: "line 2: longer than 10 bytes"},
		{name: "a blank line over the limit", in: strings.Repeat(" ", 11), opt: jsonl.Options{MaxLineBytes: 10}, err: "line 1: longer than 10 bytes"},
		{name: "a long line past the read buffer", in: "{\"a\":\"" + strings.Repeat("x", 200<<10) + "\"}", opt: jsonl.Options{MaxLineBytes: 1 << 20}, want: []row{{A: strings.Repeat("x", 200<<10)}}},
		{name: "the default line limit", in: strings.Repeat(" ", jsonl.DefaultMaxLineBytes+1), err: fmt.Sprintf("line 1: longer than %d bytes", jsonl.DefaultMaxLineBytes)},
		{name: "values at the limit", in: "{}\n\n{}\n", opt: jsonl.Options{MaxValues: 2}, want: []row{{}, {}}},
		{name: "values over the limit name the first line past it", in: "{}\n\n{}\n\n{}\n", opt: jsonl.Options{MaxValues: 2}, err: "line 5: more than 2 values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := read[row](strings.NewReader(tc.in), tc.opt)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				if got != nil {
					t.Fatalf("values %v returned with the error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEachCallerError(t *testing.T) {
	errOdd := errors.New("odd")
	var lines []int
	err := jsonl.Each(strings.NewReader("2\n\n4\n5\n6\n"), jsonl.Options{}, func(line int, n int) error {
		lines = append(lines, line)
		if n%2 == 1 {
			return errOdd
		}
		return nil
	})
	if err == nil || err.Error() != "line 4: odd" || !errors.Is(err, errOdd) {
		t.Fatalf("error %v, want line 4: odd wrapping errOdd", err)
	}
	var le *jsonl.Error
	if !errors.As(err, &le) || le.Line != 4 {
		t.Fatalf("error %v is not a *jsonl.Error of line 4", err)
	}
	if fmt.Sprint(lines) != "[1 3 4]" {
		t.Fatalf("fn saw lines %v, want [1 3 4]: it stops at the first error", lines)
	}
}

func TestReadError(t *testing.T) {
	errDisk := errors.New("disk")
	r := io.MultiReader(strings.NewReader("1\n2\n3"), iotest.ErrReader(errDisk))
	_, err := read[int](r, jsonl.Options{})
	if err == nil || err.Error() != "line 3: read: disk" || !errors.Is(err, errDisk) {
		t.Fatalf("error %v, want line 3: read: disk", err)
	}
}

// TestRawMessage: a json.RawMessage keeps each value's own bytes, which
// callers store, so it must not alias the reader's buffer.
func TestRawMessage(t *testing.T) {
	got, err := read[json.RawMessage](strings.NewReader(" \"a\\u00e9\" \n[1, 2]\n"), jsonl.Options{})
	if err != nil || len(got) != 2 || string(got[0]) != `"a\u00e9"` || string(got[1]) != "[1, 2]" {
		t.Fatalf("got %q, %v", got, err)
	}
}
