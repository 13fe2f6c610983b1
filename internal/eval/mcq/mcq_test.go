package mcq_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"crucible/internal/eval"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/eval/runner"
	"crucible/internal/inference"
)

func TestParseReadsBothShapes(t *testing.T) {
	in := `{"context": "Tracy left.", "question": "Why?", "answerA": "a", "answerB": "b", "answerC": "c", "label": "3"}

{"id": "q2", "question": "2+2?", "choices": ["3", "4"], "answer": 1}
{"question": "Pick", "context": "ctx", "choices": ["x", "y", "z", "w"], "answer": 0, "extra": true}
{"context": "c", "question": "q", "answerA": "a", "answerB": "b", "answerC": "c", "label": 1}
`
	ds, err := mcq.Parse(strings.NewReader(in), "mix")
	if err != nil {
		t.Fatal(err)
	}
	want := []mcq.Item{
		{ID: "d638a1a3fa3564ed", Context: "Tracy left.", Question: "Why?", Choices: []string{"a", "b", "c"}, Answer: 2},
		{ID: "q2", Question: "2+2?", Choices: []string{"3", "4"}, Answer: 1},
		{ID: "802348fbc829ece2", Context: "ctx", Question: "Pick", Choices: []string{"x", "y", "z", "w"}, Answer: 0},
		{ID: "35e41e63a0348281", Context: "c", Question: "q", Choices: []string{"a", "b", "c"}, Answer: 0},
	}
	if len(ds.Items) != len(want) {
		t.Fatalf("got %d items, want %d", len(ds.Items), len(want))
	}
	for i, w := range want {
		g := ds.Items[i]
		if g.ID != w.ID || g.Context != w.Context || g.Question != w.Question || g.Answer != w.Answer || strings.Join(g.Choices, "|") != strings.Join(w.Choices, "|") {
			t.Errorf("item %d = %+v, want %+v", i, g, w)
		}
	}
	if ds.Name != "mix" || len(ds.Digest) != 64 {
		t.Fatalf("name %q digest %q", ds.Name, ds.Digest)
	}
	again, _ := mcq.Parse(strings.NewReader(in), "mix")
	changed, _ := mcq.Parse(strings.NewReader(strings.Replace(in, `"answer": 1`, `"answer": 0`, 1)), "mix")
	if again.Digest != ds.Digest || changed.Digest == ds.Digest {
		t.Fatal("the digest is not a function of the items")
	}
}

// An item without an id is named by its content: the same rows under
// another file name, or moved down by a blank line, keep their ids and the
// dataset its digest; a repeated question gets its occurrence; the answer
// (sealed) is not in the id.
func TestContentIDsDoNotDependOnTheFile(t *testing.T) {
	rows := `{"context": "Tracy left.", "question": "Why?", "answerA": "a", "answerB": "b", "answerC": "c", "label": "3"}
{"question": "Why?", "context": "Tracy left.", "choices": [" a", "b", "c "], "answer": 1}
{"question": "Pick", "choices": ["x", "y"], "answer": 0}
`
	a, err := mcq.Parse(strings.NewReader(rows), "siqa")
	if err != nil {
		t.Fatal(err)
	}
	b, err := mcq.Parse(strings.NewReader("\n"+rows), "copy-of-siqa")
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest {
		t.Errorf("the same rows under another name: digest %s, then %s", a.Digest, b.Digest)
	}
	first := mcq.ContentID(a.Items[0])
	want := []string{first, first + "-2", mcq.ContentID(a.Items[2])}
	for i, it := range a.Items {
		if it.ID != want[i] || b.Items[i].ID != want[i] || len(mcq.ContentID(it)) != mcq.ContentIDLen {
			t.Errorf("item %d: ids %q and %q, want %q", i, it.ID, b.Items[i].ID, want[i])
		}
	}
	if want[0] == want[2] {
		t.Error("different questions share a content id")
	}
	changed, err := mcq.Parse(strings.NewReader(strings.Replace(rows, `"Pick"`, `"Pick one"`, 1)), "siqa")
	if err != nil {
		t.Fatal(err)
	}
	if changed.Items[2].ID == a.Items[2].ID || changed.Items[0].ID != a.Items[0].ID || changed.Digest == a.Digest {
		t.Errorf("a changed question keeps its id %s or changes another's", changed.Items[2].ID)
	}
}

