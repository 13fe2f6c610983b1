package task

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/ardanlabs/jinja"
)

// Template is one compiled Jinja2 template of a task file.
//
// lm-eval renders templates with jinja2.Environment(undefined=StrictUndefined,
// keep_trailing_newline=True) and no trim_blocks or lstrip_blocks. The
// ardanlabs engine hard-codes the chat-template defaults trim_blocks=True and
// lstrip_blocks=True instead, so Compile never lets it see literal text:
// every text run becomes a string expression, and the explicit "-" markers
// are applied here, as Jinja2's lexer would apply them, so whitespace comes
// out as Jinja2 renders it. (One known difference of values: a list printed
// as text is quoted with ' throughout, where Python's repr switches to "
// around an item holding a '.)
type Template struct {
	Source string
	tmpl   *jinja.Template
	// expr is the expression of a template that is exactly one {{ … }}
	// (around optional whitespace); doc_to_choice evaluates it to a list.
	expr string
	list *jinja.Template
	// names are the fields the template reads; a doc without one of them
	// fails, as under lm-eval's StrictUndefined. Nil when the template
	// tests for definedness itself (is defined, default).
	names []string
	// name is "FILE:LINE " of the task file's template, for messages.
	name string
}

// allowedStatements are the block tags the package accepts; others (macro,
// call, filter, raw, include, extends, block…) are refused with their line.
var allowedStatements = map[string]bool{
	"if": true, "elif": true, "else": true, "endif": true,
	"for": true, "endfor": true, "set": true, "endset": true,
}

// allowedFilters are the Jinja2 built-in filters the engine implements.
// lm-eval's own regex_replace filter is not among them: a template using it
// is refused at load rather than failing at render.
var allowedFilters = map[string]bool{
	"tojson": true, "items": true, "join": true, "default": true, "d": true,
	"trim": true, "lower": true, "upper": true, "title": true, "capitalize": true,
	"first": true, "last": true, "length": true, "count": true, "reverse": true,
	"sort": true, "unique": true, "list": true, "int": true, "float": true,
	"string": true, "replace": true, "round": true, "abs": true, "map": true,
	"select": true, "reject": true, "selectattr": true, "rejectattr": true,
	"indent": true, "wordcount": true, "dictsort": true, "max": true, "min": true,
	"sum": true, "batch": true,
}

type segKind int

const (
	segText segKind = iota
	segExpr
	segStmt
	segComment
)

type segment struct {
	kind                segKind
	body                string // text, or the tag's inside without delimiters and markers
	trimLeft, trimRight bool
	line                int
}

// scanTemplate splits src into text and tags, tracking quotes inside tags.
func scanTemplate(src string) ([]segment, error) {
	var segs []segment
	line := 1
	i := 0
	for i < len(src) {
		open := indexTag(src[i:])
		if open < 0 {
			segs = append(segs, segment{kind: segText, body: src[i:], line: line})
			break
		}
		if open > 0 {
			segs = append(segs, segment{kind: segText, body: src[i : i+open], line: line})
			line += strings.Count(src[i:i+open], "\n")
			i += open
		}
		var kind segKind
		var closer string
		switch src[i+1] {
		case '{':
			kind, closer = segExpr, "}}"
		case '%':
			kind, closer = segStmt, "%}"
		default:
			kind, closer = segComment, "#}"
		}
		start := i + 2
		seg := segment{kind: kind, line: line}
		if start < len(src) && src[start] == '-' {
			seg.trimLeft = true
			start++
		}
		end := -1
		var quote byte
		for j := start; j < len(src); j++ {
			c := src[j]
			switch {
			case kind == segComment:
			case quote != 0 && c == '\\':
				j++
				continue
			case quote != 0:
				if c == quote {
					quote = 0
				}
				continue
			case c == '\'' || c == '"':
				quote = c
				continue
			}
			if strings.HasPrefix(src[j:], closer) {
				end = j
				break
			}
		}
		if end < 0 {
			return nil, fmt.Errorf("template line %d: unclosed %q", line, src[i:i+2])
		}
		body := src[start:end]
		if strings.HasSuffix(body, "-") {
			seg.trimRight = true
			body = body[:len(body)-1]
		}
		seg.body = strings.TrimSpace(body)
		segs = append(segs, seg)
		line += strings.Count(src[i:end+2], "\n")
		i = end + 2
	}
	return segs, nil
}

// indexTag returns the offset of the first "{{", "{%" or "{#" in s, or -1.
func indexTag(s string) int {
	for k := 0; k+1 < len(s); k++ {
		if s[k] == '{' && (s[k+1] == '{' || s[k+1] == '%' || s[k+1] == '#') {
			return k
		}
	}
	return -1
}

