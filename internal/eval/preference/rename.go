package preference

import (
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
)

// This file renames local identifiers of a code snippet consistently and
// varies its spacing without changing behaviour. It is deliberately
// conservative: a name is renamed only when the snippet declares it
// (assignment, parameter, loop variable, let/const/var, :=) and it is never
// used where renaming could change meaning: after a dot, as a keyword
// argument or object/composite-literal key, inside a string literal (which
// also covers f-strings and template literals), on an import line, as a
// function or class name, or when it is a keyword, a builtin or starts with
// an upper-case letter.

// sig returns the indexes of the significant tokens (not space, newline
// or comment).
func sig(toks []token) []int {
	var s []int
	for i, t := range toks {
		if t.kind != tkSpace && t.kind != tkNewline && t.kind != tkComment {
			s = append(s, i)
		}
	}
	return s
}

// declared returns the names a snippet declares and may be renamed.
func declared(toks []token, lang string) map[string]bool {
	s := sig(toks)
	at := func(k int) token {
		if k < 0 || k >= len(s) {
			return token{}
		}
		return toks[s[k]]
	}
	isP := func(k int, p ...string) bool {
		t := at(k)
		if t.kind != tkPunct {
			return false
		}
		for _, q := range p {
			if t.text == q {
				return true
			}
		}
		return false
	}
	isW := func(k int, w string) bool { t := at(k); return t.kind == tkIdent && t.text == w }
	// firstOnLine reports whether significant token k starts a line.
	firstOnLine := func(k int) bool {
		for j := s[k] - 1; j >= 0; j-- {
			switch toks[j].kind {
			case tkNewline:
				return true
			case tkSpace:
				continue
			default:
				return false
			}
		}
		return true
	}
	out := map[string]bool{}
	add := func(k int) {
		if t := at(k); t.kind == tkIdent {
			out[t.text] = true
		}
	}
	// params adds the identifiers of the parameter list opening at
	// significant index open ("("), returning the index after it.
	params := func(open int) {
		depth := 0
		for k := open; k < len(s); k++ {
			switch {
			case isP(k, "(", "[", "{"):
				depth++
			case isP(k, ")", "]", "}"):
				depth--
				if depth == 0 {
					return
				}
			case depth == 1 && at(k).kind == tkIdent && isP(k-1, "(", ",", "*", "**", "..."):
				if lang == langGo {
					// Go: "a, b int" — a name is followed by a type or a comma.
					if isP(k+1, ")") || isP(k+1, ".") {
						continue // an unnamed type
					}
				}
				add(k)
			}
		}
	}
	for k := range s {
		t := at(k)
		switch lang {
		case langPython:
			switch {
			case isW(k, "def") && isP(k+2, "("):
				params(k + 2)
			case isW(k, "lambda"):
				for j := k + 1; j < len(s) && !isP(j, ":"); j++ {
					if at(j).kind == tkIdent && (j == k+1 || isP(j-1, ",", "*", "**")) {
						add(j)
					}
				}
			case isW(k, "for"):
				for j := k + 1; j < len(s) && !isW(j, "in"); j++ {
					add(j)
				}
			case isW(k, "as"):
				add(k + 1)
			case t.kind == tkIdent && firstOnLine(k):
				// a, b = ... or x += ...
				j := k
				for at(j).kind == tkIdent && isP(j+1, ",") {
					j += 2
				}
				if at(j).kind == tkIdent && isP(j+1, "=", "+=", "-=", "*=", "/=", "//=", "%=", "**=", "|=", "&=", "^=", "<<=", ">>=") {
					for q := k; q <= j; q += 2 {
						add(q)
					}
				}
			}
		case langJS:
			switch {
			case isW(k, "let") || isW(k, "const") || isW(k, "var"):
				add(k + 1)
			case isW(k, "function"):
				if isP(k+1, "(") {
					params(k + 1)
				} else if isP(k+2, "(") {
					params(k + 2)
				}
			case isW(k, "catch") && isP(k+1, "("):
				add(k + 2)
			case isP(k, "=>"):
				if isP(k-1, ")") {
					depth := 0
					for j := k - 1; j >= 0; j-- {
						if isP(j, ")") {
							depth++
						} else if isP(j, "(") {
							depth--
							if depth == 0 {
								params(j)
								break
							}
						}
					}
				} else {
					add(k - 1)
				}
			}
		case langGo:
			switch {
			case isP(k, ":="):
				j := k - 1
				for at(j).kind == tkIdent {
					add(j)
					if !isP(j-1, ",") {
						break
					}
					j -= 2
				}
			case isW(k, "var"):
				add(k + 1)
			case isW(k, "func"):
				j := k + 1
				if isP(j, "(") { // receiver or func literal
					params(j)
					depth := 0
					for ; j < len(s); j++ {
						if isP(j, "(") {
							depth++
						} else if isP(j, ")") {
							depth--
							if depth == 0 {
								break
							}
						}
					}
					j++
				}
				if at(j).kind == tkIdent && isP(j+1, "(") {
					params(j + 1)
				}
			}
		}
	}
	return out
}

