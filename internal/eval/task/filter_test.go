package task

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestFilters(t *testing.T) {
	re := func(p string, g int) Step {
		return Step{Func: "regex", Regex: regexp.MustCompile(p), GroupSelect: g, Fallback: DefaultFallback}
	}
	cases := []struct {
		name  string
		steps []Step
		resps []string
		want  string
	}{
		{"whole match without groups", []Step{re(`[0-9]+`, 0)}, []string{"a 12 b 34"}, "12"},
		{"last match", []Step{re(`[0-9]+`, -1)}, []string{"a 12 b 34"}, "34"},
		{"second from the end", []Step{re(`[0-9]+`, -2)}, []string{"1 2 3"}, "2"},
		{"one group", []Step{re(`#### (\-?[0-9\.\,]+)`, 0)}, []string{"so\n#### -1,000"}, "-1,000"},
		{"first non-empty of several groups", []Step{re(`(-?[$0-9.,]{2,})|(-?[0-9]+)`, -1)}, []string{"12 then 7"}, "7"},
		{"no match", []Step{re(`[0-9]+`, 0)}, []string{"none"}, "[invalid]"},
		{"out of range", []Step{re(`[0-9]+`, 3)}, []string{"1 2"}, "[invalid]"},
		{"custom fallback", []Step{{Func: "regex", Regex: regexp.MustCompile(`x`), Fallback: "?"}}, []string{"y"}, "?"},
		{"match is stripped", []Step{re(`A: (.*)`, 0)}, []string{"A:  yes \n"}, "yes"},
		{"lowercase", []Step{{Func: "lowercase"}}, []string{"YeS"}, "yes"},
		{"uppercase", []Step{{Func: "uppercase"}}, []string{"YeS"}, "YES"},
		{"strip", []Step{{Func: "strip"}}, []string{" \n yes\t"}, "yes"},
		{"remove_whitespace", []Step{{Func: "remove_whitespace"}}, []string{"  yes "}, "yes "},
		{"take_first", []Step{{Func: "take_first"}}, []string{"a", "b"}, "a"},
		{"majority", []Step{re(`[0-9]+`, -1), {Func: "majority_vote"}, {Func: "take_first"}}, []string{"is 3", "is 4", "so 4", "3?"}, "3"},
		{"majority tie goes to the first seen", []Step{{Func: "majority_vote"}}, []string{"b", "a", "a", "b"}, "b"},
		{"majority of a clear winner", []Step{{Func: "majority_vote"}}, []string{"b", "a", "a"}, "a"},
		{"no responses", []Step{{Func: "majority_vote"}}, nil, ""},
	}
	for _, c := range cases {
		if got := (Pipeline{Name: c.name, Steps: c.steps}).Apply(c.resps); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestExactMatch(t *testing.T) {
	gsm := Metric{Name: "exact_match", IgnoreCase: true, RegexesToIgnore: []*regexp.Regexp{
		regexp.MustCompile(","), regexp.MustCompile(`\$`), regexp.MustCompile(`(?s).*#### `), regexp.MustCompile(`\.$`)}}
	cases := []struct {
		m         Metric
		pred, ref string
		want      bool
	}{
		{gsm, "1,000", "so\n#### 1000", true},
		{gsm, "$18", "work\n#### 18", true},
		{gsm, "[invalid]", "#### 18", false},
		{gsm, "18.", "#### 18", true},
		{gsm, "18.0", "#### 18", false},
		{Metric{}, "Yes", "yes", false},
		{Metric{IgnoreCase: true}, "Yes", "yes", true},
		{Metric{IgnorePunctuation: true}, "it's, ok!", "its ok", true},
		{Metric{IgnorePunctuation: true}, "café", "cafe", false},
	}
	for _, c := range cases {
		if got := c.m.ExactMatch(c.pred, c.ref); got != c.want {
			t.Errorf("%+v: %q vs %q = %v", c.m, c.pred, c.ref, got)
		}
	}
}

// repeats sends one generation request per repeat; majority_vote picks.
func TestRepeats(t *testing.T) {
	c, err := Parse("r.yaml", []byte(`task: r
dataset_path: json
dataset_kwargs: {data_files: {test: gsm8k/test.jsonl}}
output_type: generate_until
test_split: test
doc_to_text: "Question: {{question}}\nAnswer:"
doc_to_target: "{{answer.split('#### ')[-1]}}"
repeats: 3
generation_kwargs: {until: "\n\n", max_gen_toks: 64, temperature: 0.7, do_sample: true}
filter_list:
  - name: maj
    filter:
      - {function: regex, regex_pattern: "The answer is (\\-?[0-9]+)"}
      - {function: majority_vote}
      - {function: take_first}
`))
	if err != nil {
		t.Fatal(err)
	}
	items := itemsOf(t, c, "testdata")
	r := items[0].Requests
	if len(r) != 3 || r[0].MaxGenToks != 64 || r[0].Temperature != 0.7 || !r[0].DoSample || r[0].Until[0] != "\n\n" {
		t.Fatalf("requests %+v", r)
	}
	if items[0].Target != "18" {
		t.Fatalf("target %q", items[0].Target)
	}
	s := c.ScoreGen(items[0], []string{"The answer is 18", "The answer is 16", "The answer is 18"})
	if s["exact_match,maj"] != 1 {
		t.Errorf("majority of 18, 16, 18: %v", s)
	}
}

func itemsOf(t *testing.T, c *Config, dir string) []Item {
	t.Helper()
	for split, files := range c.DataFiles {
		for k, f := range files {
			c.DataFiles[split][k] = filepath.Join(dir, f)
		}
	}
	d, err := c.LoadData("", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	items, err := c.Items(d, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func TestReadData(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rows, err := ReadFile(write("a.csv", "question,label\n\"Why, then?\",2\nok,1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Doc["question"] != "Why, then?" || rows[1].Doc["label"] != "1" || !strings.HasSuffix(rows[1].Pos, "a.csv:3") {
		t.Errorf("csv rows %+v", rows)
	}
	rows, err = ReadFile(write("a.jsonl", "{\"n\": 3, \"f\": 2.5, \"l\": [1, \"x\"]}\n\n{\"n\": -1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].Doc["n"] != int64(3) || rows[0].Doc["f"] != 2.5 || rows[0].Doc["l"].([]any)[0] != int64(1) || !strings.HasSuffix(rows[1].Pos, "a.jsonl:3") {
		t.Errorf("jsonl rows %+v", rows)
	}
	for name, body := range map[string]string{
		"bad.jsonl":   "{\"a\": 1}\n{\"a\": \n",
		"arr.jsonl":   "{}\n[1]\n",
		"two.jsonl":   "{}\n{} {}\n",
		"long.jsonl":  "{}\n\"" + strings.Repeat("x", MaxLineBytes) + "\"\n",
		"short.csv":   "a,b\n1,2\n3\n",
		"x.txt":       "hello",
		"p.parquet":   "PAR1",
		"header.csv":  "",
		"missing.csv": "",
	} {
		p := write(name, body)
		if name == "missing.csv" {
			p = filepath.Join(dir, "nothere.csv")
		}
		if _, err := ReadFile(p); err == nil {
			t.Errorf("%s read", name)
		} else if strings.HasSuffix(name, "jsonl") && !strings.Contains(err.Error(), name+":2:") {
			t.Errorf("%s: %v, want its line 2", name, err)
		}
	}
	// A bad row fails the whole import with its position.
	c, err := Parse(filepath.Join(dir, "t.yaml"), []byte(strings.Replace(minimalMC, "doc_to_target: 0", `doc_to_target: "{{label}}"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	write("rows.jsonl", "{\"q\": \"a\", \"label\": \"yes\"}\n{\"q\": \"b\", \"label\": \"maybe\"}\n")
	d, err := c.LoadData("", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Items(d, 0, 1); err == nil || !strings.Contains(err.Error(), "rows.jsonl:2: doc_to_target \"maybe\" is not one of the 2 choices") {
		t.Errorf("bad row: %v", err)
	}
}

func TestCut(t *testing.T) {
	for _, c := range []struct {
		text  string
		until []string
		want  string
	}{
		{"a\n\nQuestion: b", []string{"Question:", "</s>"}, "a\n\n"},
		{"a</s>b<|im_end|>c", []string{"<|im_end|>", "</s>"}, "a"},
		{"abc", []string{""}, "abc"},
		{"abc", nil, "abc"},
	} {
		if got := Cut(c.text, c.until); got != c.want {
			t.Errorf("Cut(%q, %q) = %q, want %q", c.text, c.until, got, c.want)
		}
	}
}
