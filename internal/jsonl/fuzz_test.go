package jsonl_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"crucible/internal/jsonl"
)

// FuzzEach feeds arbitrary bytes to the reader: it must never panic; an
// error names a line that exists; an accepted input yields one valid JSON
// value per non-blank line, which read back from their own JSONL give the
// same values.
func FuzzEach(f *testing.F) {
	for _, seed := range []string{
		`{"a":"x","n":1}`,
		"{\"a\":\"x\"}\r\n\r\n[1,2]\n\"s\"\nnull\n",
		"\n \t\n\u00a0\n",
		`{"n":1} {"n":2}`,
		`{"n":1}}`,
		"12x",
		"{nope",
		"\"\xff\"",
		`{"a":"x","b":true}`,
		strings.Repeat("x", 70),
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		opt := jsonl.Options{MaxLineBytes: 64, MaxValues: 8}
		vals, err := read[json.RawMessage](bytes.NewReader(data), opt)
		if err != nil {
			var le *jsonl.Error
			if !errors.As(err, &le) || le.Line < 1 || le.Line > lines {
				t.Fatalf("error %v names no line of %d", err, lines)
			}
			if vals != nil {
				t.Fatalf("values returned with the error %v", err)
			}
			return
		}
		nonBlank := 0
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				nonBlank++
			}
		}
		if len(vals) != nonBlank || len(vals) > opt.MaxValues {
			t.Fatalf("%d values from %d non-blank lines (limit %d)", len(vals), nonBlank, opt.MaxValues)
		}
		for _, v := range vals {
			if !json.Valid(v) {
				t.Fatalf("accepted invalid JSON %q", v)
			}
		}
		again, err := read[json.RawMessage](bytes.NewReader(bytes.Join(toBytes(vals), []byte("\n"))), opt)
		if err != nil || len(again) != len(vals) {
			t.Fatalf("reading the values back: %d values, %v", len(again), err)
		}
		for i := range vals {
			if !bytes.Equal(vals[i], again[i]) {
				t.Fatalf("value %d read back as %q, was %q", i, again[i], vals[i])
			}
		}
		// Decoding into a struct, strictly, fails with a line-numbered error too.
		type row struct {
			A string `json:"a"`
		}
		if _, err := read[row](bytes.NewReader(data), jsonl.Options{MaxLineBytes: 64, MaxValues: 8, DisallowUnknownFields: true}); err != nil {
			var le *jsonl.Error
			if !errors.As(err, &le) || le.Line < 1 || le.Line > lines {
				t.Fatalf("strict error %v names no line of %d", err, lines)
			}
		}
	})
}

func toBytes(vals []json.RawMessage) [][]byte {
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = v
	}
	return out
}
