package patch

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The policy screen refuses candidate patches that reach for the judge's
// machinery instead of the bug: test-runner configuration and start-up
// hooks, modules that shadow the runner, code that runs at import or init
// time and exits, reads the command line, re-executes the test binary or
// touches the test framework's internals. It runs before any test, in two
// passes: screenPolicy reads the diff alone (paths and added lines);
// screenApplied reads the patched files the diff changed (init-time Go
// code, import-time Python code, pytest sections of shared config files).
// It is a screen, not a proof: code built to hide from patterns (getattr
// with computed names, eval) passes it, which is why verdicts do not rest
// on it alone.

// PolicyViolation is one rule a candidate patch broke.
type PolicyViolation struct {
	// Rule is the stable rule name (see PolicyRules).
	Rule string `json:"rule"`
	// File is the path in the repository; Line the line in the patched
	// file (0 when the whole file is at fault).
	File string `json:"file"`
	Line int    `json:"line,omitempty"`
	// Reason says what the rule guards against.
	Reason string `json:"reason"`
}

func (v PolicyViolation) String() string {
	where := v.File
	if v.Line > 0 {
		where += ":" + strconv.Itoa(v.Line)
	}
	return fmt.Sprintf("%s: %s (%s)", v.Rule, where, v.Reason)
}

// Policy configures the screen for one competition. The zero value is
// strict: every rule applies.
type Policy struct {
	// Allow names rules this competition relaxes.
	Allow []string `json:"allow,omitempty"`
}

// Validate refuses rule names the screen does not know, so a typo cannot
// silently leave a rule on or make a config look stricter than it is.
func (p Policy) Validate() error {
	for _, name := range p.Allow {
		if _, ok := ruleReasons[name]; !ok {
			return fmt.Errorf("policy: unknown rule %q (known: %s)", name, strings.Join(PolicyRules(), ", "))
		}
	}
	return nil
}

func (p Policy) allows(rule string) bool {
	for _, a := range p.Allow {
		if a == rule {
			return true
		}
	}
	return false
}

// ruleReasons maps each rule name to the reason given in a violation.
var ruleReasons = map[string]string{
	"pytest-config":     "changes pytest configuration or plugins (conftest.py, pytest.ini, .pytest.ini, tox.ini, a pytest section of setup.cfg or pyproject.toml), which can rewrite test outcomes",
	"runner-shadow":     "adds or changes a module that shadows the test runner (pytest.py, py.py, _pytest/)",
	"python-startup":    "changes an interpreter start-up hook (sitecustomize.py, usercustomize.py, *.pth) or ships bytecode, which runs before any test",
	"py-test-framework": "touches the test framework's internals outside test files (_pytest, pytest hooks, TestReport, sys.modules['pytest'])",
	"py-skip":           "skips or expects failure of tests from code under test (pytest.skip, pytest.xfail, SkipTest)",
	"py-hard-exit":      "ends the process with os._exit or registers an exit hook (atexit), which bypass or rewrite the test runner's reporting",
	"py-import-exit":    "exits or signals the process at import time (sys.exit, exit, os.kill, signal)",
	"py-import-argv":    "reads the command line at import time (sys.argv), as code that detects the test runner does",
	"py-import-reexec":  "starts processes at import time (subprocess, os.exec*, os.system, sys.executable), as code that re-runs the tests does",
	"go-testmain":       "defines TestMain, which takes over the test binary",
	"go-mod-directive":  "adds a replace or toolchain directive to go.mod, or changes go.work, which swaps dependencies or the toolchain",
	"go-vendor":         "changes a vendor/ directory, which replaces packages (the testing package included) the tests build against",
	"go-test-internals": "reaches into the testing package's internals or test flags outside test files (go:linkname, testing.MainStart, testing.Init, -test.* flags)",
	"go-hard-exit":      "ends the process with syscall.Exit, bypassing the testing package's exit checks",
	"go-init-exit":      "exits the process at init time (os.Exit, syscall.Exit)",
	"go-init-args":      "reads the command line at init time (os.Args, the flag package), as code that detects the test binary does",
	"go-init-reexec":    "starts or re-executes processes at init time (os.Executable, syscall.Exec, os/exec, os.StartProcess)",
	"go-init-output":    "writes to standard output at init time, where it could forge test framework output",
	"screen-size":       "changes source files too large for the policy screen to read (over 1 MiB each, or 4 MiB in all)",
}

