package task

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// renderAlloc compiles src and renders it over doc (as a list too, for a
// one-expression template), returning the first error and the bytes
// allocated meanwhile.
func renderAlloc(src string, doc Doc) (alloc uint64, err error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	defer func() {
		runtime.ReadMemStats(&after)
		alloc = after.TotalAlloc - before.TotalAlloc
	}()
	tm, err := CompileTemplate(src)
	if err != nil {
		return 0, err
	}
	if _, err = tm.Render(doc); err != nil {
		return 0, err
	}
	if tm.list != nil {
		_, err = tm.RenderList(doc)
	}
	return 0, err
}

// TestTemplateGrowthIsRefused: a hostile template cannot make one render
// allocate without bound. A 1 KiB template whose eight chained replaces
// grow a row 10^8 times is refused at compile; set chains that double a
// value, loops and printed lists are stopped by the render meter; each
// stays far below 64 MiB of allocation.
func TestTemplateGrowthIsRefused(t *testing.T) {
	ten := `"aaaaaaaaaa"`
	chain := func(form string) string {
		var b strings.Builder
		b.WriteString(strings.Repeat("preamble ", 100) + "\n{{ x")
		for range 8 {
			b.WriteString(fmt.Sprintf(form, ten))
		}
		return b.String() + " }}"
	}
	doubling := "{% set a = x ~ x %}" + strings.Repeat("{% set a = a ~ a %}", 24) + "{{ a|length }}"
	doc := Doc{"x": "aa", "n": int64(1_000_000), "long": strings.Repeat("b", 200_000), "mid": strings.Repeat("c", 2_000),
		"big": strings.Repeat("d", 600_000), "hundredk": strings.Repeat("e", 100_000),
		"uni": strings.Repeat("é", 300_000) + "a", "choices": []any{"p", "q"}}
	cases := []struct{ src, want string }{
		{chain(`|replace("a", %s)`), "template line 2: the expression can grow its operands 100 times, more than 32"},
		{chain(`.replace("a", %s)`), "template line 2: the expression can grow its operands 100 times"},
		{doubling, "template line 1: output exceeds 1048576 bytes"},
		{`{{ "a" * 10**12 }}`, "template line 1: * is supported between number literals only"},
		{"{% set k = 10**6 %}\n{{ x * k }}", "template line 2: * is supported between number literals only"},
		{`{% for i in range(10**12) %}{% endfor %}`, `range() takes integer literals or x|length, not "10**12"`},
		{`{% for i in range(n) %}{% endfor %}`, `range() takes integer literals or x|length, not "n"`},
		{`{% for i in range(1, 2000000) %}{% endfor %}`, "range() of 1999999 numbers, more than 1000"},
		{"{% for a in long %}\n{% for b in long %}{% endfor %}{% endfor %}", "template line 2: nested for loops are not supported"},
		{"{% for c in long %}{% endfor %}", "template line 1: loops exceed 100000 iterations"},
		{"{% for c in mid %}{{ mid }}{% endfor %}", "template line 1: output exceeds 1048576 bytes"},
		{"{% for c in mid %}" + strings.Repeat("t", 1024) + "{% endfor %}", "output exceeds 1048576 bytes"},
		{"{{ [big, big] }}", "output exceeds 1048576 bytes"},
		{"{% for c in hundredk %}{% if hundredk[loop.index0] != c %}{% endif %}{% endfor %}", "template line 1: expressions read more than 8388608 bytes"},
		{`{% set d = {} %}{% set d.a = d %}{{ d }}`, "set of an attribute is not supported"},
		{`{% set d = {} %}{{ d.update({'a': d}) }}{{ d }}`, "update is not supported"},
		{`{{ x|indent(1000000) }}`, "indent takes an integer literal width from 0 to 32"},
		{`{{ x|join(x) }}`, "join takes a string literal separator"},
		{`{{ x|replace(x, "a") }}`, "replace takes two string literals"},
		{`{% set f = x.replace %}{{ f("a", "aaaa") }}`, "replace takes two string literals"},
		{`{{ "{0}{0}".format(x) }}`, "format is not supported"},
		{`{% set l = [] %}{{ l.append(l) }}{{ l }}`, "append is not supported"},
		{`{{ choices|tojson(indent=100) }}`, "tojson takes no arguments"},
		{`{{ long.split("")|tojson(separators=(long, long)) }}`, "tojson takes no arguments"},
		{`{{ long.split("")|map(attribute="z", default=long)|join(",") }}`, "map's default must be a literal"},
		{`{{ uni.strip(uni) }}`, "strip takes a string literal of at most 64 characters"},
		{`{{ uni|trim(uni) }}`, "trim takes a string literal of at most 64 characters"},
		{`{% set __budget = 1 %}{{ x }}`, "names starting with __ are reserved"},
		{"{{ " + strings.Repeat("(", 40) + "x" + strings.Repeat(")", 40) + " }}", "brackets nested more than 32 deep"},
		{"{{ x" + strings.Repeat(" ~ x", 40) + " }}", "can grow its operands 33 times"},
		{"{{ " + strings.Repeat("-", 9000) + "1 }}", "a tag of 9001 bytes, more than 8192"},
	}
	for _, c := range cases {
		alloc, err := renderAlloc(c.src, doc)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.80q: %v; want %q", c.src, err, c.want)
		}
		if alloc > 64<<20 {
			t.Errorf("%.80q allocated %d MiB; want under 64", c.src, alloc>>20)
		}
	}
}