// checkTag refuses statements and filters outside the supported subset,
// and the constructs checkGrowth finds unbounded.
func checkTag(seg segment) error {
	if seg.kind == segStmt {
		kw, _, _ := strings.Cut(seg.body, " ")
		if !allowedStatements[kw] {
			return fmt.Errorf("template line %d: unsupported statement {%% %s %%}", seg.line, kw)
		}
	}
	if seg.kind != segExpr && seg.kind != segStmt {
		return nil
	}
	code := blankStrings(seg.body)
	for _, name := range filterNames(code) {
		if !allowedFilters[name] {
			return fmt.Errorf("template line %d: unsupported filter %q", seg.line, name)
		}
	}
	return checkGrowth(seg)
}

// blankStrings replaces the insides of string literals with spaces, so
// operators and filters are looked for in code only.
func blankStrings(body string) string {
	b := []byte(body)
	var quote byte
	for k := 0; k < len(b); k++ {
		c := b[k]
		switch {
		case quote != 0 && c == '\\' && k+1 < len(b):
			b[k], b[k+1] = ' ', ' '
			k++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			b[k] = ' '
		case c == '\'' || c == '"':
			quote = c
		}
	}
	return string(b)
}

// filterNames lists the names after each "|" of code (strings blanked).
func filterNames(code string) []string {
	var names []string
	for k := 0; k < len(code); k++ {
		if code[k] != '|' {
			continue
		}
		rest := strings.TrimLeft(code[k+1:], " \t\n")
		n := 0
		for n < len(rest) && (rest[n] == '_' || rest[n] >= 'a' && rest[n] <= 'z' || rest[n] >= 'A' && rest[n] <= 'Z' || rest[n] >= '0' && rest[n] <= '9') {
			n++
		}
		names = append(names, rest[:n])
	}
	return names
}

// quoteJinja writes s as a Jinja string literal the engine decodes back to s.
func quoteJinja(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// CompileTemplate compiles src with Jinja2's default whitespace handling.
func CompileTemplate(src string) (*Template, error) {
	segs, err := scanTemplate(src)
	if err != nil {
		return nil, err
	}
	// Explicit markers strip the whitespace of the adjacent text only.
	for k := range segs {
		if segs[k].kind == segText {
			continue
		}
		if segs[k].trimLeft && k > 0 && segs[k-1].kind == segText {
			segs[k-1].body = strings.TrimRight(segs[k-1].body, " \t\r\n")
		}
		if segs[k].trimRight && k+1 < len(segs) && segs[k+1].kind == segText {
			segs[k+1].body = strings.TrimLeft(segs[k+1].body, " \t\r\n")
		}
	}
	var b strings.Builder
	var exprs []string
	loops := 0
	for _, seg := range segs {
		if err := checkTag(seg); err != nil {
			return nil, err
		}
		// A loop inside a loop multiplies a row's size by itself.
		if kw, _, _ := strings.Cut(seg.body, " "); seg.kind == segStmt && kw == "for" {
			if loops++; loops > 1 {
				return nil, fmt.Errorf("template line %d: nested for loops are not supported (they can render unbounded text)", seg.line)
			}
		} else if seg.kind == segStmt && kw == "endfor" {
			loops--
		}
		switch seg.kind {
		case segText:
			if seg.body != "" {
				b.WriteString(meterTag(segment{kind: segExpr, body: quoteJinja(seg.body), line: seg.line}))
			}
			if strings.TrimSpace(seg.body) != "" {
				exprs = append(exprs, "")
			}
		case segExpr:
			b.WriteString(meterTag(seg))
			exprs = append(exprs, seg.body)
		case segStmt:
			b.WriteString(meterTag(seg))
			exprs = append(exprs, "")
		}
	}
	t := &Template{Source: src, names: freeNames(segs)}
	if t.tmpl, err = jinja.Compile(b.String()); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	if len(exprs) == 1 && exprs[0] != "" {
		t.expr = exprs[0]
		if t.list, err = jinja.Compile(meterTag(segment{kind: segExpr, body: "(" + t.expr + ") | tojson", line: 1})); err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
	}
	return t, nil
}

// Render renders the template over one document's fields.
func (t *Template) Render(doc Doc) (string, error) {
	if err := t.defined(doc); err != nil {
		return "", err
	}
	m := &meter{name: t.name}
	return t.tmpl.RenderValues(m.data(doc))
}

func (t *Template) defined(doc Doc) error {
	for _, n := range t.names {
		if _, ok := doc[n]; !ok {
			return fmt.Errorf("%q is undefined (the row has no such field)", n)
		}
	}
	return nil
}

// RenderList evaluates a one-expression template to a list, as lm-eval does
// with ast.literal_eval over the rendered text of doc_to_choice; elements
// become their Python str().
func (t *Template) RenderList(doc Doc) ([]string, error) {
	if t.list == nil {
		return nil, fmt.Errorf("a template giving a list must be a single {{ expression }}, got %q", t.Source)
	}
	if err := t.defined(doc); err != nil {
		return nil, err
	}
	m := &meter{name: t.name}
	out, err := t.list.RenderValues(m.data(doc))
	if err != nil {
		return nil, err
	}
	var items []any
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		return nil, fmt.Errorf("{{ %s }} is not a list: %s", t.expr, out)
	}
	list := make([]string, len(items))
	for k, it := range items {
		list[k] = pyStr(it)
	}
	return list, nil
}