// PolicyRules lists the rule names, sorted.
func PolicyRules() []string {
	names := make([]string, 0, len(ruleReasons))
	for n := range ruleReasons {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// violations collects PolicyViolations under a policy, one per rule and
// file, in a stable order.
type violations struct {
	policy Policy
	seen   map[string]bool
	list   []PolicyViolation
}

func (vs *violations) add(rule, file string, line int) {
	key := rule + "\x00" + file
	if vs.policy.allows(rule) || vs.seen[key] {
		return
	}
	if vs.seen == nil {
		vs.seen = map[string]bool{}
	}
	vs.seen[key] = true
	vs.list = append(vs.list, PolicyViolation{Rule: rule, File: file, Line: line, Reason: ruleReasons[rule]})
}

func (vs *violations) sorted() []PolicyViolation {
	sort.SliceStable(vs.list, func(i, j int) bool {
		a, b := vs.list[i], vs.list[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Rule < b.Rule
	})
	return vs.list
}

// diffLine is a line a diff adds, with its line number in the new file.
type diffLine struct {
	n    int
	text string
}

// diffChange is what a diff does to one file.
type diffChange struct {
	paths []string // every name the diff gives the file (old, new, renames)
	added []diffLine
}

// hasSuffix reports whether any name of the file ends with suffix.
func (c *diffChange) hasSuffix(suffix string) bool {
	for _, p := range c.paths {
		if strings.HasSuffix(p, suffix) {
			return true
		}
	}
	return false
}

// isTest reports whether every name of the file is a test path; a file
// with any other name is screened as code.
func (c *diffChange) isTest() bool {
	for _, p := range c.paths {
		if !isTestPath(p) {
			return false
		}
	}
	return len(c.paths) > 0
}

var hunkHeader = regexp.MustCompile(`^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@`)

// parseChanges lists the files a diff touches, each with every name the
// diff gives it — the diff --git names, rename and copy lines, the ---
// and +++ names, which the apply tools may each believe — and the lines
// it adds. Line numbers follow the hunk headers, which the author wrote;
// they locate a violation for a reader and decide nothing.
func parseChanges(diff string) []*diffChange {
	var out []*diffChange
	var cur *diffChange
	name := func(p string) {
		if p == "" || p == "/dev/null" {
			return
		}
		if cur == nil {
			cur = &diffChange{}
			out = append(out, cur)
		}
		if !contains(cur.paths, p) {
			cur.paths = append(cur.paths, p)
		}
	}
	start := func() {
		cur = &diffChange{}
		out = append(out, cur)
	}
	n, inHunk, header := 0, false, false
	for _, line := range strings.Split(diff, "\n") {
		line = strings.TrimSuffix(line, "\r")
		switch {
		case strings.HasPrefix(line, "diff --git "):
			start()
			rest := strings.TrimPrefix(line, "diff --git ")
			if i := strings.LastIndex(rest, " b/"); i >= 0 {
				name(stripPrefix(rest[:i]))
			}
			name(diffGitPath(line))
			inHunk, header = false, true
		case !inHunk && strings.HasPrefix(line, "--- "):
			if !header {
				start()
			}
			name(stripPrefix(strings.TrimSpace(line[4:])))
			header = true
		case !inHunk && strings.HasPrefix(line, "+++ "):
			name(stripPrefix(strings.TrimSpace(line[4:])))
		case !inHunk && header && (strings.HasPrefix(line, "rename ") || strings.HasPrefix(line, "copy ")):
			if _, p, ok := strings.Cut(line, " from "); ok {
				name(p)
			} else if _, p, ok := strings.Cut(line, " to "); ok {
				name(p)
			}
		case strings.HasPrefix(line, "@@"):
			inHunk, header = true, false
			n = 0
			if m := hunkHeader.FindStringSubmatch(line); m != nil {
				n, _ = strconv.Atoi(m[1])
			}
		case inHunk && strings.HasPrefix(line, "+"):
			if cur != nil {
				cur.added = append(cur.added, diffLine{n: n, text: line[1:]})
			}
			n++
		case inHunk && strings.HasPrefix(line, " "):
			n++
		case inHunk && (strings.HasPrefix(line, "-") || strings.HasPrefix(line, `\`)):
		default:
			inHunk = false
		}
	}
	return out
}

// Line rules: patterns on added lines of files of one language outside
// tests, whatever the context. Go patterns marked code match the line
// with string literals and comments blanked, so code that merely
// mentions these names (a message, a pattern like this one) passes.
var (
	goLineRules = []struct {
		rule string
		code bool
		re   *regexp.Regexp
	}{
		{"go-test-internals", false, regexp.MustCompile(`^//go:linkname\s|^\s*(\w+\s+|[_.]\s+)?"testing/internal|"-?test\.(v|run|paniconexit0|testlogfile|timeout|count|list|failfast|skip|short)"`)},
		{"go-test-internals", true, regexp.MustCompile(`\btesting\.(MainStart|Init|RunTests|RunBenchmarks|RunExamples|M\b|InternalTest)`)},
		{"go-hard-exit", true, regexp.MustCompile(`\b(syscall|unix)\.(Exit|RawSyscall6?|Syscall6?)\s*\(`)},
		{"go-testmain", true, regexp.MustCompile(`^func\s+TestMain\s*\(`)},
	}
	pyLineRules = []struct {
		rule string
		re   *regexp.Regexp
	}{
		{"py-test-framework", regexp.MustCompile(`\b_pytest\b|\bTestReport\b|\bhookimpl\b|\bhookwrapper\b|\bdef\s+pytest_\w+|\bpytest_plugins\b|sys\.modules\s*\[\s*['"]_?pytest|\bpytest\.\w+\s*=[^=]|\bpytest\.main\s*\(|import_module\(\s*['"]_?pytest|__import__\(\s*['"]_?pytest`)},
		{"py-skip", regexp.MustCompile(`\bpytest\.(skip|xfail|importorskip|exit)\b|\bSkipTest\b`)},
		{"py-hard-exit", regexp.MustCompile(`\bos\._exit\b|\bposix\._exit\b|\batexit\.\w+|\bfrom\s+atexit\s+import\b`)},
	}
)

// goCode blanks a Go line's string and rune literals and drops its line
// comment. A line inside a raw string spanning lines is read as code,
// which errs strict.
func goCode(line string) string {
	var b strings.Builder
	quote := byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == '\\' && quote != '`':
			i++
		case quote != 0:
			if c == quote {
				quote = 0
				b.WriteByte(c)
			}
		case c == '"' || c == '`' || c == '\'':
			quote = c
			b.WriteByte(c)
		case c == '/' && strings.HasPrefix(line[i:], "//"):
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// goModDirective matches go.mod lines that replace modules or pin a toolchain.
var goModDirective = regexp.MustCompile(`^\s*(replace|toolchain)\b|=>`)

// pytestNames are files pytest reads as its configuration or plugins.
var pytestNames = map[string]bool{"conftest.py": true, "pytest.ini": true, ".pytest.ini": true, "tox.ini": true}

// screenPolicy screens a diff without applying it: the paths it touches
// and the lines it adds, whatever their context.
func screenPolicy(diff string, p Policy) []PolicyViolation {
	vs := violations{policy: p}
	for _, c := range parseChanges(diff) {
		if len(c.paths) == 0 {
			continue
		}
		for _, name := range c.paths {
			screenPath(&vs, name)
		}
		file, test := c.paths[len(c.paths)-1], c.isTest()
		for _, l := range c.added {
			if c.hasSuffix("go.mod") && goModDirective.MatchString(l.text) {
				vs.add("go-mod-directive", file, l.n)
			}
			if c.hasSuffix(".go") {
				code := goCode(l.text)
				for _, r := range goLineRules {
					text := l.text
					if r.code {
						text = code
					}
					if r.re.MatchString(text) && (!test || r.rule == "go-testmain") {
						vs.add(r.rule, file, l.n)
					}
				}
			}
			if c.hasSuffix(".py") && !test {
				for _, r := range pyLineRules {
					if r.re.MatchString(l.text) {
						vs.add(r.rule, file, l.n)
					}
				}
			}
		}
	}
	return vs.sorted()
}

// screenPath applies the rules that a file's name alone decides.
func screenPath(vs *violations, name string) {
	base := path.Base(name)
	parts := strings.Split(name, "/")
	switch {
	case pytestNames[base]:
		vs.add("pytest-config", name, 0)
	case base == "pytest.py" || base == "py.py" || contains(parts[:len(parts)-1], "_pytest") || contains(parts[:len(parts)-1], "pytest"):
		vs.add("runner-shadow", name, 0)
	case base == "sitecustomize.py" || base == "usercustomize.py" || strings.HasSuffix(base, ".pth") ||
		strings.HasSuffix(base, ".pyc") || contains(parts, "__pycache__"):
		vs.add("python-startup", name, 0)
	case base == "go.work" || base == "go.work.sum":
		vs.add("go-mod-directive", name, 0)
	case contains(parts[:len(parts)-1], "vendor") && (strings.HasSuffix(base, ".go") || base == "modules.txt"):
		vs.add("go-vendor", name, 0)
	}
}
