package task

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const minimalMC = `task: t
dataset_path: json
dataset_kwargs:
  data_files: rows.jsonl
output_type: multiple_choice
validation_split: train
doc_to_text: "{{q}}"
doc_to_choice: ["yes", "no"]
doc_to_target: 0
`

func TestParseDefaults(t *testing.T) {
	c, err := Parse("dir/t.yaml", []byte(minimalMC))
	if err != nil {
		t.Fatal(err)
	}
	if c.TargetDelimiter != " " || c.FewshotDelimiter != "\n\n" || c.NumFewshot != 0 || c.Repeats != 1 {
		t.Errorf("defaults %+v", c)
	}
	if got := c.DataFiles["train"]; len(got) != 1 || got[0] != filepath.Join("dir", "rows.jsonl") {
		t.Errorf("data files %v", c.DataFiles)
	}
	if len(c.Metrics) != 1 || c.Metrics[0].Name != "acc" || c.Filters[0].Name != "none" {
		t.Errorf("default metrics %+v filters %+v", c.Metrics, c.Filters)
	}
	g, err := Parse("g.yaml", []byte(`task: g
dataset_path: gsm8k
output_type: generate_until
test_split: test
fewshot_delimiter: "\n###\n"
doc_to_text: q
doc_to_target: a
`))
	if err != nil {
		t.Fatal(err)
	}
	if g.Generation.MaxGenToks != 256 || len(g.Generation.Until) != 1 || g.Generation.Until[0] != "\n###\n" {
		t.Errorf("generation defaults %+v", g.Generation)
	}
	if g.Metrics[0].Name != "exact_match" || g.DataFiles != nil {
		t.Errorf("hub task %+v", g)
	}
	if _, err := g.LoadData("", "", 0); err == nil || !strings.Contains(err.Error(), "not a local file") {
		t.Errorf("hub rows without a file: %v", err)
	}
	// A column-name doc_to_text reads the column, as lm-eval does.
	d := &Data{Eval: []Row{{Doc: Doc{"q": "What?", "a": "42"}, Pos: "x:1"}}}
	items, err := g.Items(d, 0, 1)
	if err != nil || items[0].Prompt != "What?" || items[0].Target != "42" {
		t.Errorf("column fields: %+v %v", items, err)
	}
	// An integer column is the reference's decimal form.
	d.Eval = []Row{{Doc: Doc{"q": "6*7?", "a": int64(42)}, Pos: "x:1"}}
	if items, err := g.Items(d, 0, 1); err != nil || items[0].Target != "42" {
		t.Errorf("integer column target: %+v %v", items, err)
	}
	// A string column of digits stays a string (lm-eval's doc[column]): it
	// names the choice "2", not index 2; a digit template is an index.
	mc, err := Parse("t.yaml", []byte(strings.Replace(strings.Replace(minimalMC, "doc_to_target: 0", "doc_to_target: label", 1),
		`["yes", "no"]`, `["1", "2", "3"]`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	d.Eval = []Row{{Doc: Doc{"q": "?", "label": "2"}, Pos: "x:1"}, {Doc: Doc{"q": "?", "label": int64(2)}, Pos: "x:2"}}
	if items, err := mc.Items(d, 0, 1); err != nil || items[0].Gold != 1 || items[1].Gold != 2 {
		t.Errorf("column targets: %+v %v", items, err)
	}
	mc.DocToTarget.Column = ""
	mc.DocToTarget.Tmpl, _ = CompileTemplate("{{label}}")
	if items, err := mc.Items(d, 0, 1); err != nil || items[0].Gold != 2 {
		t.Errorf("template target: %+v %v", items, err)
	}
	d.Eval = []Row{{Doc: Doc{"q": "?", "label": int64(-1)}, Pos: "x:1"}}
	mc.DocToTarget.Column = "label"
	if _, err := mc.Items(d, 0, 1); err == nil {
		t.Error("negative target accepted")
	}
	d.Fewshot, d.SameSplit = []Row{{Doc: Doc{"q": "?", "label": int64(-1)}, Pos: "f:1"}}, false
	d.Eval = []Row{{Doc: Doc{"q": "?", "label": int64(0)}, Pos: "x:1"}}
	if _, err := mc.Items(d, 1, 1); err == nil || !strings.Contains(err.Error(), "few-shot example f:1: doc_to_target -1 is not a choice index") {
		t.Errorf("negative few-shot target: %v", err)
	}
	// A row without a field a template reads is a bad row.
	g.Description, _ = CompileTemplate("{{ subject }}: ")
	d.Eval = []Row{{Doc: Doc{"q": "Why?"}, Pos: "rows.jsonl:7"}}
	if _, err := g.Items(d, 0, 1); err == nil || !strings.Contains(err.Error(), `rows.jsonl:7: description: "subject" is undefined`) {
		t.Errorf("missing field: %v", err)
	}
}

// Each bad file fails with FILE:LINE and what is wrong.
func TestParseErrors(t *testing.T) {
	replace := func(old, new string) string { return strings.Replace(minimalMC, old, new, 1) }
	cases := []struct{ src, want string }{
		{replace("output_type: multiple_choice", "output_type: loglikelihood_rolling"), `t.yaml:5: output_type "loglikelihood_rolling" is not supported`},
		{replace("output_type: multiple_choice", "output_type: bogus"), `t.yaml:5: output_type "bogus"`},
		{minimalMC + "process_results: !function utils.process\n", "t.yaml:10: process_results: !function"},
		{minimalMC + "use_prompt: promptsource\n", `t.yaml:10: unsupported key "use_prompt"`},
		{replace(`doc_to_text: "{{q}}"`, `doc_to_text: "{{q|regex_replace('a','b')}}"`), `t.yaml:7: template line 1: unsupported filter "regex_replace"`},
		{replace(`doc_to_text: "{{q}}"`, "doc_to_text: |\n  a\n  {% macro x() %}{% endmacro %}"), "t.yaml:7: template line 2: unsupported statement {% macro %}"},
		{replace("doc_to_target: 0", "doc_to_target: [a, b]"), "t.yaml:9: doc_to_target must be"},
		{replace(`doc_to_text: "{{q}}"`, "doc_to_text: 0"), "t.yaml:7: doc_to_text must be"},
		{replace(`doc_to_choice: ["yes", "no"]`, ""), "t.yaml:1: multiple_choice needs doc_to_choice"},
		{replace("validation_split: train\n", ""), "test_split or validation_split is required"},
		{replace("task: t\n", ""), "task is required"},
		{minimalMC + "num_fewshot: -1\n", "t.yaml:10: want an integer from 0 to 1000"},
		{minimalMC + "num_fewshot: 2\nnum_fewshot: 3\n", "t.yaml:11: num_fewshot given twice"},
		{minimalMC + "metric_list:\n  - metric: bleu\n", `t.yaml:11: metric "bleu" is not supported`},
		{minimalMC + "metric_list:\n  - metric: exact_match\n", "t.yaml:11: metric exact_match does not apply to multiple_choice"},
		{minimalMC + "metric_list:\n  - metric: acc\n    aggregation: median\n", `t.yaml:12: aggregation "median"`},
		{minimalMC + "metric_list:\n  - metric: acc\n    ignore_case: true\n", "t.yaml:11: metric acc takes no exact_match options"},
		{minimalMC + "filter_list:\n  - name: x\n    filter:\n      - function: take_first\n", "t.yaml:11: filter_list applies to generate_until"},
		{minimalMC + "generation_kwargs:\n  top_p: 0.9\n", `t.yaml:11: generation_kwargs: unsupported key "top_p"`},
		{minimalMC + "fewshot_config:\n  sampler: balanced\n", `t.yaml:11: fewshot_config: unsupported sampler "balanced"`},
		{minimalMC + "fewshot_config:\n  samples: [1]\n", `t.yaml:11: fewshot_config: unsupported key "samples"`},
		{replace("  data_files: rows.jsonl\n", ""), "dataset_path json needs dataset_kwargs.data_files"},
		{"- a\n- b\n", "t.yaml:1: a task file is a YAML mapping"},
		{minimalMC + "description: &d \"x\"\ntarget_delimiter: *d\n", "t.yaml:11: YAML aliases are not supported"},
		{minimalMC + "include: _default_template_yaml\n", `t.yaml:10: unsupported key "include"`},
		{"task: [\n", "t.yaml: yaml:"},
	}
	gen := strings.NewReplacer("output_type: multiple_choice", "output_type: generate_until", `doc_to_choice: ["yes", "no"]`+"\n", "")
	genCases := []struct{ src, want string }{
		{"filter_list:\n  - name: x\n    filter:\n      - function: regex\n        regex_pattern: \"(?<=a)b\"\n", "t.yaml:13: regex_pattern: error parsing regexp"},
		{"filter_list:\n  - name: x\n    filter:\n      - function: map\n", `t.yaml:12: filter function "map" is not supported`},
		{"filter_list:\n  - name: x\n    filter:\n      - function: take_first\n        regex_pattern: a\n", "t.yaml:13: take_first takes no regex_pattern"},
		{"filter_list:\n  - name: x\n    filter:\n      - function: regex\n        group_select: one\n", "t.yaml:13: want an integer"},
		{"filter_list:\n  - name: x\n    filter: []\n  - name: x\n    filter: []\n", `t.yaml:12: filter_list: "x" given twice`},
		{"metric_list:\n  - metric: exact_match\n    regexes_to_ignore: [\"(a\"]\n", "t.yaml:11: regexes_to_ignore: error parsing regexp"},
		{"metric_list:\n  - metric: acc\n", "t.yaml:10: metric acc does not apply to generate_until"},
		{"generation_kwargs:\n  temperature: hot\n", "t.yaml:10: temperature"},
	}
	for _, g := range genCases {
		cases = append(cases, struct{ src, want string }{gen.Replace(minimalMC) + g.src, g.want})
	}
	for _, c := range cases {
		_, err := Parse("t.yaml", []byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\n-> %v\nwant %q", c.src, err, c.want)
		}
	}
}

// Harmless metadata keys are ignored; so are download options beside data_files.
func TestParseIgnored(t *testing.T) {
	src := minimalMC + `tag: [a, b]
group: g
task_alias: T
metadata: {version: 2.0}
should_decontaminate: true
doc_to_decontamination_query: "{{q}}"
unsafe_code: false
`
	src = strings.Replace(src, "  data_files: rows.jsonl\n", "  data_files: rows.jsonl\n  trust_remote_code: true\n", 1)
	if _, err := Parse("t.yaml", []byte(src)); err != nil {
		t.Fatal(err)
	}
}

func TestLoadLimits(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(minimalMC+"#"+strings.Repeat("x", MaxConfigBytes)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("oversized file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "none.yaml")); err == nil {
		t.Error("missing file loaded")
	}
}

// The Social IQa task over the same rows as CSV builds the same items.
func TestCSVTask(t *testing.T) {
	_, want := loadTask(t, "testdata/social_iqa.yaml", 0)
	rows, err := ReadFile("testdata/siqa/dev.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	cols := []string{"context", "question", "answerA", "answerB", "answerC", "label"}
	var b strings.Builder
	b.WriteString(strings.Join(cols, ",") + "\n")
	for _, r := range rows {
		for k, col := range cols {
			if k > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"` + strings.ReplaceAll(r.Doc[col].(string), `"`, `""`) + `"`)
		}
		b.WriteString("\n")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dev.csv"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("testdata/social_iqa.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yml := strings.Replace(strings.Replace(string(src), "dataset_path: json", "dataset_path: csv", 1), "siqa/dev.jsonl", "dev.csv", 1)
	_, got := loadTask(t, writeFile(t, dir, "t.yaml", yml), 0)
	for k := range want {
		if got[k].Prompt != want[k].Prompt || got[k].Gold != want[k].Gold || got[k].Target != want[k].Target {
			t.Errorf("item %d: %+v, want %+v", k, got[k], want[k])
		}
	}
	if got[0].Pos != filepath.Join(dir, "dev.csv")+":2" {
		t.Errorf("position %s", got[0].Pos)
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
