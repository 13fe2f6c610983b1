package preference

import (
	"strings"
)

// This file holds a small lexer for fenced code in Python, JavaScript and
// Go: enough to tell identifiers from strings, comments and operators, so
// renaming and spacing changes never touch a string literal or a comment
// delimiter. Concatenating the tokens' texts always gives back the source.

// Languages the lexer knows.
const (
	langPython = "python"
	langJS     = "js"
	langGo     = "go"
)

type tokKind int

const (
	tkSpace tokKind = iota
	tkNewline
	tkIdent
	tkNumber
	tkString
	tkComment
	tkPunct
)

type token struct {
	kind tokKind
	text string
}

// normLang maps a fence info string to a language the lexer knows, or "".
func normLang(info string) string {
	f := strings.Fields(strings.ToLower(info))
	if len(f) == 0 {
		return ""
	}
	switch f[0] {
	case "python", "py", "python3":
		return langPython
	case "javascript", "js", "node", "jsx", "mjs":
		return langJS
	case "go", "golang":
		return langGo
	}
	return ""
}

// guessLang guesses the language of an unlabelled code block, or "".
func guessLang(code string) string {
	switch {
	case strings.Contains(code, "func ") && (strings.Contains(code, ":=") || strings.Contains(code, "package ")):
		return langGo
	case strings.Contains(code, "def ") && strings.Contains(code, ":\n"):
		return langPython
	case strings.Contains(code, "function ") || strings.Contains(code, "=>") ||
		strings.Contains(code, "const ") || strings.Contains(code, "let "):
		return langJS
	}
	return ""
}

var puncts = []string{
	"**=", "...", "<<=", ">>=", "===", "!==", "//=", "&^=", ">>>",
	":=", "==", "!=", "<=", ">=", "+=", "-=", "*=", "/=", "%=", "&&", "||",
	"=>", "->", "++", "--", "**", "//", "<<", ">>", "&=", "|=", "^=", "<-", "&^", "??", "?.",
}

// tokenize splits src into tokens for lang.
func tokenize(src, lang string) []token {
	var toks []token
	i := 0
	emit := func(k tokKind, j int) {
		toks = append(toks, token{k, src[i:j]})
		i = j
	}
	lastSig := func() *token {
		for t := len(toks) - 1; t >= 0; t-- {
			if toks[t].kind != tkSpace && toks[t].kind != tkNewline && toks[t].kind != tkComment {
				return &toks[t]
			}
		}
		return nil
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			emit(tkNewline, i+1)
		case c == '\r' && i+1 < len(src) && src[i+1] == '\n':
			emit(tkNewline, i+2)
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			j := i
			for j < len(src) && (src[j] == ' ' || src[j] == '\t' || src[j] == '\r' && !(j+1 < len(src) && src[j+1] == '\n') || src[j] == '\f' || src[j] == '\v') {
				j++
			}
			emit(tkSpace, j)
		case lang == langPython && c == '#':
			emit(tkComment, lineEnd(src, i))
		case lang != langPython && strings.HasPrefix(src[i:], "//"):
			emit(tkComment, lineEnd(src, i))
		case lang != langPython && strings.HasPrefix(src[i:], "/*"):
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				emit(tkComment, len(src))
			} else {
				emit(tkComment, i+2+j+2)
			}
		case lang == langPython && isIdentStart(c, lang):
			// String prefixes such as f, r, b, rb.
			j := i
			for j < len(src) && j-i < 2 && strings.IndexByte("rRbBuUfF", src[j]) >= 0 {
				j++
			}
			if j > i && j < len(src) && (src[j] == '\'' || src[j] == '"') {
				emit(tkString, stringEnd(src, j, lang))
				continue
			}
			emit(tkIdent, identEnd(src, i, lang))
		case isIdentStart(c, lang):
			emit(tkIdent, identEnd(src, i, lang))
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			j := i + 1
			for j < len(src) && (isIdentChar(src[j], lang) || src[j] == '.') {
				j++
			}
			emit(tkNumber, j)
		case c == '"' || c == '\'' || c == '`':
			emit(tkString, stringEnd(src, i, lang))
		case lang == langJS && c == '/' && regexAllowed(lastSig()):
			emit(tkString, regexEnd(src, i))
		default:
			n := 1
			for _, p := range puncts {
				if strings.HasPrefix(src[i:], p) {
					n = len(p)
					break
				}
			}
			emit(tkPunct, i+n)
		}
	}
	return toks
}

