package artifact

import (
	"encoding/binary"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeFiles writes name → content under dir, making parents.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type tensor struct {
	Dtype       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// safetensors builds a safetensors file: F32 tensors of the given shapes
// with real zero data behind the header.
func safetensors(t *testing.T, shapes map[string][]int64) string {
	t.Helper()
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var off int64
	for _, name := range slices.Sorted(maps.Keys(shapes)) {
		shape := shapes[name]
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		header[name] = tensor{"F32", shape, []int64{off, off + 4*n}}
		off += 4 * n
	}
	return rawSafetensors(t, header, off)
}

func rawSafetensors(t *testing.T, header any, dataBytes int64) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	binary.Write(&b, binary.LittleEndian, uint64(len(h)))
	b.Write(h)
	b.WriteString(strings.Repeat("\x00", int(dataBytes)))
	return b.String()
}

// toyModel is a 2-layer toy: [4,8], [8], [8,2] → 4·8 + 8 + 8·2 = 56 parameters.
func toyModel(t *testing.T) map[string]string {
	return map[string]string{
		"model.safetensors":     safetensors(t, map[string][]int64{"l1.weight": {4, 8}, "l1.bias": {8}, "l2.weight": {8, 2}}),
		"config.json":           `{"architectures": ["ToyForCausalLM"], "model_type": "toy"}`,
		"tokenizer_config.json": `{"chat_template": "{{ messages }}"}`,
		"sub/notes.txt":         "hello",
	}
}

func TestHashTreeStableAndSensitive(t *testing.T) {
	lim := DefaultLimits()
	base := t.TempDir()
	writeFiles(t, base, toyModel(t))
	a, err := HashTree(base, lim)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Files) != 4 || a.Files[0].Name != "config.json" || a.Files[2].Name != "sub/notes.txt" {
		t.Fatalf("files %+v", a.Files)
	}
	// Same content elsewhere, with a .git directory and hub metadata: same digest.
	other := t.TempDir()
	writeFiles(t, other, toyModel(t))
	writeFiles(t, other, map[string]string{".git/HEAD": "ref: main", ".cache/huggingface/x.lock": ""})
	b, err := HashTree(other, lim)
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest {
		t.Fatalf("same tree, different digests %s %s", a.Digest, b.Digest)
	}
	changes := map[string]func(dir string){
		"rename": func(dir string) {
			os.Rename(filepath.Join(dir, "sub/notes.txt"), filepath.Join(dir, "sub/notes2.txt"))
		},
		"content": func(dir string) { writeFiles(t, dir, map[string]string{"sub/notes.txt": "hellO"}) },
		"size":    func(dir string) { writeFiles(t, dir, map[string]string{"sub/notes.txt": "hello!"}) },
		"added":   func(dir string) { writeFiles(t, dir, map[string]string{"extra": ""}) },
		"nested .cache counts": func(dir string) {
			writeFiles(t, dir, map[string]string{"sub/.cache/x": ""})
		},
	}
	for name, change := range changes {
		dir := t.TempDir()
		writeFiles(t, dir, toyModel(t))
		change(dir)
		c, err := HashTree(dir, lim)
		if err != nil {
			t.Fatal(err)
		}
		if c.Digest == a.Digest {
			t.Errorf("%s: digest unchanged", name)
		}
	}
}

func TestHashTreeRefusesHostileTrees(t *testing.T) {
	lim := Limits{MaxFiles: 3, MaxBytes: 100, MaxNameLen: 20}
	cases := map[string]struct {
		setup func(dir string)
		want  string
	}{
		"symlink": {func(dir string) {
			os.Symlink("/etc/passwd", filepath.Join(dir, "weights.bin"))
		}, "symbolic link"},
		"too many files": {func(dir string) {
			writeFiles(t, dir, map[string]string{"a": "", "b": "", "c": "", "d": ""})
		}, "more than 3 files"},
		"too many bytes": {func(dir string) {
			writeFiles(t, dir, map[string]string{"a": strings.Repeat("x", 60), "b": strings.Repeat("x", 60)})
		}, "more than 100 bytes"},
		"long name": {func(dir string) {
			writeFiles(t, dir, map[string]string{"dir/" + strings.Repeat("n", 20): ""})
		}, "names are 1 to 20 bytes"},
		"control character": {func(dir string) {
			writeFiles(t, dir, map[string]string{"a\nb": ""})
		}, "control character"},
	}
	for name, c := range cases {
		dir := t.TempDir()
		c.setup(dir)
		_, err := HashTree(dir, lim)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
	for _, bad := range []string{"../x", "/abs", "a/../b", "a//b", "./a", ""} {
		if checkName(bad, 100) == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
}

func TestCommitmentBindsKeyAndTime(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	d := strings.Repeat("a", 64)
	c := Commitment(d, "key-1", at)
	if c != Commitment(d, "key-1", at.In(time.FixedZone("x", 3600))) {
		t.Fatal("the same instant in another zone commits differently")
	}
	for name, other := range map[string]string{
		"key":    Commitment(d, "key-2", at),
		"time":   Commitment(d, "key-1", at.Add(time.Nanosecond)),
		"digest": Commitment(strings.Repeat("b", 64), "key-1", at),
	} {
		if other == c {
			t.Errorf("commitment ignores the %s", name)
		}
	}
}
