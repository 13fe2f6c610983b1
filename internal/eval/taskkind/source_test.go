package taskkind

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

type siqaParquet struct {
	Context  string `parquet:"context"`
	Question string `parquet:"question"`
	AnswerA  string `parquet:"answerA"`
	AnswerB  string `parquet:"answerB"`
	AnswerC  string `parquet:"answerC"`
	Label    int32  `parquet:"label"`
}

// TestSentRowsMakeTheSameCompetitionFromCSVAndParquet: the example task's
// 30 CSV rows, and the same rows as Parquet (labels as integers), are sent
// as JSONL that the hub prepares into identical items; a bad JSONL row is
// reported with its file and line.
func TestSentRowsMakeTheSameCompetitionFromCSVAndParquet(t *testing.T) {
	const example = "../../../examples/task/"
	f, err := os.Open(example + "siqa-dev.csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var rows []siqaParquet
	for _, r := range recs[1:] {
		label, err := strconv.Atoi(r[5])
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, siqaParquet{r[0], r[1], r[2], r[3], r[4], int32(label)})
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pq := filepath.Join(dir, "siqa-dev.parquet")
	if err := os.WriteFile(pq, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, data := range []string{example + "siqa-dev.csv", pq} {
		src, sent, err := Source(example+"siqa.yaml", data, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(sent, []byte("\n")); n != 30 {
			t.Fatalf("%s: sent %d rows; want 30", data, n)
		}
		p, err := Task{}.Prepare(context.Background(), taskSpec(t, src, string(sent)))
		if err != nil || len(p.Items) != 30 {
			t.Fatalf("%s: %d items, %v; want 30", data, len(p.Items), err)
		}
		digests = append(digests, p.DatasetDigest)
	}
	if digests[0] != digests[1] {
		t.Fatalf("CSV and Parquet rows prepared different items: %v", digests)
	}

	bad := filepath.Join(dir, "rows.jsonl")
	if err := os.WriteFile(bad, []byte("{\"context\": \"c\"}\n\n[1, 2]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Source("social_iqa", bad, -1); err == nil || !strings.Contains(err.Error(), "rows.jsonl:3: a row must be a JSON object") {
		t.Fatalf("a bad JSONL row: %v; want it named by file and line", err)
	}
}