// A dataset that repeats one row k times (anyone creating a competition
// chooses its rows) is numbered in work linear in k: the allocations per
// row stay flat, where restarting the occurrence search at 2 for each
// repeat allocated about k/2 ids per row. Counting allocations, not time,
// keeps the test exact on a busy machine.
func TestParseNumbersRepeatsInLinearWork(t *testing.T) {
	const k = 2000
	row := `{"question": "q", "choices": ["a", "b"], "answer": 0}` + "\n"
	in := strings.Repeat(row, k)
	var ds *mcq.Dataset
	allocs := testing.AllocsPerRun(1, func() {
		var err error
		if ds, err = mcq.Parse(strings.NewReader(in), "same"); err != nil {
			t.Fatal(err)
		}
	})
	id := mcq.ContentID(ds.Items[0])
	if len(ds.Items) != k || ds.Items[0].ID != id || ds.Items[k-1].ID != fmt.Sprintf("%s-%d", id, k) {
		t.Fatalf("got %d items, first %q, last %q", len(ds.Items), ds.Items[0].ID, ds.Items[len(ds.Items)-1].ID)
	}
	if perRow := allocs / k; perRow > 100 {
		t.Errorf("%.0f allocations per row for %d repeats of one row: the numbering is not linear", perRow, k)
	}
}

