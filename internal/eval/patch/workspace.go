package patch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"crucible/internal/sandbox"
)

// workspace is one private checkout: a fresh git dir holding a single
// commit (the tree at base_commit, no history at all), a work tree, a
// private Go build cache, a report directory and an input directory.
//
// Once checked out, the work tree is written by sandboxed processes only,
// and the host never touches it again except to remove the whole
// workspace (os.RemoveAll does not follow links): resetting, listing
// changes and restoring test files all run git inside the sandbox, so a
// symbolic link planted in the tree can never lead a host-side operation
// out of it. Inside, every part sits at a fixed path (/work, /git, /cache,
// /out, /in), so nothing there reveals where the workspace is on the host.
//
// The workspace directory is flock'ed for its whole life; Sweep removes
// the workspaces whose lock nobody holds (their process was killed).
type workspace struct {
	root, gitDir, work, gocache, out, in string
	lock                                 *os.File
	sb                                   sandbox.Config
	log                                  *[]string
	// baseLinks are the paths of symbolic links (and submodule entries)
	// in the base commit; the candidate may not add any other.
	baseLinks map[string]bool
}

// Paths inside the sandbox.
const (
	boxWork  = "/work"
	boxGit   = "/git"
	boxCache = "/cache"
	boxOut   = "/out"
	boxIn    = "/in"
)

// Workspace directory names: a workspace is created under newPrefix,
// locked, then renamed to its final name, so a directory named
// workspacePrefix is locked from the moment it appears.
const (
	workspacePrefix = "crucible-patch-"
	newPrefix       = ".crucible-patch-new-"
	// ownerFile (the owner's pid) marks a workspace that is locked while in
	// use; Sweep leaves directories without it (made by older versions,
	// which did not lock) alone.
	ownerFile = "owner"
)

// gitEnv is the environment of every host git call: no user or system
// config, fixed identity and dates.
var gitEnv = []string{
	"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=/nonexistent",
	"GIT_AUTHOR_NAME=crucible", "GIT_AUTHOR_EMAIL=crucible@localhost",
	"GIT_COMMITTER_NAME=crucible", "GIT_COMMITTER_EMAIL=crucible@localhost",
	"GIT_AUTHOR_DATE=2000-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2000-01-01T00:00:00Z",
	"GIT_TERMINAL_PROMPT=0", "LC_ALL=C",
}

// gitConfig disables hooks, fsmonitor and line-ending conversion in every
// git call, on the host and in the sandbox.
var gitConfig = []string{"GIT_CONFIG_COUNT=3",
	"GIT_CONFIG_KEY_0=core.hooksPath", "GIT_CONFIG_VALUE_0=/dev/null",
	"GIT_CONFIG_KEY_1=core.fsmonitor", "GIT_CONFIG_VALUE_1=false",
	"GIT_CONFIG_KEY_2=core.autocrlf", "GIT_CONFIG_VALUE_2=false",
}

// git runs git on the host with hooks and fsmonitor disabled.
func git(ctx context.Context, extraEnv []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = append(append(append(append([]string{}, os.Environ()...), gitEnv...), gitConfig...), extraEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// newWorkspace creates an empty, locked workspace under workRoot.
func newWorkspace(workRoot string, sb sandbox.Config, log *[]string) (*workspace, error) {
	if workRoot == "" {
		workRoot = os.TempDir()
	}
	if err := os.MkdirAll(workRoot, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(workRoot, newPrefix)
	if err != nil {
		return nil, err
	}
	lock, err := os.Open(tmp)
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(tmp, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	}
	root := filepath.Join(workRoot, workspacePrefix+strings.TrimPrefix(filepath.Base(tmp), newPrefix))
	if err == nil {
		// Fails if a concurrent Sweep took the unlocked directory for a leftover.
		err = os.Rename(tmp, root)
	}
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("create workspace: %w", err)
	}
	ws := &workspace{root: root, gitDir: filepath.Join(root, "git"), work: filepath.Join(root, "work"),
		gocache: filepath.Join(root, "gocache"), out: filepath.Join(root, "out"), in: filepath.Join(root, "in"),
		lock: lock, sb: sb, log: log}
	for _, d := range []string{ws.work, ws.gocache, ws.out, ws.in} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			ws.close()
			return nil, err
		}
	}
	return ws, nil
}

