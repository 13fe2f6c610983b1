package task

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ardanlabs/jinja"
)

// Bounds on rendering. A task file and its rows may come from an untrusted
// key (a task competition renders every item on the hub at creation), so
// a template must not be able to make a render, an item or a competition
// exhaust the hub's memory or CPU. The engine has no budget of its own:
// compileBudget refuses the constructs that allocate without bound in one
// step, and rewrites the template so every value it prints or sets and
// every loop passes through a per-render meter.
const (
	// MaxRenderBytes bounds what one render produces: printed text and
	// values bound by set, counted as they are made. A real prompt
	// template renders a few KiB.
	MaxRenderBytes = 1 << 20
	// MaxRenderIterations bounds the loop iterations of one render
	// (lm-eval templates loop over a handful of choices).
	MaxRenderIterations = 100_000
	// MaxRenderReads bounds the bytes of the values a render's
	// expressions read, counted at each read: an expression's work is
	// linear in what it reads (string methods, indexing, comparison), so
	// this bounds the CPU of a loop that rereads a long field. A prompt
	// template reads each field once or twice.
	MaxRenderReads = 8 << 20
	// MaxExprGrowth bounds how many times larger than its largest operand
	// one expression can be: its count of names times the growth of its
	// replace, join, indent and tojson filters. An expression is
	// evaluated whole before the meter sees it, so this bounds the one
	// step the meter cannot.
	MaxExprGrowth = 32
	// MaxRangeLen bounds range() over integer literals.
	MaxRangeLen = 1000
	// MaxTagBytes bounds the inside of one {{ }} or {% %} tag, and
	// maxNesting its brackets, so parsing and evaluating it cannot
	// recurse deeply.
	MaxTagBytes = 8 << 10
	maxNesting  = 32
	// MaxIndent bounds the width of the indent filter.
	MaxIndent = 32
	// MaxPromptBytes bounds one item's prompt: description, few-shot
	// examples and the doc's text (about 250k tokens, above any model's
	// context).
	MaxPromptBytes = 1 << 20
	// MaxItemsBytes bounds the text of all the items Items builds (each
	// request repeats its prompt), so a competition's rendered rows fit
	// the hub's memory and store.
	MaxItemsBytes = 256 << 20
)

// Names the rewritten template calls; a template may not use names
// starting with "__", so it can neither call nor shadow them.
const (
	meterName = "__budget"
	loopName  = "__loop"
	readName  = "__read"
)

// refusedMethods are methods and globals that can grow text beyond any
// static bound (format substitutes into its own output), or build a
// value that contains itself, which the engine prints by endless
// recursion (append, insert, namespace attributes).
var refusedMethods = map[string]bool{"format": true, "append": true, "insert": true, "update": true}

// stripNames are the methods (and the trim filter) whose characters
// argument is searched once per character stripped: it must be a literal
// of at most maxCutset bytes.
var stripNames = map[string]bool{"strip": true, "lstrip": true, "rstrip": true, "trim": true}

const maxCutset = 64

// shortLit reports whether arg is a string literal of at most maxCutset bytes.
func shortLit(arg string) bool {
	s, ok := strLit(strings.TrimSpace(arg))
	return ok && len(s) <= maxCutset
}

var (
	intLit    = regexp.MustCompile(`^[+-]?[0-9]{1,9}$`)
	lengthArg = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\[\]"' ]*\|\s*length(\s*[+-]\s*[0-9]{1,4})?$`)
)

