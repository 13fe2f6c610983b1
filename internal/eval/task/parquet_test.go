package task

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

type siqaRow struct {
	Context  string   `parquet:"context"`
	Question string   `parquet:"question"`
	AnswerA  string   `parquet:"answerA"`
	AnswerB  string   `parquet:"answerB"`
	AnswerC  string   `parquet:"answerC"`
	Label    int32    `parquet:"label"`
	Score    float32  `parquet:"score"`
	Tags     []string `parquet:"tags,list"`
}

// Social IQa rows as Parquet (labels as integers, as the hub's copy has
// them) run through a task file with dataset_path: parquet.
func TestParquet(t *testing.T) {
	jsonl, err := ReadFile("testdata/siqa/dev.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var rows []siqaRow
	for _, r := range jsonl[:5] {
		d := r.Doc
		rows = append(rows, siqaRow{Context: d["context"].(string), Question: d["question"].(string),
			AnswerA: d["answerA"].(string), AnswerB: d["answerB"].(string), AnswerC: d["answerC"].(string),
			Label: int32(d["label"].(string)[0] - '0'), Score: 0.5, Tags: []string{"x"}})
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dev.parquet"), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(filepath.Join(dir, "dev.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[1].Doc["label"] != int64(1) || got[1].Doc["score"] != 0.5 || !strings.HasSuffix(got[4].Pos, "dev.parquet:row 5") {
		t.Fatalf("rows %+v", got)
	}
	if tags, ok := got[0].Doc["tags"].([]any); !ok || len(tags) != 1 || tags[0] != "x" {
		t.Errorf("list column %#v", got[0].Doc["tags"])
	}
	src, err := os.ReadFile("testdata/social_iqa.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src = bytes.Replace(src, []byte("dataset_path: json"), []byte("dataset_path: parquet"), 1)
	src = bytes.Replace(src, []byte("siqa/dev.jsonl"), []byte("dev.parquet"), 1)
	c, err := Parse(filepath.Join(dir, "t.yaml"), src)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.LoadData("", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	items, err := c.Items(d, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Load("testdata/social_iqa.yaml")
	wd, _ := want.LoadData("", "", 0)
	wantItems, _ := want.Items(wd, 0, 1)
	for k, it := range items {
		if it.Prompt != wantItems[k].Prompt || it.Gold != wantItems[k].Gold {
			t.Errorf("item %d: %q gold %d, want %q gold %d", k, it.Prompt, it.Gold, wantItems[k].Prompt, wantItems[k].Gold)
		}
	}
	// Damaged files fail with the file's name.
	b := buf.Bytes()
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"truncated": b[:len(b)/2],
		"no footer": b[:len(b)-8],
		"garbage":   bytes.Repeat([]byte("PAR1"), 20),
		"flipped":   flip(b),
	} {
		p := filepath.Join(dir, "bad.parquet")
		if err := os.WriteFile(p, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), "bad.parquet") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Randomly damaged files never crash the reader: parquet-go panics on some
// of them (a nil unsafe.Slice in its page decoders), which ReadParquet
// turns into an error.
func TestParquetDamaged(t *testing.T) {
	var buf bytes.Buffer
	rows := []siqaRow{{Context: "a", Question: "b", Label: 1, Tags: []string{"x"}}, {Context: "c", Label: 2}}
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	rng := rand.New(rand.NewPCG(1, 2))
	malformed := 0
	for range 600 {
		c := bytes.Clone(b)
		for range 1 + rng.IntN(4) {
			c[rng.IntN(len(c))] = byte(rng.IntN(256))
		}
		_, err := ReadParquet("d.parquet", bytes.NewReader(c), int64(len(c)))
		if err != nil && strings.Contains(err.Error(), "d.parquet: malformed Parquet") {
			malformed++
		}
	}
	if malformed == 0 {
		t.Error("no damaged file reached the decoders' panics")
	}
}

// flip corrupts the data pages, keeping the footer intact.
func flip(b []byte) []byte {
	out := bytes.Clone(b)
	for k := 8; k < len(out)/2; k += 7 {
		out[k] ^= 0x5a
	}
	return out
}