// excluded returns the names that must keep their spelling.
func excluded(toks []token, lang string) map[string]bool {
	s := sig(toks)
	at := func(k int) token {
		if k < 0 || k >= len(s) {
			return token{}
		}
		return toks[s[k]]
	}
	isP := func(k int, p ...string) bool {
		t := at(k)
		if t.kind != tkPunct {
			return false
		}
		for _, q := range p {
			if t.text == q {
				return true
			}
		}
		return false
	}
	out := map[string]bool{}
	var stack []string // open brackets
	importLine := false
	for k := range s {
		t := at(k)
		if k > 0 && toks[s[k]-1].kind == tkNewline || k == 0 {
			importLine = false
		}
		if lineStartsImport(toks, s[k]) {
			importLine = true
		}
		switch {
		case isP(k, "(", "[", "{"):
			stack = append(stack, t.text)
		case isP(k, ")", "]", "}") && len(stack) > 0:
			stack = stack[:len(stack)-1]
		}
		if t.kind != tkIdent {
			continue
		}
		inner := ""
		if len(stack) > 0 {
			inner = stack[len(stack)-1]
		}
		prev := at(k - 1)
		switch {
		case importLine:
			out[t.text] = true
		case isP(k-1, ".", "?."):
			out[t.text] = true
		case prev.kind == tkIdent && (prev.text == "def" || prev.text == "class" || prev.text == "function" || prev.text == "type"):
			out[t.text] = true
		case lang == langGo && prev.kind == tkIdent && prev.text == "func":
			out[t.text] = true
		case lang == langGo && isP(k-1, ")") && isP(k+1, "(") && funcAfterReceiver(toks, s, k):
			out[t.text] = true // method name
		case lang == langPython && inner == "(" && isP(k+1, "="):
			out[t.text] = true // keyword argument (or default; kept to be safe)
		case lang != langPython && isP(k+1, ":"):
			out[t.text] = true // object or composite-literal key, label
		case lang == langJS && inner == "{" && isP(k-1, "{", ",") && isP(k+1, "}", ",", "="):
			out[t.text] = true // shorthand property or destructuring
		}
	}
	// Names that strings can reach keep their spelling: words inside
	// f-string braces and template-literal ${...}, and every word of every
	// string when the snippet looks names up dynamically (eval, getattr,
	// locals, ...). Go strings cannot reach local names.
	dynamic := false
	for k := range s {
		if t := at(k); t.kind == tkIdent && dynamicLookup[lang][t.text] && isP(k+1, "(") {
			dynamic = true
		}
	}
	for _, t := range toks {
		if t.kind != tkString || lang == langGo {
			continue
		}
		text := t.text
		if !dynamic {
			text = interpolated(t.text, lang)
		}
		for _, w := range wordRE.FindAllString(text, -1) {
			out[w] = true
		}
	}
	for name := range classAttributes(toks, lang) {
		out[name] = true
	}
	return out
}

var dynamicLookup = map[string]map[string]bool{
	langPython: setOf("eval exec getattr setattr hasattr delattr locals globals vars"),
	langJS:     setOf("eval Function with"),
}

// interpolated returns the parts of a string literal that are code: the
// braces of a Python f-string, the ${...} of a JavaScript template literal.
func interpolated(lit, lang string) string {
	switch lang {
	case langPython:
		prefix := strings.ToLower(lit[:strings.IndexAny(lit, "'\"")])
		if !strings.Contains(prefix, "f") {
			return ""
		}
		var b strings.Builder
		depth := 0
		for _, r := range lit {
			switch {
			case r == '{':
				depth++
				b.WriteByte(' ')
			case r == '}':
				depth--
				b.WriteByte(' ')
			case depth > 0:
				b.WriteRune(r)
			}
		}
		return b.String()
	case langJS:
		if !strings.HasPrefix(lit, "`") {
			return ""
		}
		var b strings.Builder
		for rest := lit; ; {
			i := strings.Index(rest, "${")
			if i < 0 {
				break
			}
			j := strings.Index(rest[i:], "}")
			if j < 0 {
				b.WriteString(rest[i:])
				break
			}
			b.WriteString(rest[i+2 : i+j])
			b.WriteByte(' ')
			rest = rest[i+j:]
		}
		return b.String()
	}
	return ""
}

// classAttributes returns the names a Python class body assigns directly:
// they are attributes that code outside the snippet may read.
func classAttributes(toks []token, lang string) map[string]bool {
	out := map[string]bool{}
	if lang != langPython {
		return out
	}
	classIndent := -1 // indentation of the enclosing class line, -1 when none
	bodyIndent := -1
	for _, line := range splitLines(toks) {
		first := -1
		for i, t := range line {
			if t.kind != tkSpace {
				first = i
				break
			}
		}
		if first < 0 || line[first].kind == tkNewline || line[first].kind == tkComment {
			continue
		}
		indent := 0
		if first > 0 {
			indent = len(strings.ReplaceAll(line[0].text, "\t", "        "))
		}
		if classIndent >= 0 && indent <= classIndent {
			classIndent, bodyIndent = -1, -1
		}
		t := line[first]
		if t.kind == tkIdent && t.text == "class" {
			classIndent, bodyIndent = indent, -1
			continue
		}
		if classIndent >= 0 {
			if bodyIndent < 0 {
				bodyIndent = indent
			}
			if indent == bodyIndent && t.kind == tkIdent {
				out[t.text] = true
			}
		}
	}
	return out
}

