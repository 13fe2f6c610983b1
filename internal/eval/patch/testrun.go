package patch

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"crucible/internal/sandbox"
)

// reportLimit caps each report the host reads back from the sandbox.
const reportLimit = 16 << 20

// harnessScript is the pytest launcher and reporter mounted read-only at
// /harness (see harness/crucible_pytest.py).
//
//go:embed harness/crucible_pytest.py
var harnessScript []byte

// boxHarness is where the harness directory is mounted, read-only.
const boxHarness = "/harness"

// testRun is what one sandboxed test run established.
type testRun struct {
	// status maps each test (Go name, pytest node id) to its status.
	status map[string]string
	res    sandbox.Result
	// refused is set when a report file was refused (see readReport).
	refused string
	// tampered lists disagreements only tampering explains.
	tampered []string
}

// runTests runs cmd in the sandbox and parses its output with parser. A
// report the host refuses to read (see readReport) is returned as
// refused, and no test counts as passing. Mining uses it over trusted
// commits; Judge uses judgeTests, which adds canaries and cross-checks.
func (ws *workspace) runTests(ctx context.Context, cmd []string, parser string) (map[string]string, sandbox.Result, string, error) {
	r, err := ws.execTests(ctx, cmd, parser, nil)
	return r.status, r.res, r.refused, err
}

// execTests runs cmd with extra tests added to its selection (when it
// selects tests by name) and collects every view of the results: for go
// test the -json events and the exit code; for pytest the -rA summary, the
// JUnit report, the harness reporter's record and the exit code.
func (ws *workspace) execTests(ctx context.Context, cmd []string, parser string, extra []string) (testRun, error) {
	var r testRun
	argv := append([]string(nil), cmd...)
	var report, results string
	mounts := []sandbox.Mount{{Source: ws.gocache, Target: boxCache, Writable: true}, {Source: ws.out, Target: boxOut, Writable: true}}
	switch parser {
	case ParserGoTest:
		if len(argv) >= 2 && path.Base(argv[0]) == "go" && argv[1] == "test" && !contains(argv, "-json") {
			argv = append(argv[:2], append([]string{"-json"}, argv[2:]...)...)
		}
		argv = ws.dropFailFast(argv, "-failfast")
		argv = withGoRun(argv, extra)
	case ParserPytest:
		report = "report-" + randomHex(12) + ".xml"
		results = "results-" + randomHex(12) + ".jsonl"
		var harnessed bool
		var err error
		if argv, harnessed, err = ws.harnessArgv(ctx, argv, boxOut+"/"+results); err != nil {
			return r, err
		}
		if harnessed {
			mounts = append(mounts, sandbox.Mount{Source: ws.harness(), Target: boxHarness})
		} else {
			results = ""
		}
		argv = ws.dropFailFast(argv, "-x", "--exitfirst", "--maxfail")
		argv = append(argv, "-rA", "-p", "no:cacheprovider", "--junitxml="+boxOut+"/"+report, "-o", "junit_family=xunit2")
		if hasNodeIDs(argv) {
			argv = append(argv, extra...)
		}
	default:
		return r, fmt.Errorf("unknown log parser %q", parser)
	}
	cfg := ws.sandboxCfg(mounts...)
	if parser == ParserPytest {
		cfg.Env = append(append([]string(nil), cfg.Env...), "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1")
	}
	res, err := sandbox.Run(ctx, cfg, argv)
	r.res = res
	if err != nil {
		return r, err
	}
	ws.logf("test: %s → %s (limits: %s)", strings.Join(argv, " "), res, res.Limits)
	var notes []string
	if parser == ParserGoTest {
		r.status, notes = parseGoTest(res.Stdout)
		r.tampered = goExitCheck(r.status, goFailedPackages(res.Stdout), res)
	} else {
		junit, rerr := readReport(ctx, ws.out, report, reportLimit)
		if rerr != nil {
			r.refused = "test report refused: " + rerr.Error()
			ws.logf("test: %s", r.refused)
			junit = nil
		}
		r.status, notes = parsePytest(res.Stdout, junit)
		if results != "" {
			rec, rerr := readReport(ctx, ws.out, results, reportLimit)
			if rerr != nil {
				rec = nil
				ws.logf("test: harness record refused: %s", rerr)
			}
			r.tampered = pytestCrossCheck(rec, res, pytestSummaryView(res.Stdout), junit)
		}
	}
	for _, n := range notes {
		ws.logf("test: %s", n)
	}
	if len(r.status) == 0 {
		ws.logf("test: no test results parsed; output tail: %s", tail(string(res.Stdout)+string(res.Stderr), 1500))
	}
	return r, nil
}

// dropFailFast removes options that stop a run at its first failure: the
// canaries planted to fail would otherwise stop the tests after them.
func (ws *workspace) dropFailFast(argv []string, opts ...string) []string {
	var out []string
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		name, _, hasValue := strings.Cut(a, "=")
		if !contains(opts, name) {
			out = append(out, a)
			continue
		}
		if name == "--maxfail" && !hasValue && i+1 < len(argv) {
			i++
			a += " " + argv[i]
		}
		ws.logf("test: removed %s from the test command (the canaries planted to fail must not stop the run)", a)
	}
	return out
}

