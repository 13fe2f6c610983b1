package patch

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// policyReadLimit caps each file the applied-tree screen reads; the
// sandbox caps their sum (sandbox.DefaultOutputLimit).
const policyReadLimit = 1 << 20

// screenApplied screens the files the candidate changed, as patched (read
// inside the sandbox): init-time Go code, import-time Python code and
// pytest sections of setup.cfg and pyproject.toml, where a line's
// meaning depends on context the diff may not show. Only added lines, or
// init code an added line reaches into, count, so a fix to a file that
// already did such things is not blamed for them.
func (ws *workspace) screenApplied(ctx context.Context, diff string, p Policy) ([]PolicyViolation, error) {
	want, added := appliedTargets(diff)
	if len(want) == 0 {
		return nil, nil
	}
	var dirs []string
	for _, name := range want {
		if d := path.Dir(name); strings.HasSuffix(name, ".go") && !contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	files, complete, err := ws.readFiles(ctx, want, dirs)
	if err != nil {
		return nil, err
	}
	return screenFiles(p, want, added, files, complete), nil
}

// appliedTargets lists the files screenApplied reads — changed non-test
// Go and Python files, setup.cfg and pyproject.toml with added lines —
// and each one's added lines.
func appliedTargets(diff string) (want []string, added map[string]map[string]bool) {
	added = map[string]map[string]bool{}
	for _, c := range parseChanges(diff) {
		for _, name := range c.paths {
			base := path.Base(name)
			code := (strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".py")) && !isTestPath(name)
			if !code && base != "setup.cfg" && base != "pyproject.toml" || len(c.added) == 0 {
				continue
			}
			if added[name] == nil {
				added[name] = map[string]bool{}
				want = append(want, name)
			}
			for _, l := range c.added {
				added[name][l.text] = true
			}
		}
	}
	sort.Strings(want)
	return want, added
}

// screenFiles screens the patched contents of the files in want.
func screenFiles(p Policy, want []string, added map[string]map[string]bool, files map[string][]byte, complete bool) []PolicyViolation {
	vs := violations{policy: p}
	if !complete && len(want) > 0 {
		vs.add("screen-size", want[0], 0)
	}
	screenGoInit(&vs, files, added)
	for _, name := range want {
		src, ok := files[name]
		switch {
		case !ok:
		case strings.HasSuffix(name, ".py"):
			screenPyImport(&vs, name, src, added[name])
		case !strings.HasSuffix(name, ".go"):
			screenConfigSections(&vs, name, src, added[name])
		}
	}
	return vs.sorted()
}

// readFiles reads, inside the sandbox, the regular files names of the
// work tree and then, as context, the non-test Go files of the
// directories dirs (where init code that calls a changed function may
// live), at most policyReadLimit bytes each. complete is false when one
// of names was cut; context files that do not fit are left out.
func (ws *workspace) readFiles(ctx context.Context, names, dirs []string) (files map[string][]byte, complete bool, err error) {
	for file, list := range map[string][]string{"policy-files": names, "policy-dirs": dirs} {
		if err := os.WriteFile(filepath.Join(ws.in, file), []byte(strings.Join(list, "\x00")+"\x00"), 0o644); err != nil {
			return nil, false, err
		}
	}
	res, err := ws.sandboxGit(ctx, `emit() {
	if [ -f "/work/$2" ] && [ ! -L "/work/$2" ]; then
		printf '%s\0%s\0%s\0' "$1" "$2" "$(stat -c %s -- "/work/$2")"
		head -c `+strconv.Itoa(policyReadLimit)+` -- "/work/$2"
	fi
}
while IFS= read -r -d '' p; do emit W "$p"; done < /in/policy-files
while IFS= read -r -d '' d; do
	for f in "/work/$d"/*.go; do
		case "$f" in *_test.go) continue ;; esac
		p=${f#/work/}
		emit C "${p#./}"
	done
done < /in/policy-dirs
`)
	if err != nil {
		return nil, false, err
	}
	files, complete = map[string][]byte{}, true
	out := res.Stdout
	for len(out) > 0 {
		f := bytes.SplitN(out, []byte{0}, 4)
		if len(f) < 4 {
			return files, complete && res.ExitCode == 0 && (len(f) == 0 || string(f[0]) != "W"), nil
		}
		wanted := string(f[0]) == "W"
		size, err := strconv.Atoi(string(f[2]))
		if err != nil || size < 0 {
			return files, complete && !wanted, nil
		}
		avail := min(size, policyReadLimit)
		n := min(avail, len(f[3]))
		if n < avail { // the output was cut here
			return files, complete && !wanted, nil
		}
		out = f[3][n:]
		if size > policyReadLimit {
			complete = complete && !wanted
			continue
		}
		files[string(f[1])] = f[3][:n]
	}
	return files, complete && res.ExitCode == 0, nil
}