// splitLines groups tokens by line; a multi-line string stays in the line
// it starts on.
func splitLines(toks []token) [][]token {
	var lines [][]token
	var cur []token
	for _, t := range toks {
		cur = append(cur, t)
		if t.kind == tkNewline {
			lines = append(lines, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		lines = append(lines, cur)
	}
	return lines
}

var wordRE = regexp.MustCompile(`[A-Za-z_$][A-Za-z0-9_$]*`)

// lineStartsImport reports whether token i is the first significant token
// of a line that begins with import, from or require.
func lineStartsImport(toks []token, i int) bool {
	if toks[i].kind != tkIdent || (toks[i].text != "import" && toks[i].text != "from") {
		return false
	}
	for j := i - 1; j >= 0; j-- {
		switch toks[j].kind {
		case tkNewline:
			return true
		case tkSpace:
			continue
		default:
			return false
		}
	}
	return true
}

// funcAfterReceiver reports whether the identifier at significant index k
// follows "func (receiver)".
func funcAfterReceiver(toks []token, s []int, k int) bool {
	depth := 0
	for j := k - 1; j >= 0; j-- {
		t := toks[s[j]]
		if t.kind == tkPunct && t.text == ")" {
			depth++
		} else if t.kind == tkPunct && t.text == "(" {
			depth--
			if depth == 0 {
				return j > 0 && toks[s[j-1]].kind == tkIdent && toks[s[j-1]].text == "func"
			}
		}
	}
	return false
}

var namePool = strings.Fields("acc alpha beta bucket cell chunk cur cursor datum delta elem entry gamma item mark node part piece pivot probe slot step tally temp unit val vessel")

// renameCode renames the declared local identifiers of code written in lang
// and varies its spacing, returning the new code and the renames
// (old → new). Unknown languages are returned unchanged.
func renameCode(code, lang string, rng *rand.Rand) (string, map[string]string) {
	if lang == "" {
		return code, nil
	}
	toks := tokenize(code, lang)
	if joinTokens(toks) != code {
		return code, nil // never risk a lossy rewrite
	}
	decl := declared(toks, lang)
	excl := excluded(toks, lang)
	kw := keywords[lang]
	used := map[string]bool{}
	for _, t := range toks {
		if t.kind == tkIdent {
			used[t.text] = true
		}
		if t.kind == tkString || t.kind == tkComment {
			for _, w := range wordRE.FindAllString(t.text, -1) {
				used[w] = true
			}
		}
	}
	var names []string
	for n := range decl {
		if excl[n] || kw[n] || n == "_" || n[0] >= 'A' && n[0] <= 'Z' {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	renames := map[string]string{}
	for _, n := range names {
		for try := 0; ; try++ {
			cand := namePool[rng.IntN(len(namePool))]
			if try >= len(namePool) {
				cand += string(rune('0' + try%10))
			}
			if !used[cand] && !kw[cand] && !keywords[langPython][cand] && !keywords[langJS][cand] && !keywords[langGo][cand] {
				renames[n] = cand
				used[cand] = true
				break
			}
		}
	}
	commaSpace := rng.IntN(2) == 0
	for i := range toks {
		t := &toks[i]
		switch t.kind {
		case tkIdent:
			if r, ok := renames[t.text]; ok {
				t.text = r
			}
		case tkComment:
			t.text = wordRE.ReplaceAllStringFunc(t.text, func(w string) string {
				if r, ok := renames[w]; ok {
					return r
				}
				return w
			})
		}
	}
	// Spacing after commas inside brackets: "a, b" or "a,b".
	var out []token
	for i, t := range toks {
		out = append(out, t)
		if t.kind != tkPunct || t.text != "," || i+1 >= len(toks) {
			continue
		}
		next := toks[i+1]
		switch {
		case next.kind == tkSpace && i+2 < len(toks) && toks[i+2].kind != tkNewline && toks[i+2].kind != tkComment && !commaSpace:
			toks[i+1].text = ""
		case next.kind != tkSpace && next.kind != tkNewline && commaSpace:
			out = append(out, token{tkSpace, " "})
		}
	}
	// A trailing space on some lines (never after a line continuation).
	var b strings.Builder
	for i, t := range out {
		if t.kind == tkNewline && i > 0 && out[i-1].kind != tkSpace && !(out[i-1].kind == tkPunct && out[i-1].text == "\\") && rng.IntN(3) == 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return b.String(), renames
}