func lineEnd(src string, i int) int {
	j := strings.IndexByte(src[i:], '\n')
	if j < 0 {
		return len(src)
	}
	if j > 0 && src[i+j-1] == '\r' {
		return i + j - 1
	}
	return i + j
}

func isIdentStart(c byte, lang string) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '$' && lang == langJS || c >= 0x80
}

func isIdentChar(c byte, lang string) bool {
	return isIdentStart(c, lang) || c >= '0' && c <= '9'
}

func identEnd(src string, i int, lang string) int {
	j := i
	for j < len(src) && isIdentChar(src[j], lang) {
		j++
	}
	return j
}

// stringEnd returns the end of the string literal opening at src[i].
func stringEnd(src string, i int, lang string) int {
	q := src[i]
	if lang == langPython && strings.HasPrefix(src[i:], strings.Repeat(string(q), 3)) {
		delim := strings.Repeat(string(q), 3)
		for j := i + 3; j < len(src); j++ {
			if src[j] == '\\' {
				j++
				continue
			}
			if strings.HasPrefix(src[j:], delim) {
				return j + 3
			}
		}
		return len(src)
	}
	raw := lang == langGo && q == '`'
	multiline := q == '`'
	for j := i + 1; j < len(src); j++ {
		switch {
		case src[j] == '\\' && !raw:
			j++
		case src[j] == q:
			return j + 1
		case src[j] == '\n' && !multiline:
			return j // unterminated: stop at the line end
		}
	}
	return len(src)
}

// regexAllowed reports whether a '/' after prev starts a JavaScript regular
// expression literal rather than a division.
func regexAllowed(prev *token) bool {
	if prev == nil {
		return true
	}
	switch prev.kind {
	case tkIdent:
		switch prev.text {
		case "return", "typeof", "case", "do", "else", "in", "of", "new", "delete", "void", "throw", "yield", "await":
			return true
		}
		return false
	case tkNumber, tkString:
		return false
	case tkPunct:
		return prev.text != ")" && prev.text != "]" && prev.text != "}" && prev.text != "++" && prev.text != "--"
	}
	return true
}

func regexEnd(src string, i int) int {
	inClass := false
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			j++
		case '[':
			inClass = true
		case ']':
			inClass = false
		case '\n':
			return j
		case '/':
			if !inClass {
				j++
				for j < len(src) && isIdentChar(src[j], langJS) {
					j++
				}
				return j
			}
		}
	}
	return len(src)
}

var keywords = map[string]map[string]bool{
	langPython: setOf("False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case self cls " +
		"abs all any ascii bin bool breakpoint bytearray bytes callable chr classmethod compile complex delattr dict dir divmod enumerate eval exec filter float format frozenset getattr globals hasattr hash help hex id input int isinstance issubclass iter len list locals map max memoryview min next object oct open ord pow print property range repr reversed round set setattr slice sorted staticmethod str sum super tuple type vars zip __name__ __main__ __init__ args kwargs Exception ValueError TypeError KeyError IndexError"),
	langJS: setOf("break case catch class const continue debugger default delete do else export extends finally for function if import in instanceof let new return super switch this throw try typeof var void while with yield async await of static get set null undefined true false NaN Infinity arguments eval " +
		"Array Object String Number Boolean Math JSON Date Promise Map Set WeakMap Symbol Error RegExp console window document globalThis setTimeout clearTimeout setInterval clearInterval parseInt parseFloat isNaN require module exports process"),
	langGo: setOf("break case chan const continue default defer else fallthrough for func go goto if import interface map package range return select struct switch type var " +
		"bool byte complex64 complex128 error float32 float64 int int8 int16 int32 int64 rune string uint uint8 uint16 uint32 uint64 uintptr any comparable true false iota nil " +
		"append cap clear close complex copy delete imag len make max min new panic print println real recover _"),
}

func setOf(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

func joinTokens(toks []token) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t.text)
	}
	return b.String()
}