// goInitCalls maps what init-time Go code may reach to a rule: package
// path → selector → rule ("*": any selector of the package). log.Fatal
// is left out: it always exits 1, which fails the package and forges
// nothing, and real code calls it from initialisers.
var goInitCalls = map[string]map[string]string{
	"os":                    {"Exit": "go-init-exit", "Args": "go-init-args", "Executable": "go-init-reexec", "StartProcess": "go-init-reexec", "Stdout": "go-init-output", "NewFile": "go-init-output"},
	"syscall":               {"Exit": "go-init-exit", "Exec": "go-init-reexec", "ForkExec": "go-init-reexec", "StartProcess": "go-init-reexec", "Write": "go-init-output", "Stdout": "go-init-output"},
	"golang.org/x/sys/unix": {"Exit": "go-init-exit", "Exec": "go-init-reexec"},
	"flag":                  {"*": "go-init-args"},
	"os/exec":               {"*": "go-init-reexec"},
	"fmt":                   {"Print": "go-init-output", "Printf": "go-init-output", "Println": "go-init-output"},
	"testing":               {"*": "go-test-internals"},
}

// screenGoInit finds, per package directory, code that runs at init time
// — func init bodies and package-level var initialisers, and the
// package's functions they call, transitively — and flags the calls in
// goInitCalls (and the print builtins) when the offending line, or the
// init code that reaches it, was added.
func screenGoInit(vs *violations, files map[string][]byte, added map[string]map[string]bool) {
	type goFile struct {
		name    string
		file    *ast.File
		lines   []string
		imports map[string]string
	}
	dirs := map[string][]goFile{}
	fset := token.NewFileSet()
	for name, src := range files {
		if !strings.HasSuffix(name, ".go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
		if err != nil {
			continue // it will not compile, so it cannot run either
		}
		imports := map[string]string{}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			local := path.Base(p)
			if im.Name != nil {
				local = im.Name.Name
			}
			imports[local] = p
		}
		dirs[path.Dir(name)] = append(dirs[path.Dir(name)], goFile{name, f, strings.Split(string(src), "\n"), imports})
	}
	for _, pkg := range dirs {
		funcs := map[string][]*ast.FuncDecl{}
		owner := map[ast.Node]goFile{}
		type root struct {
			node ast.Node
			in   goFile
		}
		var roots []root
		for _, gf := range pkg {
			for _, d := range gf.file.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Body == nil {
						continue
					}
					owner[d] = gf
					if d.Recv == nil && d.Name.Name == "init" {
						roots = append(roots, root{d, gf})
					} else {
						funcs[d.Name.Name] = append(funcs[d.Name.Name], d)
					}
				case *ast.GenDecl:
					if d.Tok == token.VAR {
						roots = append(roots, root{d, gf})
					}
				}
			}
		}
		addedIn := func(gf goFile, from, to token.Pos) bool {
			a, b := fset.Position(from).Line, fset.Position(to).Line
			for l := a; l <= b && l-1 < len(gf.lines); l++ {
				if added[gf.name][strings.TrimSuffix(gf.lines[l-1], "\r")] {
					return true
				}
			}
			return false
		}
		for _, r := range roots {
			rootAdded := addedIn(r.in, r.node.Pos(), r.node.End())
			seen := map[*ast.FuncDecl]bool{}
			var walk func(n ast.Node, gf goFile)
			walk = func(n ast.Node, gf goFile) {
				ast.Inspect(n, func(n ast.Node) bool {
					rule := ""
					switch n := n.(type) {
					case *ast.SelectorExpr:
						if x, ok := n.X.(*ast.Ident); ok {
							if sels := goInitCalls[gf.imports[x.Name]]; sels != nil {
								rule = sels[n.Sel.Name]
								if rule == "" {
									rule = sels["*"]
								}
							}
						}
						// Any method of that name may be the one called.
						for _, d := range funcs[n.Sel.Name] {
							if d.Recv != nil && !seen[d] {
								seen[d] = true
								walk(d.Body, owner[d])
							}
						}
					case *ast.Ident:
						if n.Name == "print" || n.Name == "println" {
							rule = "go-init-output"
						}
						for _, d := range funcs[n.Name] {
							if d.Recv == nil && !seen[d] {
								seen[d] = true
								walk(d.Body, owner[d])
							}
						}
					}
					if rule != "" && (rootAdded || addedIn(gf, n.Pos(), n.End())) {
						vs.add(rule, gf.name, fset.Position(n.Pos()).Line)
					}
					return true
				})
			}
			walk(r.node, r.in)
		}
	}
}

