package artifact

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFactsFromToyModel(t *testing.T) {
	dir := t.TempDir()
	files := toyModel(t)
	// A second shard is summed: 3·5 = 15 more parameters.
	files["model-00002.safetensors"] = safetensors(t, map[string][]int64{"head": {3, 5}, "scalar": {}})
	writeFiles(t, dir, files)
	tree, err := HashTree(dir, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	f, err := ReadFacts(dir, tree)
	if err != nil {
		t.Fatal(err)
	}
	// 56 + 15 + 1 (a scalar has one element).
	if f.Parameters != 72 || len(f.Shards) != 2 || f.Architecture != "ToyForCausalLM" || !f.ChatTemplate || f.Bytes != tree.Bytes {
		t.Fatalf("facts %+v", f)
	}
	if err := CheckCaps(f, Caps{MaxParameters: 72, MaxBytes: tree.Bytes}); err != nil {
		t.Fatal(err)
	}
	if err := CheckCaps(f, Caps{MaxParameters: 71}); err == nil || !strings.Contains(err.Error(), "72 parameters") {
		t.Fatalf("parameter cap: %v", err)
	}
	if err := CheckCaps(f, Caps{MaxBytes: tree.Bytes - 1}); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("byte cap: %v", err)
	}
	// No chat template, model_type only.
	writeFiles(t, dir, map[string]string{"tokenizer_config.json": `{"chat_template": null}`, "config.json": `{"model_type": "toy"}`})
	tree, _ = HashTree(dir, DefaultLimits())
	if f, err = ReadFacts(dir, tree); err != nil || f.ChatTemplate || f.Architecture != "toy" {
		t.Fatalf("facts %+v, %v", f, err)
	}
}

func TestSafetensorsRefusesHostileHeaders(t *testing.T) {
	lenOnly := func(n uint64) string {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], n)
		return string(b[:]) + "{}"
	}
	cases := map[string]struct {
		body string
		want string
	}{
		"header length 2^62":  {lenOnly(1 << 62), "header length 4611686018427387904"},
		"header past the end": {lenOnly(1000), "within the file"},
		"negative shape": {rawSafetensors(t, map[string]tensor{"w": {"F32", []int64{-4, -2}, []int64{0, 32}}}, 32),
			"negative dimension"},
		"overflowing shape": {rawSafetensors(t, map[string]tensor{"w": {"F32", []int64{1 << 40, 1 << 40}, []int64{0, 0}}}, 0),
			"overflows"},
		"wrapping shape": {rawSafetensors(t, map[string]tensor{"w": {"U8", []int64{1 << 32, 1 << 32}, []int64{0, 0}}}, 0),
			"overflows"},
		"shape larger than data": {rawSafetensors(t, map[string]tensor{"w": {"F32", []int64{1000, 1000}, []int64{0, 16}}}, 16),
			"does not match"},
		"offsets past the end": {rawSafetensors(t, map[string]tensor{"w": {"F32", []int64{4}, []int64{0, 16}}}, 8),
			"outside"},
		"unknown dtype": {rawSafetensors(t, map[string]tensor{"w": {"Q4", []int64{4}, []int64{0, 2}}}, 2),
			"unknown dtype"},
		"not an object": {lenOnly(2)[:8] + "[]", "header"},
	}
	for name, c := range cases {
		p := filepath.Join(t.TempDir(), "m.safetensors")
		if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		n, err := SafetensorsParameters(p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %d, %v; want an error with %q", name, n, err, c.want)
		}
	}
}