// checkGrowth refuses, in one tag, the constructs that can allocate
// without bound in one step: * and ** unless between number literals,
// range() unless over small integer literals or a length, replace, join
// and indent with arguments other than literals, tojson's indent, the
// refusedMethods, and an expression whose MaxExprGrowth is exceeded.
func checkGrowth(seg segment) error {
	errf := func(format string, args ...any) error {
		return fmt.Errorf("template line %d: "+format, append([]any{seg.line}, args...)...)
	}
	if len(seg.body) > MaxTagBytes {
		return errf("a tag of %d bytes, more than %d", len(seg.body), MaxTagBytes)
	}
	if kw, rest, _ := strings.Cut(seg.body, " "); seg.kind == segStmt && kw == "set" {
		if target, _, ok := strings.Cut(rest, "="); ok && strings.Contains(target, ".") {
			return errf("set of an attribute is not supported (it can build a value that contains itself)")
		}
	}
	code := blankStrings(seg.body)
	depth := 0
	for k := 0; k < len(code); k++ {
		switch code[k] {
		case '(', '[', '{':
			if depth++; depth > maxNesting {
				return errf("brackets nested more than %d deep", maxNesting)
			}
		case ')', ']', '}':
			depth--
		case '*':
			n := 1
			if k+1 < len(code) && code[k+1] == '*' {
				n = 2
			}
			if !numberBefore(code[:k]) || !numberAfter(code[k+n:]) {
				return errf("%s is supported between number literals only (it can render unbounded text)", code[k:k+n])
			}
			k += n - 1
		}
	}
	growth, names := 1, 0
	for _, w := range identifiers(seg.body) {
		rest := strings.TrimLeft(seg.body[w.end:], " \t\r\n")
		call := strings.HasPrefix(rest, "(")
		var args []string
		if call {
			args = callArgs(seg.body, w.end+len(seg.body[w.end:])-len(rest))
		}
		switch {
		case strings.HasPrefix(w.name, "__"):
			return errf("names starting with __ are reserved")
		case w.name == "recursive" && w.prev != '.':
			return errf("recursive loops are not supported")
		case w.name == "namespace" && w.prev != '.' || w.prev == '.' && refusedMethods[w.name]:
			return errf("%s is not supported (it can render unbounded text)", w.name)
		case w.name == "range" && w.prev != '.':
			if err := checkRange(call, args); err != nil {
				return errf("%v", err)
			}
		case w.name == "replace" && (w.prev == '.' || w.prev == '|'):
			f, err := replaceGrowth(call, args, w.prev == '|')
			if err != nil {
				return errf("%v", err)
			}
			growth *= f
		case w.name == "join" && w.prev == '|':
			f, err := joinGrowth(args)
			if err != nil {
				return errf("%v", err)
			}
			growth *= f
		case w.name == "indent" && w.prev == '|':
			f, err := indentGrowth(args)
			if err != nil {
				return errf("%v", err)
			}
			growth *= f
		case w.name == "tojson" && w.prev == '|':
			if len(args) > 0 {
				return errf("tojson takes no arguments (indent and separators can render unbounded text)")
			}
			growth *= 6 // a control character becomes \u00XX
		case stripNames[w.name] && (w.prev == '.' || w.prev == '|' && w.name == "trim"):
			if len(args) > 1 || len(args) == 1 && !shortLit(args[0]) {
				return errf("%s takes a string literal of at most %d characters (a long one costs its length per character stripped)", w.name, maxCutset)
			}
		case w.name == "map" && w.prev == '|':
			for _, a := range args {
				if name, v := kwarg(a); name == "default" && !shortLit(v) && !intLit.MatchString(v) {
					return errf("map's default must be a literal (it is repeated for each item)")
				}
			}
		case w.prev != '.' && w.prev != '|' && !w.afterIs && !w.kwarg && (!notFields[w.name] || w.name == "loop"):
			names++
		}
		if growth > MaxExprGrowth || growth*max(names, 1) > MaxExprGrowth {
			return errf("the expression can grow its operands %d times, more than %d (count the names it reads times the growth of its replace, join, indent and tojson filters)",
				growth*max(names, 1), MaxExprGrowth)
		}
	}
	return nil
}

// numberBefore reports whether code ends in a number literal that is an
// operand of its own (not an index, call or name).
func numberBefore(code string) bool {
	s := strings.TrimRight(code, " \t\r\n")
	k := len(s)
	for k > 0 && (s[k-1] >= '0' && s[k-1] <= '9' || s[k-1] == '.') {
		k--
	}
	if k == len(s) || strings.Trim(s[k:], ".") == "" {
		return false
	}
	return k == 0 || !isIdentByte(s[k-1]) && s[k-1] != ')' && s[k-1] != ']' && s[k-1] != '"' && s[k-1] != '\''
}

// numberAfter reports whether code starts with a number literal that is
// not itself indexed, called or the start of a name.
func numberAfter(code string) bool {
	s := strings.TrimLeft(code, " \t\r\n")
	s = strings.TrimPrefix(s, "-")
	k := 0
	for k < len(s) && (s[k] >= '0' && s[k] <= '9' || s[k] == '.') {
		k++
	}
	if k == 0 || strings.Trim(s[:k], ".") == "" {
		return false
	}
	rest := strings.TrimLeft(s[k:], " \t\r\n")
	return rest == "" || !isIdentByte(rest[0]) && rest[0] != '(' && rest[0] != '[' && rest[0] != '"' && rest[0] != '\''
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// callArgs splits the arguments of the call whose "(" is at body[open],
// at top-level commas; nil when the parenthesis is not closed.
func callArgs(body string, open int) []string {
	code := blankStrings(body)
	depth, start := 0, open+1
	var args []string
	for k := open; k < len(code); k++ {
		switch code[k] {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			if depth--; depth == 0 {
				if a := strings.TrimSpace(body[start:k]); a != "" || len(args) > 0 {
					args = append(args, a)
				}
				return args
			}
		case ',':
			if depth == 1 {
				args = append(args, strings.TrimSpace(body[start:k]))
				start = k + 1
			}
		}
	}
	return nil
}

// strLit returns the value of a single string literal, as the engine
// decodes it.
func strLit(arg string) (string, bool) {
	code := blankStrings(arg)
	if len(arg) < 2 || (arg[0] != '"' && arg[0] != '\'') || arg[len(arg)-1] != arg[0] ||
		strings.Count(code, `"`)+strings.Count(code, `'`) != 2 {
		return "", false
	}
	var b strings.Builder
	in := arg[1 : len(arg)-1]
	for k := 0; k < len(in); k++ {
		if in[k] != '\\' || k+1 == len(in) {
			b.WriteByte(in[k])
			continue
		}
		k++
		switch in[k] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case '\\', '\'', '"':
			b.WriteByte(in[k])
		default:
			b.WriteByte('\\')
			b.WriteByte(in[k])
		}
	}
	return b.String(), true
}