// Import-time Python patterns, checked on added lines that run when the
// module is imported.
var pyImportRules = []struct {
	rule string
	re   *regexp.Regexp
}{
	{"py-import-exit", regexp.MustCompile(`\bsys\.exit\b|(^|[^.\w])(exit|quit)\s*\(|\bos\.(kill|abort|killpg)\b|\bsignal\.(signal|alarm|setitimer)\b|\bSystemExit\b`)},
	{"py-import-argv", regexp.MustCompile(`\bsys\.(orig_)?argv\b|from\s+sys\s+import\s+.*\bargv\b`)},
	{"py-import-reexec", regexp.MustCompile(`\bsubprocess\.\w+|\bos\.(exec\w*|spawn\w*|system|popen|fork\w*|posix_spawn\w*)\b|\bsys\.executable\b|\bpty\.spawn\b|\bmultiprocessing\.\w+`)},
}

// screenPyImport flags added lines of a Python module that run at import
// time and match pyImportRules.
func screenPyImport(vs *violations, name string, src []byte, added map[string]bool) {
	lines := strings.Split(string(src), "\n")
	atImport, code, defOf := pyImportTime(lines)
	pyReachedDefs(atImport, code, defOf)
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		if !atImport[i] || !added[line] || pyDefinition.MatchString(code[i]) {
			continue
		}
		for _, r := range pyImportRules {
			if r.re.MatchString(code[i]) {
				vs.add(r.rule, name, i+1)
			}
		}
	}
}

// pyDefinition matches def and class headers, whose bodies do not run
// where they stand (a method may well be named exit).
var pyDefinition = regexp.MustCompile(`^\s*(async\s+def|def|class)\s`)

var pyMainGuard = regexp.MustCompile(`^if\s+__name__\s*==\s*['"]__main__['"]\s*:`)

