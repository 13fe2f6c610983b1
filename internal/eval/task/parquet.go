package task

import (
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/parquet-go/parquet-go"
)

// ReadParquet reads the rows of a Parquet file through parquet-go's schema
// reader: each row becomes a Doc of its columns. Positions are "FILE:row N"
// (1-based), Parquet having no lines.
func ReadParquet(name string, r io.ReaderAt, size int64) (rows []Row, err error) {
	// parquet-go reports some malformed files by panicking inside its
	// decoders; a data file must fail like any other bad file.
	defer func() {
		if p := recover(); p != nil {
			rows, err = nil, fmt.Errorf("%s: malformed Parquet: %v", name, p)
		}
	}()
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if f.NumRows() > MaxRows {
		return nil, fmt.Errorf("%s: %d rows, more than %d", name, f.NumRows(), MaxRows)
	}
	pr := parquet.NewGenericReader[any](f)
	defer pr.Close()
	buf := make([]any, 16)
	values := 0
	for {
		n, err := pr.Read(buf)
		for _, v := range buf[:n] {
			obj, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s:row %d: a row must be a group of columns, got %T", name, len(rows)+1, v)
			}
			if b := rowBytes(obj); b > MaxLineBytes {
				return nil, fmt.Errorf("%s:row %d: %d bytes of values, more than %d", name, len(rows)+1, b, MaxLineBytes)
			}
			if values += countValues(obj); values > valuesBudget {
				return nil, fmt.Errorf("%s:row %d: more than %d values", name, len(rows)+1, valuesBudget)
			}
			rows = append(rows, Row{Doc: Doc(parquetValue(obj).(map[string]any)), Pos: fmt.Sprintf("%s:row %d", name, len(rows)+1)})
		}
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s:row %d: %w", name, len(rows)+1, err)
		}
	}
}

// rowBytes is about the bytes a decoded row's values take: their strings'
// lengths, and 8 for any other value.
func rowBytes(v any) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case []byte:
		return len(v)
	case map[string]any:
		n := 0
		for k, x := range v {
			n += len(k) + rowBytes(x)
		}
		return n
	case []any:
		n := 0
		for _, x := range v {
			n += rowBytes(x)
		}
		return n
	}
	return 8
}

// parquetValue maps Parquet's Go values onto the JSON ones templates see:
// int64, float64, string, bool, nil, []any and map[string]any.
func parquetValue(v any) any {
	switch v := v.(type) {
	case int32:
		return int64(v)
	case uint32:
		return int64(v)
	case uint64:
		return float64(v)
	case float32:
		return float64(v)
	case []byte:
		return string(v)
	case *big.Float:
		f, _ := v.Float64()
		return f
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case map[string]any:
		for k, x := range v {
			v[k] = parquetValue(x)
		}
	case []any:
		for k, x := range v {
			v[k] = parquetValue(x)
		}
	}
	return v
}
