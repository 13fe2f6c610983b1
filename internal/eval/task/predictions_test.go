package task

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A predictions file is scored as live generations are (cut at until, then
// filtered); items without a line score 0 and are counted as missing.
func TestPredictionsScoreLikeLiveAnswers(t *testing.T) {
	c, items := loadTask(t, "testdata/gsm8k.yaml", 0)
	// Item 0 right; item 1 right only before the cut at "Question:"
	// (strict takes the first "#### N" of the cut text); item 4 wrong.
	file := `{"doc_id": 0, "response": "9 * 2 = $18 every day.\n#### 18"}` + "\n\n" +
		`{"doc_id": 1, "response": "2+1=3 bolts.\n#### 3\n\nQuestion: again?\nAnswer: #### 4"}` + "\r\n" +
		`{"doc_id": 4, "response": "#### 21"}`
	p, err := c.ReadPredictions("preds.jsonl", strings.NewReader(file), len(items))
	if err != nil {
		t.Fatal(err)
	}
	if m := p.Missing(len(items)); m != 7 {
		t.Errorf("missing %d, want 7", m)
	}
	rep := runEvaluator(t, c, NewPredictionsEvaluator(c, items, p))
	if rep.Items != 10 || rep.Score != 0.2 || rep.Metrics["exact_match,flexible-extract"].Value != 0.2 {
		t.Errorf("report %+v; want 2 of 10 right", rep)
	}
	if r := rep.Results[1]; r.Prediction != "3" || !r.Correct || !strings.Contains(r.Response, "Question:") {
		t.Errorf("item 1: %+v; want the raw response kept, its cut answer 3 scored right", r)
	}
	if r := rep.Results[5]; r.Score != 0 || r.Response != "" {
		t.Errorf("missing item 5: %+v; want 0", r)
	}
}

func TestPredictionsFileIsRefusedWithItsLine(t *testing.T) {
	c, items := loadTask(t, "testdata/gsm8k.yaml", 0)
	ok := `{"doc_id": 0, "response": "#### 18"}` + "\n"
	for _, tc := range []struct{ file, want string }{
		{ok + ok, `p.jsonl:2: doc_id 0 again (first on line 1)`},
		{ok + `{"doc_id": 10, "response": "x"}`, `p.jsonl:2: doc_id 10 is not an item: the task has 10 (doc_id 0 to 9)`},
		{`{"doc_id": -1, "response": "x"}`, `p.jsonl:1: doc_id -1 is not an item`},
		{"\n" + `{"response": "x"}`, `p.jsonl:2: doc_id is required`},
		{`{"doc_id": 3}`, `p.jsonl:1: response is required`},
		{`{"doc_id": 3, "response": "x", "answer": "y"}`, `p.jsonl:1: invalid JSON: json: unknown field "answer"`},
		{`{"doc_id": "3", "response": "x"}`, `p.jsonl:1: invalid JSON`},
		{ok + `{"doc_id": 1, "response": "` + strings.Repeat("a", MaxPredictionLineBytes) + `"}`, `p.jsonl:2: longer than 1048576 bytes`},
	} {
		if _, err := c.ReadPredictions("p.jsonl", strings.NewReader(tc.file), len(items)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60q: %v; want %q", tc.file, err, tc.want)
		}
	}

	// Per-choice log-likelihoods are not in a file of responses.
	siqa, err := Load("testdata/social_iqa.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := siqa.ReadPredictions("p.jsonl", strings.NewReader(ok), 5); err == nil ||
		!strings.Contains(err.Error(), "is multiple_choice: a predictions file scores generate_until tasks only") {
		t.Errorf("multiple_choice task: %v; want it refused", err)
	}

	// The size bound is checked before reading.
	big := filepath.Join(t.TempDir(), "big.jsonl")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, MaxPredictionsBytes+1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadPredictionsFile(big, len(items)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes, more than the %d allowed", MaxPredictionsBytes+1, MaxPredictionsBytes)) {
		t.Errorf("oversized file: %v", err)
	}
}