// kwarg splits "name=value"; name is "" for a positional argument.
func kwarg(arg string) (string, string) {
	code := blankStrings(arg)
	if i := strings.Index(code, "="); i > 0 && !strings.HasPrefix(code[i:], "==") && isName(strings.TrimSpace(code[:i])) {
		return strings.TrimSpace(arg[:i]), strings.TrimSpace(arg[i+1:])
	}
	return "", arg
}

func isName(s string) bool {
	for k := range len(s) {
		if !isIdentByte(s[k]) {
			return false
		}
	}
	return s != ""
}

// checkRange accepts range() over integer literals spanning at most
// MaxRangeLen, or whose arguments are lengths (x|length ± a literal):
// the loop meter bounds those.
func checkRange(call bool, args []string) error {
	if !call || len(args) < 1 || len(args) > 3 {
		return fmt.Errorf("range is supported as range(stop), range(start, stop) or range(start, stop, step) only")
	}
	var lits []int
	for _, a := range args {
		a = strings.TrimSpace(a)
		if intLit.MatchString(a) {
			n, _ := strconv.Atoi(a)
			lits = append(lits, n)
		} else if !lengthArg.MatchString(blankStrings(a)) {
			return fmt.Errorf("range() takes integer literals or x|length, not %q (it can render unbounded text)", a)
		}
	}
	if len(lits) < len(args) {
		return nil
	}
	start, stop, step := 0, lits[0], 1
	if len(lits) > 1 {
		start, stop = lits[0], lits[1]
	}
	if len(lits) > 2 {
		step = lits[2]
	}
	if step == 0 {
		return fmt.Errorf("range() step must not be zero")
	}
	if n := (stop - start) / step; n > MaxRangeLen {
		return fmt.Errorf("range() of %d numbers, more than %d", n, MaxRangeLen)
	}
	return nil
}

// replaceGrowth is how many times longer replace can make its input:
// len(new)/len(old) rounded up, or len(new)+1 for an empty old (which
// inserts new between every character). Its arguments must be literals.
func replaceGrowth(call bool, args []string, filter bool) (int, error) {
	bad := fmt.Errorf("replace takes two string literals and an optional integer count (other arguments can render unbounded text)")
	if !call || len(args) < 2 || len(args) > 3 {
		return 0, bad
	}
	old, ok1 := strLit(args[0])
	repl, ok2 := strLit(args[1])
	if !ok1 || !ok2 {
		return 0, bad
	}
	if len(args) == 3 {
		name, v := kwarg(args[2])
		if !intLit.MatchString(v) || name != "" && !(filter && name == "count") {
			return 0, bad
		}
	}
	if old == "" {
		return len(repl) + 1, nil
	}
	return max(1, (len(repl)+len(old)-1)/len(old)), nil
}

// joinGrowth is 1 + the separator's length: a list of n items prints in
// at least n bytes. The separator must be a literal.
func joinGrowth(args []string) (int, error) {
	sep := ""
	for _, a := range args {
		name, v := kwarg(a)
		if name == "attribute" {
			continue
		}
		s, ok := strLit(v)
		if !ok || name != "" && name != "d" {
			return 0, fmt.Errorf("join takes a string literal separator (another can render unbounded text)")
		}
		sep = s
	}
	return 1 + len(sep), nil
}

// indentGrowth is 1 + the indent's width, a literal of at most MaxIndent.
func indentGrowth(args []string) (int, error) {
	width := 4
	for k, a := range args {
		name, v := kwarg(a)
		switch {
		case name == "width" || name == "" && k == 0:
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 || n > MaxIndent {
				return 0, fmt.Errorf("indent takes an integer literal width from 0 to %d", MaxIndent)
			}
			width = n
		case name != "first" && !(name == "" && k == 1):
			return 0, fmt.Errorf("indent takes a width and first only")
		}
	}
	return 1 + width, nil
}

// meter counts one render's output bytes, loop iterations and the bytes
// of the values it reads.
type meter struct {
	name               string
	bytes, iter, reads int
}