func TestParseRejectsBadLines(t *testing.T) {
	good := `{"question": "q", "choices": ["a", "b"], "answer": 0}`
	tests := []struct {
		name, in, want string
	}{
		{"invalid JSON names its line", good + "\n{nope\n", "line 2: invalid JSON"},
		{"a label out of range names its line", good + "\n\n\n\n\n" + `{"context":"c","question":"q","answerA":"a","answerB":"b","answerC":"c","label":"4"}`, `line 6: label "4" out of range 1..3`},
		{"a missing SIQA answer is named", `{"context":"c","question":"q","answerA":"a","answerC":"c","label":"1"}`, `line 1: missing "answerB"`},
		{"a missing label is named", `{"context":"c","question":"q","answerA":"a","answerB":"b","answerC":"c"}`, `line 1: missing "label"`},
		{"a missing question is named", `{"choices":["a","b"],"answer":0}`, `line 1: missing "question"`},
		{"a missing answer is named", `{"question":"q","choices":["a","b"]}`, `line 1: missing "answer"`},
		{"one choice is too few", `{"question":"q","choices":["a"],"answer":0}`, "line 1: has 1 choices, want at least 2"},
		{"an answer out of range is named", `{"question":"q","choices":["a","b"],"answer":2}`, "line 1: answer 2 out of range 0..1"},
		{"an empty choice is rejected", `{"question":"q","choices":["a"," "],"answer":0}`, "line 1: choice 1 is empty"},
		{"a line of neither shape is rejected", `{"question":"q"}`, "line 1: has neither"},
		{"a duplicate id is rejected", `{"id":"x","question":"q","choices":["a","b"],"answer":0}` + "\n" + `{"id":"x","question":"q","choices":["a","b"],"answer":0}`, `line 2: duplicate id "x" (first on line 1)`},
		{"an empty dataset is rejected", "\n\n", "no items"},
		{"an overlong line is rejected", good + "\n" + strings.Repeat("x", mcq.MaxLineBytes+1), "line 2: longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := mcq.Parse(strings.NewReader(tt.in), "bad")
			if err == nil || !strings.Contains(err.Error(), tt.want) || ds != nil {
				t.Fatalf("Parse error = %v (dataset %v), want %q", err, ds, tt.want)
			}
		})
	}
}

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		name, text, wantErr string
	}{
		{"the default template is valid", mcq.DefaultTemplate, ""},
		{"a custom template is valid", "Q: {{.Question}}\n{{range .Choices}}({{.Letter}}) {{.Text}}\n{{end}}", ""},
		{"a syntax error is rejected", "{{.Question", "mcq prompt template"},
		{"an unknown field is rejected", "{{.Nope}}", "mcq prompt template"},
		{"a template without choices is rejected", "{{.Question}}", "does not render the choices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mcq.ParseTemplate(tt.text)
			if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("ParseTemplate error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaultTemplateRendersOneLinePerPart(t *testing.T) {
	it := mcq.Item{Context: "Tracy left.", Question: "Why?", Choices: []string{"x", "y", "z"}}
	got, err := mcq.Render(mcq.MustDefaultTemplate(), it)
	if err != nil {
		t.Fatal(err)
	}
	want := "Tracy left.\nWhy?\nA) x\nB) y\nC) z\nAnswer with the letter of the correct choice.\nAnswer:"
	if got != want {
		t.Fatalf("prompt =\n%s\nwant\n%s", got, want)
	}
	it.Context = ""
	if got, _ := mcq.Render(mcq.MustDefaultTemplate(), it); !strings.HasPrefix(got, "Why?\n") {
		t.Fatalf("without context the prompt starts %q", got)
	}
}

func siqaPath(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	// internal/eval/mcq → repo root → ../shared/data/siqa/dev.jsonl
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "data", "siqa", "dev.jsonl")
	if _, err := os.Stat(p); err != nil {
		p = "/work/shared/data/siqa/dev.jsonl"
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("Social IQa dev set not found (%v); put it at /work/shared/data/siqa/dev.jsonl to run this test", err)
	}
	return p
}

func TestSocialIQaDevParsesWithKnownLabelShares(t *testing.T) {
	ds, err := mcq.ParseFile(siqaPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Items) != 1954 {
		t.Fatalf("%d items, want 1954", len(ds.Items))
	}
	var counts [3]int
	for _, it := range ds.Items {
		counts[it.Answer]++
	}
	if counts != [3]int{643, 654, 657} {
		t.Fatalf("label counts %v, want [643 654 657]", counts)
	}
}

func TestEvaluatorScoresBaselinePoliciesAsExpected(t *testing.T) {
	full, err := mcq.ParseFile(siqaPath(t))
	if err != nil {
		t.Fatal(err)
	}
	ds := &mcq.Dataset{Name: "siqa-200", Items: full.Items[:200]}
	labelOne := 0
	for _, it := range ds.Items {
		if it.Answer == 0 {
			labelOne++
		}
	}
	h, err := mcqtest.New(mcqtest.Config{Key: ds, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client, err := inference.New(inference.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		model    string
		mode     mcq.Mode
		min, max float64
	}{
		{"oracle scores 1 generatively", "baseline-oracle", mcq.Generative, 1, 1},
		{"oracle scores 1 by log likelihood", "baseline-oracle", mcq.LogLikelihood, 1, 1},
		{"first scores the share of label 1 generatively", "baseline-first", mcq.Generative, float64(labelOne) / 200, float64(labelOne) / 200},
		{"first scores the share of label 1 by log likelihood", "baseline-first", mcq.LogLikelihood, float64(labelOne) / 200, float64(labelOne) / 200},
		{"random scores about a third", "baseline-random", mcq.Generative, 0.22, 0.45},
		{"random scores the same by log likelihood", "baseline-random", mcq.LogLikelihood, 0.22, 0.45},
	}
	scores := map[string]float64{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := mcq.NewEvaluator(mcq.Config{Client: client, Model: tt.model, Mode: tt.mode, Dataset: ds})
			if err != nil {
				t.Fatal(err)
			}
			results := make([]eval.Result, 0, ev.Len())
			err = runner.Run(context.Background(), ev, runner.Config{Concurrency: 8, Sink: func(r eval.Result) error {
				results = append(results, r)
				return nil
			}})
			if err != nil {
				t.Fatal(err)
			}
			s := eval.Summarize(results)
			if s.Items != 200 || s.Mean < tt.min-1e-9 || s.Mean > tt.max+1e-9 {
				t.Fatalf("summary %+v, want mean in [%v, %v]", s, tt.min, tt.max)
			}
			for _, r := range results {
				if r.Prediction == "" || r.Prompt == "" || r.Response == "" || r.PromptTokens == 0 || r.Ended.Before(r.Started) || len(r.Detail) == 0 {
					t.Fatalf("result %d is not fully recorded: %+v", r.Index, r)
				}
			}
			scores[tt.model+string(tt.mode)] = s.Mean
		})
	}
	if a, b := scores["baseline-random"+string(mcq.Generative)], scores["baseline-random"+string(mcq.LogLikelihood)]; math.Abs(a-b) > 1e-9 {
		t.Fatalf("random scored %v generatively and %v by log likelihood; the policy is per item, so want equal", a, b)
	}
}

func TestEvaluatorRecordsAnUnparseableAnswerAsWrong(t *testing.T) {
	ds, _ := mcq.Parse(strings.NewReader(`{"question":"q","choices":["a","b"],"answer":0}`), "x")
	h, _ := mcqtest.New(mcqtest.Config{Policies: []string{"first"}}) // no key: every prompt gets the fallback "A"
	srv := httptest.NewServer(h)
	defer srv.Close()
	client, _ := inference.New(inference.Config{BaseURL: srv.URL})
	tmpl, err := mcq.ParseTemplate("{{.Question}}\n{{range .Choices}}- {{.Text}}\n{{end}}")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := mcq.NewEvaluator(mcq.Config{Client: client, Model: "baseline-first", Template: tmpl, Dataset: ds})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ev.Evaluate(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Response != "A" || r.Prediction != "A" || !r.Correct || r.Score != 1 {
		t.Fatalf("result %+v, want the fallback A read as correct", r)
	}
}

func TestEvaluatorPropagatesAPermanentErrorForAnUnknownModel(t *testing.T) {
	ds, _ := mcq.Parse(strings.NewReader(`{"question":"q","choices":["a","b"],"answer":0}`), "x")
	h, _ := mcqtest.New(mcqtest.Config{Policies: []string{"first"}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	client, _ := inference.New(inference.Config{BaseURL: srv.URL})
	for _, mode := range []mcq.Mode{mcq.Generative, mcq.LogLikelihood} {
		ev, err := mcq.NewEvaluator(mcq.Config{Client: client, Model: "gpt-typo", Mode: mode, Dataset: ds})
		if err != nil {
			t.Fatal(err)
		}
		err = runner.Run(context.Background(), ev, runner.Config{Concurrency: 1})
		var se *inference.StatusError
		if !errors.As(err, &se) || se.StatusCode != 404 || !inference.IsPermanent(err) {
			t.Fatalf("%s: err = %v, want a permanent 404", mode, err)
		}
	}
}

func TestNewEvaluatorRejectsIncompleteConfigs(t *testing.T) {
	client, _ := inference.New(inference.Config{BaseURL: "http://127.0.0.1:1"})
	ds, _ := mcq.Parse(strings.NewReader(`{"question":"q","choices":["a","b"],"answer":0}`), "x")
	tests := []struct {
		name string
		cfg  mcq.Config
		want string
	}{
		{"a missing client is rejected", mcq.Config{Model: "m", Dataset: ds}, "Client"},
		{"a missing model is rejected", mcq.Config{Client: client, Dataset: ds}, "Model"},
		{"a missing dataset is rejected", mcq.Config{Client: client, Model: "m"}, "Dataset"},
		{"an unknown mode is rejected", mcq.Config{Client: client, Model: "m", Dataset: ds, Mode: "vibes"}, "unknown mode"},
		{"a negative token budget is rejected", mcq.Config{Client: client, Model: "m", Dataset: ds, MaxTokens: -5}, "MaxTokens -5 is outside 0..32768"},
		{"a token budget over the limit is rejected", mcq.Config{Client: client, Model: "m", Dataset: ds, MaxTokens: 2e9}, "MaxTokens 2000000000 is outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := mcq.NewEvaluator(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewEvaluator error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRenderDefaultMatchesTheTemplate(t *testing.T) {
	ds, err := mcq.ParseFile(filepath.Join("..", "..", "..", "..", "shared", "data", "siqa", "dev.jsonl"))
	if err != nil {
		t.Skip("Social IQa dev set not available:", err)
	}
	items := append(ds.Items,
		mcq.Item{Question: "no context?", Choices: []string{"a", "b"}},
		mcq.Item{Context: "{{.Context}}", Question: "\x00\xff\n", Choices: []string{"", "{{end}}", "é", "d", "e", "f", "g", "h"}},
		mcq.Item{},
	)
	for _, it := range items {
		checkRenderDefault(t, it)
	}
}

func FuzzRenderDefault(f *testing.F) {
	f.Add("ctx", "q?", "a\x00b\nc", 3)
	f.Add("", "", "", 0)
	f.Fuzz(func(t *testing.T, context, question, choices string, n int) {
		it := mcq.Item{Context: context, Question: question}
		for i := range min(max(n, 0), 30) {
			it.Choices = append(it.Choices, fmt.Sprint(choices, i))
		}
		checkRenderDefault(t, it)
	})
}

// checkRenderDefault fails when the hand-written default rendering differs
// from text/template executing DefaultTemplate.
func checkRenderDefault(t *testing.T, it mcq.Item) {
	t.Helper()
	want, err := mcq.Render(mcq.MustDefaultTemplate(), it)
	if err != nil {
		t.Fatal(err)
	}
	if got := mcq.RenderDefault(it); got != want {
		t.Fatalf("item %+v:\nfast %q\ntmpl %q", it, got, want)
	}
}
