package artifact

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ggufWriter builds GGUF files for the tests.
type ggufWriter struct{ bytes.Buffer }

func (w *ggufWriter) u32(v uint32) *ggufWriter { binary.Write(w, binary.LittleEndian, v); return w }
func (w *ggufWriter) u64(v uint64) *ggufWriter { binary.Write(w, binary.LittleEndian, v); return w }
func (w *ggufWriter) str(s string) *ggufWriter { w.u64(uint64(len(s))); w.WriteString(s); return w }

// header starts a version 3 file with the given counts.
func ggufHeader(tensors, kvs uint64) *ggufWriter {
	w := &ggufWriter{}
	w.WriteString("GGUF")
	return w.u32(3).u64(tensors).u64(kvs)
}

// tensorInfo appends a tensor info: name, dims, type F32, offset.
func (w *ggufWriter) tensorInfo(name string, dims ...uint64) *ggufWriter {
	w.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		w.u64(d)
	}
	return w.u32(0).u64(0)
}

func writeGGUF(t *testing.T, w *ggufWriter, pad int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(p, append(w.Bytes(), make([]byte, pad)...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadGGUF(t *testing.T) {
	w := ggufHeader(3, 5)
	w.str("general.architecture").u32(ggufString).str("llama")
	w.str("llama.block_count").u32(4).u32(2)
	w.str("tokenizer.ggml.tokens").u32(ggufArray).u32(ggufString).u64(3).str("a").str("b").str("c")
	w.str("tokenizer.ggml.scores").u32(ggufArray).u32(6).u64(3).u32(0).u32(0).u32(0)
	w.str("tokenizer.chat_template").u32(ggufString).str("{{ messages }}")
	w.tensorInfo("l1.weight", 8, 4).tensorInfo("l1.bias", 8).tensorInfo("l2.weight", 2, 8)
	p := writeGGUF(t, w, 224)
	info, err := ReadGGUF(p)
	if err != nil {
		t.Fatal(err)
	}
	if info != (GGUFInfo{Parameters: 56, Architecture: "llama", ChatTemplate: true}) {
		t.Fatalf("info %+v", info)
	}
	// In a tree without safetensors the GGUF counts.
	dir := filepath.Dir(p)
	tree, err := HashTree(dir, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	f, err := ReadFacts(dir, tree)
	if err != nil || f.Parameters != 56 || f.Architecture != "llama" || !f.ChatTemplate || len(f.GGUF) != 1 {
		t.Fatalf("facts %+v, %v", f, err)
	}
}

func TestReadGGUFRefusesHostileHeaders(t *testing.T) {
	cases := map[string]struct {
		w    *ggufWriter
		pad  int
		want string
	}{
		"bad magic":     {(&ggufWriter{}).u32(1).u32(3), 0, "bad magic"},
		"version 1":     {func() *ggufWriter { w := &ggufWriter{}; w.WriteString("GGUF"); return w.u32(1) }(), 0, "version 1"},
		"tensor count":  {ggufHeader(1<<60, 0), 0, "1152921504606846976 tensors"},
		"huge string":   {ggufHeader(0, 1).u64(1 << 62), 0, "string of 4611686018427387904 bytes"},
		"huge array":    {ggufHeader(0, 1).str("k").u32(ggufArray).u32(4).u64(1 << 61), 0, "over the header bound"},
		"short array":   {ggufHeader(0, 1).str("k").u32(ggufArray).u32(ggufString).u64(1 << 61).str("x"), 0, "ends early"},
		"deep arrays":   {ggufHeader(0, 1).str("k").u32(ggufArray).u32(ggufArray).u64(1).u32(ggufArray).u64(1).u32(ggufArray).u64(1), 0, "nested deeper"},
		"unknown type":  {ggufHeader(0, 1).str("k").u32(99), 0, "unknown value type 99"},
		"many dims":     {ggufHeader(1, 0).tensorInfo("w", 1, 1, 1, 1, 1), 0, "5 dimensions"},
		"overflow":      {ggufHeader(1, 0).tensorInfo("w", 1<<40, 1<<40), 0, "overflows"},
		"wrapping":      {ggufHeader(1, 0).tensorInfo("w", 1<<32, 1<<32), 0, "overflows"},
		"giant in tiny": {ggufHeader(1, 0).tensorInfo("w", 1<<20, 1<<20), 0, "parameters declared in"},
		"truncated":     {ggufHeader(2, 0).tensorInfo("w", 4), 0, "ends early"},
	}
	for name, c := range cases {
		_, err := ReadGGUF(writeGGUF(t, c.w, c.pad))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
}