func (m *meter) errf(line Value, format string, args ...any) error {
	return fmt.Errorf("template %sline %d: "+format, append([]any{m.name, line.AsInt()}, args...)...)
}

// Value is the engine's value type.
type Value = jinja.Value

// data is doc's fields with the meter's functions set last, so a field
// cannot shadow them.
func (m *meter) data(doc Doc) map[string]Value {
	vals := make(map[string]Value, len(doc)+2)
	for k, v := range doc {
		vals[k] = jinja.FromGoValue(v)
	}
	vals[meterName] = jinja.NewCallable(meterName, func(args []Value, _ map[string]Value) (Value, error) {
		m.bytes += valueSize(args[0], MaxRenderBytes-m.bytes+1)
		if m.bytes > MaxRenderBytes {
			return jinja.Undefined(), m.errf(args[1], "output exceeds %d bytes", MaxRenderBytes)
		}
		return args[0], nil
	})
	vals[readName] = jinja.NewCallable(readName, func(args []Value, _ map[string]Value) (Value, error) {
		m.reads += valueSize(args[0], MaxRenderReads-m.reads+1)
		if m.reads > MaxRenderReads {
			return jinja.Undefined(), m.errf(args[1], "expressions read more than %d bytes of values", MaxRenderReads)
		}
		return args[0], nil
	})
	vals[loopName] = jinja.NewCallable(loopName, func(args []Value, _ map[string]Value) (Value, error) {
		v := args[0]
		switch {
		case v.IsList():
			m.iter += v.AsList().Len()
		case v.IsDict():
			m.iter += len(v.AsDict().Keys)
		case v.IsString():
			m.iter += utf8.RuneCountInString(v.AsString())
		}
		if m.iter > MaxRenderIterations {
			return jinja.Undefined(), m.errf(args[1], "loops exceed %d iterations", MaxRenderIterations)
		}
		return v, nil
	})
	return vals
}

// valueSize is about the bytes v prints in, counted up to limit.
func valueSize(v Value, limit int) int {
	switch {
	case v.IsString():
		return len(v.AsString())
	case v.IsList():
		n := 2
		for _, it := range v.AsList().Items {
			if n += 4 + valueSize(it, limit-n); n > limit {
				break
			}
		}
		return n
	case v.IsDict():
		d := v.AsDict()
		n := 2
		for _, k := range d.Keys {
			if n += 8 + len(k) + valueSize(d.Data[k], limit-n); n > limit {
				break
			}
		}
		return n
	}
	return 8
}

// meterTag rewrites one tag so the meter sees its values: each name an
// expression reads, a printed expression, a set value and a loop's
// iterable.
func meterTag(seg segment) string {
	wrap := func(fn, e string) string { return fmt.Sprintf("%s((%s), %d)", fn, wrapReads(e, seg.line), seg.line) }
	if seg.kind == segExpr {
		return "{{ " + wrap(meterName, seg.body) + " }}"
	}
	kw, rest, _ := strings.Cut(seg.body, " ")
	switch kw {
	case "set":
		if target, val, ok := strings.Cut(rest, "="); ok {
			return "{% set " + target + "= " + wrap(meterName, val) + " %}"
		}
	case "for":
		if in := findKeyword(rest, "in"); in >= 0 {
			iter, cond := rest[in+2:], ""
			if k := findKeyword(iter, "if"); k >= 0 {
				iter, cond = iter[:k], " if "+wrapReads(iter[k+2:], seg.line)
			}
			return "{% for " + rest[:in] + "in " + wrap(loopName, iter) + cond + " %}"
		}
	case "if", "elif":
		return "{% " + kw + " " + wrapReads(rest, seg.line) + " %}"
	}
	return "{% " + seg.body + " %}"
}

// wrapReads passes each name expr reads (not attributes, filters, tests,
// keyword arguments, keywords or loop) through the meter's read count.
func wrapReads(expr string, line int) string {
	var b strings.Builder
	last := 0
	for _, w := range identifiers(expr) {
		if w.prev == '.' || w.prev == '|' || w.afterIs || w.kwarg || notFields[w.name] {
			continue
		}
		fmt.Fprintf(&b, "%s%s(%s, %d)", expr[last:w.end-len(w.name)], readName, w.name, line)
		last = w.end
	}
	return b.String() + expr[last:]
}

// findKeyword is the offset of the word kw in s outside strings and
// brackets, or -1: where the engine splits a for tag.
func findKeyword(s, kw string) int {
	code := blankStrings(s)
	depth := 0
	for k := 0; k < len(code); k++ {
		switch code[k] {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		default:
			if depth == 0 && strings.HasPrefix(code[k:], kw) && (k == 0 || !isIdentByte(code[k-1])) &&
				(k+len(kw) == len(code) || !isIdentByte(code[k+len(kw)])) {
				return k
			}
		}
	}
	return -1
}
