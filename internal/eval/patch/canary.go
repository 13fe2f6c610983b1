package patch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// canary is a test the judge plants among the repository's tests before
// the run; only the judge knows its name and whether it must fail.
type canary struct {
	id   string // Go test name or pytest node id
	fail bool   // planted to fail
}

// canaryWords make canary names look like the tests around them.
var canaryWords = []string{"empty", "nil", "zero", "large", "unicode", "negative", "order", "repeat", "trim", "nested",
	"default", "reset", "limits", "boundary", "prefix", "suffix", "copy", "merge", "sorted", "single", "many", "spaces",
	"quoted", "escaped", "invalid", "missing", "twice", "inplace", "overflow", "roundtrip"}

var (
	goTestName = regexp.MustCompile(`^Test[A-Za-z0-9_]*$`)
	pyTestFile = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_./-]*\.py$`)
	identifier = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

// findGoTestFile prints the test file holding the first of the names
// given (else the first test file with a TestXxx(t *testing.T)), then the
// names of the functions declared in its directory.
const findGoTestFile = `show() { printf '%s\n' "$1"; grep -hoE '^func [A-Za-z0-9_]+' "$(dirname "$1")"/*.go | cut -c6-; exit 0; }
find_file() { grep -rlE --include='*_test.go' --exclude-dir=vendor --exclude-dir=testdata --exclude-dir=.git -e "^func $1\([A-Za-z_][A-Za-z0-9_]* \*testing\.T\)" . | LC_ALL=C sort | head -n1; }
for n in "$@" 'Test[A-Za-z0-9_]*'; do f=$(find_file "$n"); if [ -n "$f" ]; then show "$f"; fi; done
exit 3
`

// listPyTests prints the module-level functions of the test module $1.
const listPyTests = `[ -f "$1" ] && [ ! -L "$1" ] || exit 3
grep -oE '^def [A-Za-z0-9_]+' "$1" | cut -c5- || true
`

// plantCanaries appends two canaries that must pass and two that must
// fail, in the repository's naming style, to the test file (Go) or test
// module (pytest) holding the first decisive test. No canaries (logged)
// when no such file is found.
func (ws *workspace) plantCanaries(ctx context.Context, task Task) ([]canary, error) {
	decisive := append(append([]string(nil), task.FailToPass...), task.PassToPass...)
	var file, base string
	existing := map[string]bool{}
	if task.LogParser == ParserGoTest {
		var probes []string
		for _, n := range decisive {
			if top, _, _ := strings.Cut(n, "/"); goTestName.MatchString(top) {
				probes = append(probes, top)
			}
		}
		res, err := ws.sandboxGit(ctx, findGoTestFile, probes...)
		if err != nil {
			return nil, err
		}
		lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
		if res.ExitCode != 0 || lines[0] == "" {
			ws.logf("canaries: no Go test file found; none planted")
			return nil, nil
		}
		file = strings.TrimPrefix(lines[0], "./")
		for _, n := range lines[1:] {
			existing[n] = true
		}
		base = "Test"
		if len(probes) > 0 {
			base, _, _ = strings.Cut(probes[0], "_")
		}
	} else {
		for _, n := range decisive {
			f, fn, _ := strings.Cut(n, "::")
			if pyTestFile.MatchString(f) && !strings.Contains(f, "..") {
				file, base = f, fn
				break
			}
		}
		if file == "" {
			ws.logf("canaries: no test module among the decisive tests; none planted")
			return nil, nil
		}
		res, err := ws.sandboxGit(ctx, listPyTests, file)
		if err != nil {
			return nil, err
		}
		if res.ExitCode != 0 {
			ws.logf("canaries: test module %s is not a regular file; none planted", file)
			return nil, nil
		}
		for _, n := range strings.Fields(string(res.Stdout)) {
			existing[n] = true
		}
		if i := strings.LastIndex(base, "::"); i >= 0 {
			base = base[i+2:]
		}
		base, _, _ = strings.Cut(strings.TrimPrefix(base, "test_"), "_")
		if !identifier.MatchString(base) {
			base = ""
		}
	}
	canaries, code := canarySource(task.LogParser, file, base, existing)
	if err := os.WriteFile(filepath.Join(ws.in, "canaries"), []byte(code), 0o644); err != nil {
		return nil, err
	}
	res, err := ws.sandboxGit(ctx, `[ -f "$1" ] && [ ! -L "$1" ] || exit 3
cat /in/canaries >> "$1"
`, file)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		ws.logf("canaries: cannot append to %s; none planted", file)
		return nil, nil
	}
	ws.logf("canaries: %d planted in %s (names and expected outcomes known only to the judge until the run ends)", len(canaries), file)
	return canaries, nil
}

// canarySource returns four canaries (two failing, in random order) with
// fresh names and the code to append to file.
func canarySource(parser, file, base string, existing map[string]bool) ([]canary, string) {
	var cs []canary
	var code strings.Builder
	for _, fail := range rand.Perm(4) {
		fail := fail < 2
		var name string
		for name == "" || existing[name] {
			w1, w2 := canaryWords[rand.IntN(len(canaryWords))], canaryWords[rand.IntN(len(canaryWords))]
			if parser == ParserGoTest {
				name = base + title(w1) + title(w2)
			} else {
				name = strings.Join(append([]string{"test"}, strings.Fields(base+" "+w1+" "+w2)...), "_")
			}
		}
		existing[name] = true
		off := 0
		if fail {
			off = 1 + rand.IntN(3)
		}
		if parser == ParserGoTest {
			fmt.Fprintf(&code, "\nfunc %s(t *testing.T) {\n\tif got, want := len(t.Name()), %d; got != want {\n\t\tt.Fatalf(\"got %%d, want %%d\", got, want)\n\t}\n}\n", name, len(name)+off)
			cs = append(cs, canary{id: name, fail: fail})
			continue
		}
		words := []string{canaryWords[rand.IntN(len(canaryWords))], canaryWords[rand.IntN(len(canaryWords))]}
		fmt.Fprintf(&code, "\n\ndef %s():\n    words = %q.split()\n    assert len(words) == %d\n", name, strings.Join(words, " "), len(words)+off)
		cs = append(cs, canary{id: path.Clean(file) + "::" + name, fail: fail})
	}
	return cs, code.String()
}

func title(w string) string { return strings.ToUpper(w[:1]) + w[1:] }

// checkCanaries describes each canary that did not come out as planted.
func checkCanaries(cs []canary, status map[string]string) []string {
	var out []string
	for _, c := range cs {
		want := StatusPassed
		if c.fail {
			want = StatusFailed
		}
		if got := status[c.id]; got != want {
			out = append(out, fmt.Sprintf("canary %s planted to %s came out %s", c.id, map[bool]string{true: "fail", false: "pass"}[c.fail], orAbsent(got, got != "")))
		}
	}
	return out
}

// judgeTests plants the canaries, runs the task's tests with them, and
// returns the statuses and every reason to call the run tampered:
// canaries not as planted, views of the results that disagree (see
// execTests), and for go test, decisive tests whose own process, from a
// binary built before the run, disagrees with the report (goPrebuild,
// goProcessCheck; reruns only for runs that would otherwise be resolved).
func (ws *workspace) judgeTests(ctx context.Context, task Task) (testRun, error) {
	start := time.Now()
	canaries, err := ws.plantCanaries(ctx, task)
	if err != nil {
		return testRun{}, err
	}
	ids := make([]string, len(canaries))
	for i, c := range canaries {
		ids[i] = c.id
	}
	decisive := append(append([]string(nil), task.FailToPass...), task.PassToPass...)
	var checks []procCheck
	if task.LogParser == ParserGoTest {
		if checks, err = ws.goPrebuild(ctx, task.TestCmd, append(append([]string(nil), decisive...), ids...)); err != nil {
			return testRun{}, err
		}
	}
	planted := time.Now()
	r, err := ws.execTests(ctx, task.TestCmd, task.LogParser, ids)
	if err != nil {
		return r, err
	}
	ran := time.Now()
	if r.res.Killed == "" {
		r.tampered = append(checkCanaries(canaries, r.status), r.tampered...)
	}
	// Rerunning tests one per process costs a sandbox per test, so it is
	// spent only where a forgery would pay: a run that would otherwise be
	// resolved.
	wouldResolve := true
	for _, n := range decisive {
		wouldResolve = wouldResolve && passed(r.status[n])
	}
	if len(checks) > 0 && len(r.tampered) == 0 && r.res.Killed == "" && wouldResolve {
		more, err := ws.goProcessCheck(ctx, r.status, checks, canaries)
		if err != nil {
			return r, err
		}
		r.tampered = append(r.tampered, more...)
	}
	for _, c := range canaries {
		delete(r.status, c.id)
	}
	ws.logf("test phase: canaries planted and test binaries prebuilt in %s, tests run in %s, cross-checked in %s",
		planted.Sub(start).Round(time.Millisecond), ran.Sub(planted).Round(time.Millisecond), time.Since(ran).Round(time.Millisecond))
	if len(r.tampered) == 0 {
		ws.logf("crosscheck: canaries as planted; every view of the results agrees")
	}
	for _, t := range r.tampered {
		ws.logf("tampered: %s", t)
	}
	return r, nil
}