// Sweep removes what judges killed mid-run (e.g. with SIGKILL) left
// behind: workspaces under workRoot ("" = os.TempDir()) whose lock no live
// process holds, and sandbox cgroups whose owner is gone. Workspaces and
// cgroups of live processes, on this machine or in this process, are left
// alone. Judge and Mine sweep before they start.
func Sweep(workRoot string) error {
	if workRoot == "" {
		workRoot = os.TempDir()
	}
	entries, err := os.ReadDir(workRoot)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sweep %s: %w", workRoot, err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !(strings.HasPrefix(name, workspacePrefix) || strings.HasPrefix(name, newPrefix)) {
			continue
		}
		dir := filepath.Join(workRoot, name)
		if _, err := os.Lstat(filepath.Join(dir, ownerFile)); err != nil && strings.HasPrefix(name, workspacePrefix) {
			continue
		}
		if err := sweepOne(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := sandbox.Sweep(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// sweepOne removes the workspace dir unless a live process holds its lock.
func sweepOne(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return nil // removed meanwhile
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil // in use
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("sweep workspace %s: %w", dir, err)
	}
	return nil
}

func (ws *workspace) logf(format string, args ...any) {
	*ws.log = append(*ws.log, fmt.Sprintf(format, args...))
}

// close removes the workspace, then releases its lock.
func (ws *workspace) close() {
	_ = os.RemoveAll(ws.root)
	ws.lock.Close()
}

// checkout exports the tree of base from repo (a repository or a bundle)
// into a fresh single-commit repository, so nothing after base (or before
// it) is visible. It runs on the host before any untrusted code.
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
	g := []string{"--git-dir", ws.gitDir, "--work-tree", ws.work}
	if _, err := git(ctx, nil, append(g, "add", "-A", "-f")...); err != nil {
		return err
	}
	if _, err := git(ctx, nil, append(g, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", "base "+base)...); err != nil {
		return err
	}
	tree, err := git(ctx, nil, "--git-dir", ws.gitDir, "ls-tree", "-r", "-z", "HEAD")
	if err != nil {
		return err
	}
	ws.baseLinks = map[string]bool{}
	for _, e := range strings.Split(string(tree), "\x00") {
		// "<mode> <type> <object>\t<path>"
		if meta, p, ok := strings.Cut(e, "\t"); ok && (strings.HasPrefix(meta, "120000 ") || strings.HasPrefix(meta, "160000 ")) {
			ws.baseLinks[p] = true
		}
	}
	ws.logf("checkout: tree of %s exported into a fresh single-commit repository (no history visible)", base)
	if goCacheSeed != "" {
		if out, err := exec.CommandContext(ctx, "cp", "-a", goCacheSeed+"/.", ws.gocache).CombinedOutput(); err != nil {
			return fmt.Errorf("seed go cache: %v: %s", err, out)
		}
	}
	return nil
}

// sandboxCfg returns the sandbox settings for a run in this workspace:
// the work tree at /work and the inputs read-only at /in, plus mounts.
func (ws *workspace) sandboxCfg(mounts ...sandbox.Mount) sandbox.Config {
	cfg := ws.sb
	cfg.Dir = ws.work
	cfg.ReadOnly = append([]string(nil), cfg.ReadOnly...)
	if st, err := os.Stat("/usr/local/go"); err == nil && st.IsDir() {
		cfg.ReadOnly = append(cfg.ReadOnly, "/usr/local/go")
	}
	cfg.Mounts = append(append(append([]sandbox.Mount(nil), cfg.Mounts...), sandbox.Mount{Source: ws.in, Target: boxIn}), mounts...)
	if len(cfg.Env) == 0 {
		cfg.Env = []string{
			"PATH=/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp",
			"GOCACHE=" + boxCache, "GOPATH=/tmp/gopath", "GOMODCACHE=/tmp/gopath/pkg/mod",
			"GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local", "GOTELEMETRY=off", "CGO_ENABLED=0",
			"PYTHONDONTWRITEBYTECODE=1", "LC_ALL=C.UTF-8",
		}
	}
	return cfg
}

// gitIndexFromHead fills the private index from the base commit and
// refreshes its stat data (a fresh index knows nothing of the files).
const gitIndexFromHead = "git read-tree HEAD && { git update-index -q --refresh >/dev/null || true; }\n"

// sandboxGit runs a bash script of git commands over the work tree in the
// sandbox. The base repository is read-only at /git; the index and new
// objects live in the run's private /tmp, so the candidate's tree can
// change neither the repository nor anything on the host. args are $1…
func (ws *workspace) sandboxGit(ctx context.Context, script string, args ...string) (sandbox.Result, error) {
	cfg := ws.sandboxCfg(sandbox.Mount{Source: ws.gitDir, Target: boxGit})
	cfg.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/tmp", "LC_ALL=C",
		"GIT_DIR=" + boxGit, "GIT_WORK_TREE=" + boxWork, "GIT_INDEX_FILE=/tmp/index",
		"GIT_OBJECT_DIRECTORY=/tmp/objects", "GIT_ALTERNATE_OBJECT_DIRECTORIES=" + boxGit + "/objects"},
		append(append([]string(nil), gitEnv...), gitConfig...)...)
	if cfg.Timeout == 0 || cfg.Timeout > applyTimeout {
		cfg.Timeout = applyTimeout
	}
	argv := append([]string{"bash", "-c", "set -e\nmkdir -p /tmp/objects\n" + script, "sandbox-git"}, args...)
	return sandbox.Run(ctx, cfg, argv)
}