// The constructs the static rules accept within their bounds render.
func TestTemplateGrowthAllowed(t *testing.T) {
	doc := Doc{"x": "ab", "choices": []any{"p", "q"}, "text": "the quick fox", "n": int64(3)}
	for src, want := range map[string]string{
		`{{ 2 * 3 }} {{ 2 ** 3 }}`:                                                                                "6 8",
		`{% for i in range(choices|length) %}{{ i }}{% endfor %}`:                                                 "01",
		`{% for i in range(1, 4) %}{{ i }}{% endfor %}`:                                                           "123",
		`{{ x|replace("a", "xyz") }} {{ x.replace("b", "", 1) }}`:                                                 "xyzb a",
		`{{ choices|join(", ") }} {{ x|indent(2, true) }}`:                                                        "p, q   ab",
		`{{ text.split(' ')[:-1]|join(' ') }}`:                                                                    "the quick",
		`{% set a = x ~ x %}{% set a = a ~ a %}{{ a }}`:                                                           "abababab",
		"{% for k, v in {'a': n}.items() %}{{ k }}={{ v }}{% endfor %}":                                           "a=3",
		"{% for c in x if c != 'a' %}{{ c }}{% endfor %}":                                                         "b",
		`{{ choices|tojson }} {{ n * 2 if n is number else 0 }}`:                                                  "", // n * 2: refused below
		`{{ (" " ~ x ~ ".").strip(" .") }} {{ x|trim }} {{ choices|map(attribute="k", default="-")|join }}`:       "ab ab --",
		"{{ 'y' if z is not defined else z }} {{ x is not string }} {% if x is defined and n > 2 %}ok{% endif %}": "y False ok",
		`{% set d = {'k': "v"} %}{{ d.k }} {{ "a=b" }} {{ 'x' ~ x }}`:                                             "v a=b xab",
	} {
		tm, err := CompileTemplate(src)
		if want == "" {
			if err == nil {
				t.Errorf("%q compiled; want * between a name and a number refused", src)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", src, err)
			continue
		}
		if got, err := tm.Render(doc); err != nil || got != want {
			t.Errorf("%q renders %q, %v; want %q", src, got, err, want)
		}
	}
}

// lm-eval's own templates (lm_eval/tasks/*/*.yaml) compile: arc_easy,
// hellaswag, mmlu, gsm8k and gsm8k-cot, piqa, boolq, lambada, sciq,
// openbookqa, commonsense_qa, anli, bbh, triviaqa.
func TestLMEvalTemplatesCompile(t *testing.T) {
	for _, src := range []string{
		"Question: {{question}}\nAnswer:", "{{choices.label.index(answerKey)}}", "{{choices.text}}",
		"{{query}}", "{{label}}",
		"{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:",
		"{{answer.split('####')[-1].strip() if answer is defined else target}}", "Q: {{question}}\nA:",
		"Question: {{goal}}\nAnswer:", "{{[sol1, sol2]}}",
		"{{passage}}\nQuestion: {{question}}?\nAnswer:",
		"{{text.split(' ')[:-1]|join(' ')}}", "{{' '+text.split(' ')[-1]}}",
		"{{support.lstrip()}}\nQuestion: {{question}}\nAnswer:", "{{[distractor1, distractor2, distractor3, correct_answer]}}",
		"{{choices.label.index(answerKey.lstrip())}}",
		"Question: {{ question.strip() }}\nA. {{choices['text'][0]}}\nB. {{choices['text'][1]}}\nC. {{choices['text'][2]}}\nD. {{choices['text'][3]}}\nE. {{choices['text'][4]}}\nAnswer:",
		"{{ choices.label.index(answerKey) }}",
		"{{premise}}\nQuestion: {{hypothesis}} True, False, or Neither?\nAnswer:",
		"Q: {{input}}\nA: Let's think step by step.", "{{target}}",
		"Question: {{question}}?\nAnswer:", "{{answer.aliases}}",
	} {
		if _, err := CompileTemplate(src); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}

// A prompt with its few-shot examples is bounded, and so are a task's
// items together; both errors name the doc.
func TestItemsAreBounded(t *testing.T) {
	c, err := Parse("t.yaml", []byte(minimalMC))
	if err != nil {
		t.Fatal(err)
	}
	var rows []Row
	for i := range 20 {
		rows = append(rows, Row{Doc: Doc{"q": strings.Repeat("w", 100_000)}, Pos: fmt.Sprintf("rows:%d", i+1)})
	}
	d := &Data{Eval: rows, Fewshot: rows, SameSplit: true}
	if _, err := c.Items(d, 12, 1); err == nil || !strings.Contains(err.Error(), "rows:1: doc 0: the prompt with its few-shot examples reaches") {
		t.Fatalf("12-shot of 100 kB rows: %v; want the 1 MiB prompt bound", err)
	}
	defer func(n int) { itemsBudget = n }(itemsBudget)
	itemsBudget = 1 << 20
	if _, err := c.Items(d, 0, 1); err == nil || !strings.Contains(err.Error(), "rows:4: doc 3: the items so far render") {
		t.Fatalf("20 rows of 300 kB items under a 1 MiB budget: %v; want doc 3 refused", err)
	}
}

// A data file of short values cannot decode to many times its size: the
// values of a JSONL file, the fields of a CSV file and the decoded bytes of a Parquet row are
// bounded, errors naming the line or row.
func TestRowsAreBounded(t *testing.T) {
	defer func(n int) { valuesBudget = n }(valuesBudget)
	valuesBudget = 10_000
	line := `{"a": [` + strings.Repeat("0,", 2_999) + "0]}\n"
	if _, err := ReadJSONL("many.jsonl", strings.NewReader(strings.Repeat(line, 5))); err == nil ||
		!strings.Contains(err.Error(), "many.jsonl:4: more than 10000 values") {
		t.Fatalf("15k values: %v; want refused at line 4", err)
	}
	if _, err := ReadCSV("many.csv", strings.NewReader("a"+strings.Repeat(",", 2_999)+"\n"+strings.Repeat(strings.Repeat(",", 2_999)+"\n", 5))); err == nil ||
		!strings.Contains(err.Error(), "many.csv:5: more than 10000 fields") {
		t.Fatalf("15k fields: %v; want refused at line 5", err)
	}
	type wide struct {
		Text string `parquet:"text,zstd"`
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, []wide{{Text: "ok"}, {Text: strings.Repeat("z", MaxLineBytes+1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadParquet("wide.parquet", bytes.NewReader(buf.Bytes()), int64(buf.Len())); err == nil ||
		!strings.Contains(err.Error(), "wide.parquet:row 2: 4194309 bytes of values, more than 4194304") {
		t.Fatalf("a %d-byte Parquet row compressed to %d bytes: %v; want it refused", MaxLineBytes, buf.Len(), err)
	}
}