// harnessArgv rewrites a pytest command ("python3 -m pytest ARGS",
// "pytest ARGS") to run through the harness launcher: isolated Python
// (-I: the work tree, PYTHONPATH and user site-packages are not on
// sys.path when pytest is imported), the reporter registered first, and
// the base commit's pytest configuration given with -c from the read-only
// harness directory, so a configuration file the candidate added is never
// read. Other commands run unchanged (without the reporter).
func (ws *workspace) harnessArgv(ctx context.Context, argv []string, results string) ([]string, bool, error) {
	python, args := "python3", []string(nil)
	switch {
	case len(argv) >= 3 && strings.HasPrefix(path.Base(argv[0]), "python") && argv[1] == "-m" && argv[2] == "pytest":
		python, args = argv[0], argv[3:]
	case len(argv) >= 1 && (path.Base(argv[0]) == "pytest" || path.Base(argv[0]) == "py.test"):
		args = argv[1:]
	default:
		ws.logf("test: %q is not a pytest command: the harness reporter is not used", strings.Join(argv, " "))
		return argv, false, nil
	}
	ini, err := ws.writeHarness(ctx)
	if err != nil {
		return nil, false, err
	}
	// -B: -I ignores PYTHONDONTWRITEBYTECODE; no bytecode in the work tree.
	out := []string{python, "-I", "-B", boxHarness + "/crucible_pytest.py", results,
		"-c", boxHarness + "/" + ini, "--rootdir=" + boxWork, "--confcutdir=" + boxWork}
	return append(out, args...), true, nil
}

// pytestConfigs are the files pytest reads its configuration from, in its
// order of precedence, with the section that makes each one count.
var pytestConfigs = []struct{ name, section string }{
	{"pytest.ini", ""}, {".pytest.ini", ""}, {"pyproject.toml", "[tool.pytest.ini_options]"},
	{"tox.ini", "[pytest]"}, {"setup.cfg", "[tool:pytest]"},
}

// harness returns the host directory mounted read-only at /harness.
func (ws *workspace) harness() string { return filepath.Join(ws.root, "harness") }

// writeHarness writes the launcher and the pytest configuration of the
// base commit (read from the trusted base repository, not the work tree)
// into the harness directory, and returns the configuration's file name.
func (ws *workspace) writeHarness(ctx context.Context) (string, error) {
	dir := ws.harness()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "crucible_pytest.py"), harnessScript, 0o644); err != nil {
		return "", err
	}
	name, body, from := "pytest.ini", []byte("[pytest]\n"), "an empty pytest.ini (the base commit has no pytest configuration)"
	for _, c := range pytestConfigs {
		b, err := git(ctx, nil, "--git-dir", ws.gitDir, "show", "HEAD:"+c.name)
		if err == nil && (c.section == "" || strings.Contains(string(b), c.section)) {
			name, body, from = c.name, b, "the base commit's "+c.name
			break
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
		return "", err
	}
	ws.logf("test: pytest runs through the harness reporter with %s (/harness, read-only; configuration files in the work tree are not read)", from)
	return name, nil
}

// hasNodeIDs reports whether a pytest command selects tests by node id.
func hasNodeIDs(argv []string) bool {
	for _, a := range argv {
		if !strings.HasPrefix(a, "-") && strings.Contains(a, "::") {
			return true
		}
	}
	return false
}

// withGoRun adds names to a go test -run pattern, if the command has one;
// without -run every test runs, names included.
func withGoRun(argv, names []string) []string {
	if len(names) == 0 {
		return argv
	}
	extra := "^(" + strings.Join(names, "|") + ")$"
	out := append([]string(nil), argv...)
	for i, a := range out {
		switch {
		case (a == "-run" || a == "--run") && i+1 < len(out):
			out[i+1] = "(?:" + out[i+1] + ")|" + extra
			return out
		case strings.HasPrefix(a, "-run=") || strings.HasPrefix(a, "--run="):
			k, v, _ := strings.Cut(a, "=")
			out[i] = k + "=(?:" + v + ")|" + extra
			return out
		}
	}
	return out
}

// readReport reads the file name that sandboxed code may have replaced
// (with a link to /dev/zero, a FIFO…): it must be a regular file directly
// in dir of at most limit bytes. No symbolic link is followed and a FIFO
// is opened without blocking, so neither memory nor the worker's slot can
// be held; only dir's contents are sandbox-writable, not dir itself.
func readReport(ctx context.Context, dir, name string, limit int64) ([]byte, error) {
	fd, err := syscall.Open(filepath.Join(dir, name), syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, errors.New("it is a symbolic link")
	}
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("it is not a regular file (%s)", st.Mode().Type())
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("report too large (%d bytes, limit %d)", st.Size(), limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A regular file cannot block; the limit holds even if it grows.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("report too large (over %d bytes)", limit)
	}
	return b, nil
}