// reset restores the work tree to the base commit exactly.
func (ws *workspace) reset(ctx context.Context) error {
	res, err := ws.sandboxGit(ctx, "find /work -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +\ngit read-tree --reset -u HEAD\n")
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("%s: %s", res, tail(string(res.Stderr), 600))
	}
	if err != nil {
		return fmt.Errorf("reset work tree: %w", err)
	}
	return nil
}

// applyChain applies diff with git apply, git apply --3way, then patch
// --fuzz=5, each inside the sandbox, resetting the tree between attempts.
// It returns the method that worked, or "" and why nothing was applied: a
// patch that adds a symbolic link, a submodule or a special file is
// refused before or after the attempt.
func (ws *workspace) applyChain(ctx context.Context, name, diff string) (method, refused string, err error) {
	if why := screenDiff(diff); why != "" {
		ws.logf("apply %s: refused: %s", name, why)
		return "", why, nil
	}
	if err := os.WriteFile(filepath.Join(ws.in, name+".diff"), []byte(diff), 0o644); err != nil {
		return "", "", err
	}
	file := boxIn + "/" + name + ".diff"
	attempts := []struct {
		name   string
		script string
	}{
		{"git apply", "git apply --verbose \"$1\"\n"},
		{"git apply --3way", gitIndexFromHead + "git apply --verbose --3way \"$1\"\n"},
		{"patch --fuzz=5", "patch --batch --forward --fuzz=5 -p1 -i \"$1\"\n"},
	}
	for i, a := range attempts {
		if i > 0 {
			if err := ws.reset(ctx); err != nil {
				return "", "", err
			}
		}
		res, err := ws.sandboxGit(ctx, a.script, file)
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", a.name, err)
		}
		ws.logf("apply %s: %s: %s", name, a.name, strings.TrimSpace(tail(string(res.Stderr)+string(res.Stdout), 600)))
		if res.ExitCode != 0 {
			continue
		}
		why, err := ws.specialFiles(ctx)
		if err != nil {
			return "", "", err
		}
		if why != "" {
			ws.logf("apply %s: refused: %s", name, why)
			return "", why, ws.reset(ctx)
		}
		ws.logf("apply %s: applied with %s", name, a.name)
		return a.name, "", nil
	}
	return "", "", ws.reset(ctx)
}

