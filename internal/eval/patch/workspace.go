package patch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"crucible/internal/sandbox"
)

// workspace is one private checkout: a fresh git dir holding a single
// commit (the tree at base_commit, no history at all), a work tree bound at
// /work in the sandbox, a private Go build cache and a report directory.
type workspace struct {
	root, gitDir, work, gocache, out string
	sb                               sandbox.Config
	log                              *[]string
}

// gitEnv is the environment of every host git call: no user or system
// config, fixed identity and dates.
var gitEnv = []string{
	"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=/nonexistent",
	"GIT_AUTHOR_NAME=crucible", "GIT_AUTHOR_EMAIL=crucible@localhost",
	"GIT_COMMITTER_NAME=crucible", "GIT_COMMITTER_EMAIL=crucible@localhost",
	"GIT_AUTHOR_DATE=2000-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2000-01-01T00:00:00Z",
	"GIT_TERMINAL_PROMPT=0", "LC_ALL=C",
}

// git runs git on the host with hooks and fsmonitor disabled.
func git(ctx context.Context, extraEnv []string, args ...string) ([]byte, error) {
	full := append([]string{"-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "core.autocrlf=false"}, args...)
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Env = append(append(append([]string{}, os.Environ()...), gitEnv...), extraEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// newWorkspace creates an empty workspace under workRoot.
func newWorkspace(workRoot string, sb sandbox.Config, log *[]string) (*workspace, error) {
	if workRoot != "" {
		if err := os.MkdirAll(workRoot, 0o755); err != nil {
			return nil, err
		}
	}
	root, err := os.MkdirTemp(workRoot, "crucible-patch-")
	if err != nil {
		return nil, err
	}
	ws := &workspace{root: root, gitDir: filepath.Join(root, "git"), work: filepath.Join(root, "work"),
		gocache: filepath.Join(root, "gocache"), out: filepath.Join(root, "out"), sb: sb, log: log}
	for _, d := range []string{ws.work, ws.gocache, ws.out, filepath.Join(root, "in")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

func (ws *workspace) logf(format string, args ...any) {
	*ws.log = append(*ws.log, fmt.Sprintf(format, args...))
}

func (ws *workspace) close() { _ = os.RemoveAll(ws.root) }

// checkout exports the tree of base from repo (a repository or a bundle)
// into a fresh single-commit repository, so nothing after base (or before
// it) is visible.
func (ws *workspace) checkout(ctx context.Context, repo, base, goCacheSeed string) error {
	src := repo
	if st, err := os.Stat(repo); err != nil {
		return fmt.Errorf("repo %s: %w", repo, err)
	} else if !st.IsDir() {
		src = filepath.Join(ws.root, "bundle.git")
		if _, err := git(ctx, nil, "clone", "--bare", "--quiet", repo, src); err != nil {
			return fmt.Errorf("open bundle: %w", err)
		}
	}
	if _, err := git(ctx, nil, "--git-dir", ws.gitDir, "init", "--quiet"); err != nil {
		return err
	}
	idx := []string{"GIT_INDEX_FILE=" + filepath.Join(ws.root, "export.index")}
	gitArgs := []string{"-C", src}
	if _, err := git(ctx, idx, append(gitArgs, "--work-tree", ws.work, "read-tree", "--reset", "-u", base+"^{tree}")...); err != nil {
		return fmt.Errorf("export %s: %w", base, err)
	}
	_ = os.Remove(filepath.Join(ws.root, "export.index"))
	if _, err := git(ctx, nil, ws.g("add", "-A", "-f")...); err != nil {
		return err
	}
	if _, err := git(ctx, nil, ws.g("commit", "--quiet", "--no-verify", "--allow-empty", "-m", "base "+base)...); err != nil {
		return err
	}
	ws.logf("checkout: tree of %s exported into a fresh single-commit repository (no history visible)", base)
	if goCacheSeed != "" {
		if out, err := exec.CommandContext(ctx, "cp", "-a", goCacheSeed+"/.", ws.gocache).CombinedOutput(); err != nil {
			return fmt.Errorf("seed go cache: %v: %s", err, out)
		}
	}
	return nil
}

// g prefixes args with the workspace's git dir and work tree.
func (ws *workspace) g(args ...string) []string {
	return append([]string{"--git-dir", ws.gitDir, "--work-tree", ws.work}, args...)
}

// reset restores the work tree to the base commit exactly.
func (ws *workspace) reset(ctx context.Context) error {
	entries, err := os.ReadDir(ws.work)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(ws.work, e.Name())); err != nil {
			return err
		}
	}
	_, err = git(ctx, nil, ws.g("reset", "--quiet", "--hard", "HEAD")...)
	return err
}

// sandboxCfg returns the sandbox settings for a run in this workspace.
func (ws *workspace) sandboxCfg(extraWritable ...string) sandbox.Config {
	cfg := ws.sb
	cfg.Dir = ws.work
	cfg.ReadOnly = append([]string(nil), cfg.ReadOnly...)
	if st, err := os.Stat("/usr/local/go"); err == nil && st.IsDir() {
		cfg.ReadOnly = append(cfg.ReadOnly, "/usr/local/go")
	}
	cfg.ReadOnly = append(cfg.ReadOnly, filepath.Join(ws.root, "in"))
	cfg.Writable = append(append([]string(nil), cfg.Writable...), extraWritable...)
	if len(cfg.Env) == 0 {
		cfg.Env = []string{
			"PATH=/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp",
			"GOCACHE=" + ws.gocache, "GOPATH=/tmp/gopath", "GOMODCACHE=/tmp/gopath/pkg/mod",
			"GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local", "GOTELEMETRY=off", "CGO_ENABLED=0",
			"PYTHONDONTWRITEBYTECODE=1", "LC_ALL=C.UTF-8",
		}
	}
	return cfg
}

// applyChain applies diff with git apply, git apply --3way, then patch
// --fuzz=5, each inside the sandbox, resetting the tree between attempts.
// It returns the method that worked or "".
func (ws *workspace) applyChain(ctx context.Context, name, diff string) (string, error) {
	file := filepath.Join(ws.root, "in", name+".diff")
	if err := os.WriteFile(file, []byte(diff), 0o644); err != nil {
		return "", err
	}
	attempts := []struct {
		name string
		argv []string
		git  bool
	}{
		{"git apply", []string{"git", "apply", "--verbose", file}, true},
		{"git apply --3way", []string{"git", "apply", "--verbose", "--3way", file}, true},
		{"patch --fuzz=5", []string{"patch", "--batch", "--forward", "--fuzz=5", "-p1", "-i", file}, false},
	}
	for i, a := range attempts {
		if i > 0 {
			if err := ws.reset(ctx); err != nil {
				return "", err
			}
		}
		cfg := ws.sandboxCfg()
		cfg.Env = []string{"PATH=/usr/bin:/bin", "HOME=/tmp", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C"}
		if a.git {
			// git apply --3way needs the base blobs and the index; the git
			// dir lives outside /work and is visible only to this step.
			cfg.Writable = append(cfg.Writable, ws.gitDir)
			cfg.Env = append(cfg.Env, "GIT_DIR="+ws.gitDir, "GIT_WORK_TREE=/work")
		}
		if cfg.Timeout == 0 || cfg.Timeout > applyTimeout {
			cfg.Timeout = applyTimeout
		}
		res, err := sandbox.Run(ctx, cfg, a.argv)
		if err != nil {
			return "", fmt.Errorf("%s: %w", a.name, err)
		}
		ws.logf("apply %s: %s: %s", name, a.name, strings.TrimSpace(tail(string(res.Stderr)+string(res.Stdout), 600)))
		if res.ExitCode == 0 {
			ws.logf("apply %s: applied with %s", name, a.name)
			return a.name, nil
		}
	}
	if err := ws.reset(ctx); err != nil {
		return "", err
	}
	return "", nil
}

// changes lists the work tree's differences from the base commit as
// path → status letter (A, M, D), staging everything first.
func (ws *workspace) changes(ctx context.Context) (map[string]string, error) {
	if _, err := git(ctx, nil, ws.g("add", "-A", "-f")...); err != nil {
		return nil, err
	}
	out, err := git(ctx, nil, ws.g("diff", "--cached", "--name-status", "--no-renames", "-z", "HEAD")...)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	f := strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	for i := 0; i+1 < len(f); i += 2 {
		m[f[i+1]] = f[i][:1]
	}
	return m, nil
}

// restore puts p back to its base version, or removes it when the base has
// no such file.
func (ws *workspace) restore(ctx context.Context, p string) error {
	if _, err := git(ctx, nil, ws.g("cat-file", "-e", "HEAD:"+p)...); err != nil {
		return os.RemoveAll(filepath.Join(ws.work, filepath.FromSlash(p)))
	}
	_ = os.RemoveAll(filepath.Join(ws.work, filepath.FromSlash(p)))
	_, err := git(ctx, nil, ws.g("checkout", "HEAD", "--", p)...)
	return err
}

// protectTests undoes the candidate's edits to tests: every file the test
// patch names is restored to base; every test file or test configuration
// the candidate added is deleted and every one it modified or deleted is
// restored.
func (ws *workspace) protectTests(ctx context.Context, testPatch string) error {
	changed, err := ws.changes(ctx)
	if err != nil {
		return err
	}
	owned := map[string]bool{}
	for _, p := range diffFiles(testPatch) {
		owned[p] = true
		if _, ok := changed[p]; ok {
			ws.logf("tests: restored %s (named by the test patch, changed by the candidate)", p)
			if err := ws.restore(ctx, p); err != nil {
				return err
			}
		}
	}
	paths := make([]string, 0, len(changed))
	for p := range changed {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if owned[p] || !isTestPath(p) {
			continue
		}
		if changed[p] == "A" {
			ws.logf("tests: deleted %s (test file or test configuration added by the candidate)", p)
		} else {
			ws.logf("tests: restored %s (test file or test configuration changed by the candidate)", p)
		}
		if err := ws.restore(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// testConfigNames are files that change how tests are collected or run.
var testConfigNames = map[string]bool{
	"conftest.py": true, "pytest.ini": true, "tox.ini": true, "setup.cfg": true, "pyproject.toml": true,
	"sitecustomize.py": true, "usercustomize.py": true, "noxfile.py": true, "go.work": true, "go.work.sum": true,
}

// testDirNames are directory names whose contents count as tests.
var testDirNames = map[string]bool{"test": true, "tests": true, "testing": true, "testdata": true, "__tests__": true}

// isTestPath reports whether p is a test file, test data or test
// configuration: *_test.go, test_*.py, *_test.py, anything under a
// test/tests/testing/testdata/__tests__ directory, conftest.py, pytest.ini,
// tox.ini, setup.cfg, pyproject.toml, sitecustomize.py, usercustomize.py,
// noxfile.py, *.pth and go.work.
func isTestPath(p string) bool {
	base := path.Base(p)
	if testConfigNames[base] || strings.HasSuffix(base, ".pth") {
		return true
	}
	if strings.HasSuffix(base, "_test.go") || strings.HasSuffix(base, "_test.py") ||
		(strings.HasPrefix(base, "test_") && strings.HasSuffix(base, ".py")) {
		return true
	}
	dir := path.Dir(p)
	for _, part := range strings.Split(dir, "/") {
		if testDirNames[part] {
			return true
		}
	}
	return false
}

// runTests runs cmd in the sandbox and parses its output with parser.
func (ws *workspace) runTests(ctx context.Context, cmd []string, parser string) (map[string]string, sandbox.Result, error) {
	argv := append([]string(nil), cmd...)
	var junit string
	switch parser {
	case ParserGoTest:
		if len(argv) >= 2 && path.Base(argv[0]) == "go" && argv[1] == "test" && !contains(argv, "-json") {
			argv = append(argv[:2], append([]string{"-json"}, argv[2:]...)...)
		}
	case ParserPytest:
		junit = filepath.Join(ws.out, "report-"+randomHex(12)+".xml")
		argv = append(argv, "-rA", "-p", "no:cacheprovider", "--junitxml="+junit, "-o", "junit_family=xunit2")
	default:
		return nil, sandbox.Result{}, fmt.Errorf("unknown log parser %q", parser)
	}
	cfg := ws.sandboxCfg(ws.gocache, ws.out)
	res, err := sandbox.Run(ctx, cfg, argv)
	if err != nil {
		return nil, res, err
	}
	ws.logf("test: %s → %s (limits: %s)", strings.Join(argv, " "), res, res.Limits)
	var status map[string]string
	var notes []string
	if parser == ParserGoTest {
		status, notes = parseGoTest(res.Stdout)
	} else {
		report, _ := os.ReadFile(junit)
		status, notes = parsePytest(res.Stdout, report)
	}
	for _, n := range notes {
		ws.logf("test: %s", n)
	}
	if len(status) == 0 {
		ws.logf("test: no test results parsed; output tail: %s", tail(string(res.Stdout)+string(res.Stderr), 1500))
	}
	return status, res, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o644) }
