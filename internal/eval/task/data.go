package task

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Row is a Doc with its position, "FILE:LINE", for messages.
type Row struct {
	Doc Doc
	Pos string
}

// Doc is one row of a data set: column name to value (string, int64,
// float64, bool, nil, or nested []any / map[string]any from JSON).
type Doc map[string]any

// Bounds on data files, so a hostile file cannot exhaust memory.
const (
	MaxDataBytes = 256 << 20 // one data file
	MaxLineBytes = 4 << 20   // one JSONL line or CSV record
	MaxRows      = 1_000_000 // rows of one file
	// MaxValues bounds the JSON values (objects, arrays and scalars) or
	// CSV fields of one file: each costs tens of bytes decoded, so a file
	// of short values ("[0,0,0…]", ",,,…") cannot decode to many times
	// its size.
	MaxValues = 8_000_000
)

// valuesBudget is MaxValues; a variable so a test can lower it.
var valuesBudget = MaxValues

// ReadFile reads the rows of a JSONL (.jsonl, .json with one object per
// line), CSV (.csv, with a header row) or Parquet (.parquet) file. Errors
// name the file and line (the row, for Parquet).
func ReadFile(path string) ([]Row, error) {
	f, size, err := openBounded(path, MaxDataBytes)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".json":
		return ReadJSONL(path, f)
	case ".csv":
		return ReadCSV(path, f)
	case ".parquet":
		return ReadParquet(path, f, size)
	}
	return nil, fmt.Errorf("%s: unknown data format (want .jsonl, .json, .csv or .parquet)", path)
}

// ReadJSONL reads one JSON object per line; blank lines are skipped.
func ReadJSONL(name string, r io.Reader) ([]Row, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLineBytes)
	var docs []Row
	line, values := 0, 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if len(docs) == MaxRows {
			return nil, fmt.Errorf("%s:%d: more than %d rows", name, line, MaxRows)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%s:%d: more than one JSON value on the line", name, line)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s:%d: a row must be a JSON object", name, line)
		}
		if values += countValues(obj); values > valuesBudget {
			return nil, fmt.Errorf("%s:%d: more than %d values", name, line, valuesBudget)
		}
		docs = append(docs, Row{Doc: Doc(numbers(obj).(map[string]any)), Pos: fmt.Sprintf("%s:%d", name, line)})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, line+1, MaxLineBytes)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return docs, nil
}

// countValues is the number of values in v, v included.
func countValues(v any) int {
	n := 1
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			n += countValues(x)
		}
	case []any:
		for _, x := range v {
			n += countValues(x)
		}
	}
	return n
}

// numbers turns json.Number into int64 when integral (as the datasets
// library types an integer column) and float64 otherwise, so templates
// print 3, not 3.0.
func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, x := range v {
			v[k] = numbers(x)
		}
	case []any:
		for k, x := range v {
			v[k] = numbers(x)
		}
	}
	return v
}

// ReadCSV reads a CSV file whose first record names the columns. Values
// stay strings: a template converts them (label|int) where needed.
func ReadCSV(name string, r io.Reader) ([]Row, error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 64<<10))
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s:1: header: %w", name, err)
	}
	var docs []Row
	values := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return docs, nil
		}
		if err != nil { // a csv.ParseError names the line
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0) // only a record read whole has positions
		if len(docs) == MaxRows {
			return nil, fmt.Errorf("%s:%d: more than %d rows", name, line, MaxRows)
		}
		if values += len(rec); values > valuesBudget {
			return nil, fmt.Errorf("%s:%d: more than %d fields", name, line, valuesBudget)
		}
		d := make(Doc, len(header))
		for k, col := range header {
			if len(rec[k]) > MaxLineBytes {
				return nil, fmt.Errorf("%s:%d: field %q longer than %d bytes", name, line, col, MaxLineBytes)
			}
			d[col] = rec[k]
		}
		docs = append(docs, Row{Doc: d, Pos: fmt.Sprintf("%s:%d", name, line)})
	}
}

// openBounded opens path for reading and returns its size, refusing a
// file over limit bytes before anything is read. The caller closes it.
func openBounded(path string, limit int64) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if st.Size() > limit {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %d bytes, more than the %d allowed", path, st.Size(), limit)
	}
	return f, st.Size(), nil
}
