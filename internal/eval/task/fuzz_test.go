package task

import (
	"os"
	"testing"
)

// FuzzParseConfig feeds arbitrary task files to the parser: it must never
// panic, and a file it accepts must build requests for a doc (templates
// that compile must render or fail cleanly). Seeds: the shipped Social IQa
// and GSM8K files, the minimal file of the tests and testdata/fuzz.
func FuzzParseConfig(f *testing.F) {
	for _, p := range []string{"testdata/social_iqa.yaml", "testdata/gsm8k.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(minimalMC))
	doc := Doc{"q": "Why?", "context": "c", "question": "q", "answerA": "a", "answerB": "b", "answerC": "c",
		"label": "1", "answer": "x\n#### 3", "n": int64(2), "choices": []any{"x", "y"}}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("fuzz.yaml", src)
		if err != nil {
			return
		}
		if c.OutputType == "" || len(c.Metrics) == 0 || len(c.Filters) == 0 {
			t.Fatalf("accepted without output type, metrics or filters: %+v", c)
		}
		d := &Data{Eval: []Row{{Doc: doc, Pos: "doc:1"}}, Fewshot: []Row{{Doc: doc, Pos: "doc:1"}}, SameSplit: true}
		items, err := c.Items(d, min(c.NumFewshot, 3), 1)
		if err != nil {
			return
		}
		if len(items) != 1 || len(items[0].Requests) == 0 {
			t.Fatalf("items %+v", items)
		}
		resps := make([]string, len(items[0].Requests))
		if c.OutputType == GenerateUntil {
			c.ScoreGen(items[0], resps)
		} else if _, err := c.ScoreLL(items[0], make([]LL, len(resps))); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzTemplate compiles and renders arbitrary templates: the scanner and
// the engine must fail cleanly, and a one-expression template's list form
// must too.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"Q: {{context}} {{question}}\nA:", "{{ (label|int) - 1 }}", "{{[answerA, answerB, answerC]}}",
		"{% if n > 2 %}big{% else %}small{% endif %}\nx", "a\n  {%- if n -%}\n yes \n{%- endif %}|",
		"{% for x in choices %}{{x}},{% endfor %}", "{% set k = n + 2 %}{{k}}", "a{# c #}b", "{{ 'a\"b' }}\\n{{ \"}}\" }}",
		"{{ question.strip().split(' ')[-1] }}", "{{ a if a is defined else 'none' }}"} {
		f.Add(s)
	}
	doc := Doc{"context": "c", "question": " q ", "answerA": "a", "answerB": "b", "answerC": "c",
		"label": "2", "n": int64(3), "choices": []any{"x", int64(2)}, "m": map[string]any{"k": "v"}}
	f.Fuzz(func(t *testing.T, src string) {
		tm, err := CompileTemplate(src)
		if err != nil {
			return
		}
		_, _ = tm.Render(doc)
		_, _ = tm.RenderList(doc)
	})
}
