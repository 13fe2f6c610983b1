package task

import (
	"slices"
	"strings"
	"testing"
)

// The constructs lm-eval task files use, with what Jinja2 (as lm-eval
// configures it: no trim_blocks, no lstrip_blocks, keep_trailing_newline)
// renders for them.
func TestTemplateRender(t *testing.T) {
	doc := Doc{"context": "Ctx", "question": "  Why? ", "answerA": "a'b", "answerB": `b"c`,
		"answerC": "c", "label": "2", "n": int64(3), "answer": "x\n#### 72", "choices": map[string]any{"text": []any{"p", "q"}}}
	cases := []struct{ src, want string }{
		{"{{context}}", "Ctx"},
		{"Q: {{context}} {{question}}\nA:", "Q: Ctx   Why? \nA:"},
		{"{{answerA}}", "a'b"},
		{"{{ (label|int) - 1 }}", "1"},
		{"{{n - 1}}", "2"},
		{"{{question.strip()}}", "Why?"},
		{"{{ question | trim }}", "Why?"},
		{"{{answer.split('#### ')[-1]}}", "72"},
		{"{{choices.text[1]}}", "q"},
		{"{% if n > 2 %}big{% else %}small{% endif %}\nx", "big\nx"},
		// Jinja2 keeps the newline after a block tag and the indentation before it.
		{"a\n  {% if n %}\nyes\n  {% endif %}\nb", "a\n  \nyes\n  \nb"},
		{"a\n  {%- if n -%}\n yes \n{%- endif %}|", "ayes|"},
		{"{% for x in choices.text %}{{x}},{% endfor %}", "p,q,"},
		{"{% set k = n + 2 %}{{k}}", "5"},
		{"{{ '2 * 3 | x' }}", "2 * 3 | x"},
		{"a{# a comment #}b", "ab"},
		{"{{ 'a\"b' }}\\n{{ \"}}\" }}", "a\"b\\n}}"},
		{"end\n", "end\n"},
		{"{{ label }}\t\"quoted\" \\", "2\t\"quoted\" \\"},
	}
	for _, c := range cases {
		tm, err := CompileTemplate(c.src)
		if err != nil {
			t.Errorf("%q: %v", c.src, err)
			continue
		}
		got, err := tm.Render(doc)
		if err != nil || got != c.want {
			t.Errorf("%q renders %q, %v; want %q", c.src, got, err, c.want)
		}
	}
}

func TestTemplateList(t *testing.T) {
	doc := Doc{"answerA": "it's", "answerB": `say "hi"`, "answerC": "c", "choices": map[string]any{"text": []any{"p", int64(2)}}}
	for src, want := range map[string][]string{
		"{{[answerA, answerB, answerC]}}": {"it's", `say "hi"`, "c"},
		" {{ choices.text }} ":            {"p", "2"},
		"{{ [1, 2.5, true] }}":            {"1", "2.5", "True"},
	} {
		tm, err := CompileTemplate(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tm.RenderList(doc)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%q gives %q, %v; want %q", src, got, err, want)
		}
	}
	for _, src := range []string{"A: {{answerA}}", "{{answerA}}"} {
		tm, err := CompileTemplate(src)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := tm.RenderList(doc); err == nil {
			t.Errorf("%q gives the list %q", src, got)
		}
	}
}

// Constructs outside the subset are refused at compile time with the
// template's line.
func TestTemplateRefused(t *testing.T) {
	for src, want := range map[string]string{
		"a\n{% macro m() %}x{% endmacro %}":     "template line 2: unsupported statement {% macro %}",
		"{% raw %}{{x}}{% endraw %}":            "template line 1: unsupported statement {% raw %}",
		"x\ny\n{{ q|regex_replace('a', 'b') }}": `template line 3: unsupported filter "regex_replace"`,
		"{% include 'x' %}":                     "unsupported statement {% include %}",
		"a\n{{ x ":                              "template line 2: unclosed",
		"{{ x | foo | lower }}":                 `unsupported filter "foo"`,
	} {
		_, err := CompileTemplate(src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
	// Filter names and operators inside string literals are neither; loops
	// one after the other are not nested.
	for _, src := range []string{"{{ 'a|regex_replace' }}", `{{ "a\"*" }}`, "{% for a in l %}{% endfor %}{% for b in l %}{% endfor %}"} {
		if _, err := CompileTemplate(src); err != nil {
			t.Error(err)
		}
	}
}

// A field the template reads but the row lacks fails, as under lm-eval's
// StrictUndefined; bound names, attributes, filters, tests and keyword
// arguments are not fields.
func TestTemplateStrict(t *testing.T) {
	cases := []struct {
		src   string
		names string
	}{
		{"Q: {{context}} {{question}}\nA:", "context question"},
		{"{{ (label|int) - 1 }}", "label"},
		{"{{ choices.text[0].strip() }} {{ 'q' ~ w }}", "choices w"},
		{"{% for x in items %}{{ x.a }}{{ loop.index }}{% endfor %}", "items"},
		{"{% set k = n + 2 %}{{ k }} {{ s.split('x', maxsplit=1) }}", "n s"},
		{"{{ a if a is defined else 'none' }}", ""},
		{"{{ b|default('x') }}", ""},
		{"{{ 1.5 + 2 }} {{ 'text {{ c }}' }} {{ d == e }} {{ f is string }}", "d e f"},
		{"{{ [answerA, answerB] | join(', ') }}", "answerA answerB"},
	}
	for _, c := range cases {
		tm, err := CompileTemplate(c.src)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(tm.names, " "); got != c.names {
			t.Errorf("%q reads %q, want %q", c.src, got, c.names)
		}
	}
	tm, _ := CompileTemplate("Q: {{context}} {{question}}")
	if _, err := tm.Render(Doc{"context": "c"}); err == nil || !strings.Contains(err.Error(), `"question" is undefined`) {
		t.Errorf("missing field: %v", err)
	}
	tm, _ = CompileTemplate("{{ [answerA, answerB] }}")
	if _, err := tm.RenderList(Doc{"answerA": "a"}); err == nil || !strings.Contains(err.Error(), `"answerB" is undefined`) {
		t.Errorf("missing list field: %v", err)
	}
}