// pyStr formats a JSON-decoded value as Python's str() would.
func pyStr(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		if v == float64(int64(v)) {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		if v {
			return "True"
		}
		return "False"
	case nil:
		return "None"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// notFields are the words of expressions that are not doc fields: keywords,
// literals and the engine's global functions.
var notFields = map[string]bool{
	"and": true, "or": true, "not": true, "in": true, "is": true, "if": true,
	"else": true, "elif": true, "for": true, "set": true, "endif": true,
	"endfor": true, "endset": true, "recursive": true,
	"true": true, "false": true, "none": true, "True": true, "False": true, "None": true,
	"loop": true, "range": true, "namespace": true, "dict": true, "cycler": true,
	"joiner": true, "lipsum": true, "raise_exception": true, "strftime_now": true,
}

// freeNames lists the top-level names the tags read, less the names they
// bind (for targets, set), attributes (after "."), filters and tests (after
// "|" and "is"), and keyword arguments (before a single "="). It returns
// nil when the template tests definedness itself.
func freeNames(segs []segment) []string {
	bound := map[string]bool{}
	var names []string
	seen := map[string]bool{}
	for _, seg := range segs {
		if seg.kind != segExpr && seg.kind != segStmt {
			continue
		}
		words := identifiers(seg.body)
		for k, w := range words {
			if w.name == "defined" || w.name == "undefined" || w.name == "default" || w.name == "d" && w.prev == '|' {
				return nil
			}
			if seg.kind == segStmt && k > 0 && (words[0].name == "for" && !w.afterIn || words[0].name == "set" && k == 1) {
				bound[w.name] = true
				continue
			}
			if w.prev == '.' || w.prev == '|' || w.afterIs || w.kwarg || notFields[w.name] || seen[w.name] {
				continue
			}
			seen[w.name] = true
			names = append(names, w.name)
		}
	}
	out := names[:0]
	for _, n := range names {
		if !bound[n] {
			out = append(out, n)
		}
	}
	return out
}

type ident struct {
	name    string
	prev    byte // the last non-space byte before it
	afterIs bool // the previous word is "is" (a test name)
	afterIn bool // a word "in" came before it in the tag
	kwarg   bool // followed by a single "="
	end     int  // the offset after it in the body
}

// identifiers lists the words of a tag's body outside string literals.
func identifiers(body string) []ident {
	var out []ident
	var prev byte
	prevWord, beforeNot := "", "" // beforeNot: the word before a "not"
	afterIn := false
	isWord := func(c byte) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	for k := 0; k < len(body); k++ {
		c := body[k]
		switch {
		case c == '\'' || c == '"':
			for k++; k < len(body) && body[k] != c; k++ {
				if body[k] == '\\' {
					k++
				}
			}
			prev, prevWord = c, ""
		case isWord(c) && !(c >= '0' && c <= '9'):
			j := k
			for j < len(body) && isWord(body[j]) {
				j++
			}
			w := body[k:j]
			rest := strings.TrimLeft(body[j:], " \t\n")
			out = append(out, ident{name: w, prev: prev, afterIs: prevWord == "is" || prevWord == "not" && beforeNot == "is", afterIn: afterIn,
				kwarg: strings.HasPrefix(rest, "=") && !strings.HasPrefix(rest, "=="), end: j})
			if w == "in" {
				afterIn = true
			}
			if w == "not" {
				beforeNot = prevWord
			}
			prev, prevWord = 'a', w
			k = j - 1
		case isWord(c):
			for k+1 < len(body) && (isWord(body[k+1]) || body[k+1] == '.') {
				k++
			}
			prev, prevWord = '0', ""
		case c != ' ' && c != '\t' && c != '\n' && c != '\r':
			prev, prevWord = c, ""
		}
	}
	return out
}