// specialFiles lists the work tree's symbolic links, FIFOs, sockets and
// devices (inside the sandbox) and describes those the base did not have.
func (ws *workspace) specialFiles(ctx context.Context) (string, error) {
	res, err := ws.sandboxGit(ctx, "find /work -mindepth 1 ! -type f ! -type d -printf '%y %P\\0'\n")
	if err == nil && (res.ExitCode != 0 || res.Truncated) {
		err = fmt.Errorf("%s: %s", res, tail(string(res.Stderr), 600))
	}
	if err != nil {
		return "", fmt.Errorf("list special files: %w", err)
	}
	kinds := map[string]string{"l": "symbolic link", "p": "FIFO", "s": "socket", "c": "character device", "b": "block device"}
	var bad []string
	for _, e := range strings.Split(strings.TrimRight(string(res.Stdout), "\x00"), "\x00") {
		kind, p, ok := strings.Cut(e, " ")
		if !ok || (kind == "l" && ws.baseLinks[p]) {
			continue
		}
		k := kinds[kind]
		if k == "" {
			k = "special file"
		}
		bad = append(bad, fmt.Sprintf("%s %s", k, p))
	}
	if len(bad) == 0 {
		return "", nil
	}
	sort.Strings(bad)
	if len(bad) > 5 {
		bad = append(bad[:5], fmt.Sprintf("and %d more", len(bad)-5))
	}
	return "the applied tree has a " + strings.Join(bad, ", ") + " that the base does not have", nil
}

// changes lists the work tree's differences from the base commit as
// path → status letter (A, M, D, T).
func (ws *workspace) changes(ctx context.Context) (map[string]string, error) {
	res, err := ws.sandboxGit(ctx, gitIndexFromHead+"git add -A -f\ngit diff --cached --name-status --no-renames -z HEAD\n")
	if err == nil && (res.ExitCode != 0 || res.Truncated) {
		err = fmt.Errorf("%s: %s", res, tail(string(res.Stderr), 600))
	}
	if err != nil {
		return nil, fmt.Errorf("list changes: %w", err)
	}
	m := map[string]string{}
	f := strings.Split(strings.TrimRight(string(res.Stdout), "\x00"), "\x00")
	for i := 0; i+1 < len(f); i += 2 {
		if f[i] != "" {
			m[f[i+1]] = f[i][:1]
		}
	}
	return m, nil
}

// restore puts each path back to its base version, or removes it when the
// base has no such file, inside the sandbox.
func (ws *workspace) restore(ctx context.Context, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	if err := os.WriteFile(filepath.Join(ws.in, "restore"), []byte(strings.Join(paths, "\x00")+"\x00"), 0o644); err != nil {
		return err
	}
	res, err := ws.sandboxGit(ctx, gitIndexFromHead+`while IFS= read -r -d '' p; do
	rm -rf -- "/work/$p"
	if git cat-file -e "HEAD:$p" 2>/dev/null; then git checkout -q HEAD -- "$p"; fi
done < /in/restore
`)
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("%s: %s", res, tail(string(res.Stderr), 600))
	}
	if err != nil {
		return fmt.Errorf("restore test files: %w", err)
	}
	return nil
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
	var restore []string
	owned := map[string]bool{}
	for _, p := range diffFiles(testPatch) {
		owned[p] = true
		if _, ok := changed[p]; ok {
			ws.logf("tests: restored %s (named by the test patch, changed by the candidate)", p)
			restore = append(restore, p)
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
		restore = append(restore, p)
	}
	return ws.restore(ctx, restore)
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