// pyImportTime reports, per line, whether it belongs to a statement that
// runs when the module is imported: anything outside function bodies and
// `if __name__ == "__main__":` blocks (class bodies, decorators and
// module-level if/try/with blocks run at import). It follows indentation,
// brackets, backslash continuations and strings, not the full grammar; a
// one-line `def f(): ...` counts as import time, which errs strict.
// code holds each line without comments and string contents, so that
// text in a docstring or message matches no rule. defOf names, for lines
// in the body of a function defined at import time (module level or in a
// class body), that function.
func pyImportTime(lines []string) (atImport []bool, code, defOf []string) {
	type block struct {
		indent  int
		runtime bool
		def     string
	}
	var stack []block
	out := make([]bool, len(lines))
	code, defOf = make([]string, len(lines)), make([]string, len(lines))
	quote, depth, cont := "", 0, false
	logical, first, indent := false, "", 0
	for i, raw := range lines {
		line := strings.TrimSuffix(raw, "\r")
		if quote == "" && depth == 0 && !cont {
			text := strings.TrimLeft(line, " \t")
			if text == "" || text[0] == '#' {
				continue
			}
			indent = len(line) - len(text)
			for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
				stack = stack[:len(stack)-1]
			}
			logical = len(stack) == 0 || !stack[len(stack)-1].runtime
			first = text
		}
		out[i] = logical
		for _, b := range stack {
			if b.def != "" {
				defOf[i] = b.def
				break
			}
		}
		cont = false
		last := byte(0)
		var kept strings.Builder
		for j := 0; j < len(line); j++ {
			c := line[j]
			if quote == "" && c != '#' {
				kept.WriteByte(c)
			}
			if quote != "" {
				switch {
				case c == '\\':
					j++
				case strings.HasPrefix(line[j:], quote):
					j += len(quote) - 1
					quote = ""
				}
				continue
			}
			switch c {
			case '#':
				j = len(line)
				continue
			case '"', '\'':
				quote = string(c)
				if strings.HasPrefix(line[j:], strings.Repeat(string(c), 3)) {
					quote = strings.Repeat(string(c), 3)
					j += 2
				}
			case '(', '[', '{':
				depth++
			case ')', ']', '}':
				depth = max(depth-1, 0)
			case '\\':
				if j == len(line)-1 {
					cont = true
				}
			}
			if c != ' ' && c != '\t' {
				last = c
			}
		}
		code[i] = kept.String()
		if len(quote) == 1 {
			quote = "" // an unterminated short string ends with its line
		}
		if quote == "" && depth == 0 && !cont && last == ':' {
			outer := len(stack) > 0 && stack[len(stack)-1].runtime
			def := ""
			if m := pyDefName.FindStringSubmatch(first); m != nil && !outer {
				def = m[1]
			}
			runtime := outer || pyDefName.MatchString(first) || pyMainGuard.MatchString(first)
			stack = append(stack, block{indent: indent, runtime: runtime, def: def})
		}
	}
	return out, code, defOf
}

var (
	pyDefName = regexp.MustCompile(`^(?:async\s+)?def\s+(\w+)`)
	pyCalled  = regexp.MustCompile(`@\s*([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*\(`)
)

// pyReachedDefs marks as import time the bodies of the module's
// functions that import-time code calls (or applies as a decorator),
// transitively, so a module-level `_boot()` does not hide what _boot
// does. Calls are matched by name, which errs strict.
func pyReachedDefs(atImport []bool, code, defOf []string) {
	reached := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for i := range code {
			if defOf[i] != "" && reached[defOf[i]] && !atImport[i] {
				atImport[i], changed = true, true
			}
			if !atImport[i] || pyDefinition.MatchString(code[i]) {
				continue
			}
			for _, m := range pyCalled.FindAllStringSubmatch(code[i], -1) {
				if name := m[1] + m[2]; !reached[name] {
					reached[name], changed = true, true
				}
			}
		}
	}
}

var (
	iniSection     = regexp.MustCompile(`^\s*\[+\s*([^\]]+?)\s*\]+`)
	pytestSection  = regexp.MustCompile(`^(tool[:.]pytest\b|pytest$)`)
	mentionsPytest = regexp.MustCompile(`(?i)^\s*\[?\s*(tool[.:])?pytest\b`)
)

// screenConfigSections flags added lines of setup.cfg or pyproject.toml
// that configure pytest: inside a pytest section ([tool:pytest],
// [tool.pytest.ini_options], [pytest]) or a pytest key elsewhere (a
// dotted TOML key such as tool.pytest.ini_options.addopts); a
// dependency on pytest is not configuration.
func screenConfigSections(vs *violations, name string, src []byte, added map[string]bool) {
	section := ""
	for i, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if m := iniSection.FindStringSubmatch(line); m != nil {
			section = m[1]
		}
		if added[line] && (pytestSection.MatchString(section) || mentionsPytest.MatchString(line)) {
			vs.add("pytest-config", name, i+1)
		}
	}
}
