package patch

// This file decides which repositories a server's judge may read. A task
// stored by a server names either an uploaded git bundle by digest
// ("sha256:<hex>") or a repository beneath a root the operator registered;
// nothing else, so no one can make the server read or run anything over a
// repository on the host that they did not upload.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"crucible/internal/sandbox"
)

// MaxBundleBytes bounds one uploaded repository bundle.
const MaxBundleBytes = 32 << 20

// BundlePrefix starts the repo of a stored task that names an uploaded
// bundle by the hex sha256 of its bytes.
const BundlePrefix = "sha256:"

var hexDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Bundle is an uploaded git bundle that cloned cleanly, inside the
// sandbox, into a private bare repository where its commits can be checked.
type Bundle struct {
	// Data is the bundle's bytes and Digest their hex sha256.
	Data   []byte
	Digest string
	dir    string
}

// MaxRepoBytes bounds the unpacked size of an uploaded repository (the sum
// of its objects' sizes): the judge later clones and checks it out on the
// host, so 32 MiB of deltas must not expand into a full disk.
const MaxRepoBytes = 1 << 30

// bundleSandbox bounds git while it unpacks an untrusted bundle: a delta
// bomb meets the memory, CPU and wall-clock limits, not the host's.
func bundleSandbox(dir string) sandbox.Config {
	return sandbox.Config{Dir: dir, Env: gitEnv, Timeout: 2 * time.Minute, MemoryBytes: 1 << 30, Pids: 64, CPUSeconds: 120}
}

// inSandbox runs a shell script over the bundle directory (at /work) in
// the sandbox and returns its stdout, or an error with its stderr.
func (b *Bundle) inSandbox(ctx context.Context, script string, args ...string) (string, error) {
	res, err := sandbox.Run(ctx, bundleSandbox(b.dir), append([]string{"/bin/sh", "-c", script, "sh"}, args...))
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("%s%s", strings.TrimSpace(tail(string(res.Stderr), 600)), res.Killed)
	}
	return string(res.Stdout), nil
}

// OpenBundle verifies an uploaded bundle: at most MaxBundleBytes, a
// complete bundle (no prerequisite commits) that git, in the sandbox,
// clones into a private temporary directory and `git bundle verify`
// accepts, unpacking to at most MaxRepoBytes. Close removes the clone.
func OpenBundle(ctx context.Context, data []byte) (*Bundle, error) {
	if len(data) > MaxBundleBytes {
		return nil, fmt.Errorf("bundle of %d bytes is over the limit of %d", len(data), MaxBundleBytes)
	}
	dir, err := os.MkdirTemp("", "crucible-bundle-")
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	b := &Bundle{Data: data, Digest: hex.EncodeToString(sum[:]), dir: dir}
	if err := os.Chmod(dir, 0o777); err != nil { // the sandbox's user writes the clone here
		b.Close()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "repo.bundle"), data, 0o644); err != nil {
		b.Close()
		return nil, err
	}
	out, err := b.inSandbox(ctx, `set -e
git clone --bare --quiet /work/repo.bundle /work/repo.git
git --git-dir /work/repo.git bundle verify --quiet /work/repo.bundle
git --git-dir /work/repo.git cat-file --batch-all-objects --batch-check='%(objectsize)' | awk '{ s += $1 } END { printf "%d\n", s }'`)
	if err != nil {
		b.Close()
		if errors.Is(err, sandbox.ErrUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("not a complete git bundle (make one with git bundle create repo.bundle --all): %w", err)
	}
	size, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil || size > MaxRepoBytes {
		b.Close()
		return nil, fmt.Errorf("bundle unpacks to %s bytes, over the limit of %d", strings.TrimSpace(out), MaxRepoBytes)
	}
	return b, nil
}

// HasCommit reports an error unless the bundle holds commit.
func (b *Bundle) HasCommit(ctx context.Context, commit string) error {
	if strings.HasPrefix(commit, "-") {
		return fmt.Errorf("base_commit %q is not a commit id", commit)
	}
	if _, err := b.inSandbox(ctx, `git --git-dir /work/repo.git cat-file -e "$1^{commit}"`, commit); err != nil {
		if errors.Is(err, sandbox.ErrUnavailable) {
			return err
		}
		return fmt.Errorf("the bundle has no commit %s", commit)
	}
	return nil
}

// Close removes the private clone.
func (b *Bundle) Close() { _ = os.RemoveAll(b.dir) }

// ResolveUnder returns the real path of repo (symbolic links resolved) if
// it lies beneath one of roots, and an error otherwise: a symbolic link
// inside a root that points out of it is refused.
func ResolveUnder(roots []string, repo string) (string, error) {
	if len(roots) == 0 {
		return "", fmt.Errorf("repo %q: this server has no repository roots (crucible serve --repos DIR); upload the repository as a bundle", repo)
	}
	if !filepath.IsAbs(repo) {
		return "", fmt.Errorf("repo %q: want an absolute path beneath this server's repository roots", repo)
	}
	real, err := filepath.EvalSymlinks(repo)
	if err != nil {
		return "", fmt.Errorf("repo %s: %w", repo, err)
	}
	for _, root := range roots {
		r, err := filepath.EvalSymlinks(root)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(r, real); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return real, nil
		}
	}
	return "", fmt.Errorf("repo %s (really %s) is not beneath this server's repository roots %s", repo, real, strings.Join(roots, ", "))
}

// Repos is where a server's judge finds the repository of a stored task:
// an uploaded bundle, fetched by digest and cached on local disk, or an
// operator repository beneath Roots.
type Repos struct {
	// Roots are the directories the operator registered (crucible serve
	// --repos); only operator keys may create tasks naming paths there.
	Roots []string
	// CacheDir holds fetched bundles by digest (created 0700 if missing).
	CacheDir string
	// Fetch returns the bundle stored under a digest (the database).
	Fetch func(ctx context.Context, digest string) ([]byte, error)
}

// Local returns the local path of a stored task's repo, refusing any repo
// that is neither an uploaded bundle nor beneath Roots.
func (r Repos) Local(ctx context.Context, repo string) (string, error) {
	digest, ok := strings.CutPrefix(repo, BundlePrefix)
	if !ok {
		return ResolveUnder(r.Roots, repo)
	}
	if !hexDigest.MatchString(digest) {
		return "", fmt.Errorf("repo %q: not a sha256 digest", repo)
	}
	if r.CacheDir == "" || r.Fetch == nil {
		return "", errors.New("this server has no store of uploaded repository bundles")
	}
	path := filepath.Join(r.CacheDir, digest+".bundle")
	if _, err := os.Lstat(path); err == nil {
		return path, nil
	}
	data, err := r.Fetch(ctx, digest)
	if err != nil {
		return "", err
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != digest {
		return "", fmt.Errorf("repository bundle %s: stored bytes do not match their digest", digest)
	}
	if err := os.MkdirAll(r.CacheDir, 0o700); err != nil {
		return "", fmt.Errorf("bundle cache: %w", err)
	}
	tmp, err := os.CreateTemp(r.CacheDir, digest+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("bundle cache: %w", err)
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path) // atomic: readers see the whole bundle or none
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("bundle cache: %w", werr)
	}
	return path, nil
}

// ReadBundle returns a git bundle of a local repository for upload: a file
// is taken as a bundle already, a directory is bundled with all its refs
// (git bundle create --all). Either must fit in MaxBundleBytes.
func ReadBundle(ctx context.Context, repo string) ([]byte, error) {
	st, err := os.Stat(repo)
	if err != nil {
		return nil, fmt.Errorf("repo %s: %w", repo, err)
	}
	file := repo
	if st.IsDir() {
		dir, err := os.MkdirTemp("", "crucible-bundle-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		file = filepath.Join(dir, "repo.bundle")
		if _, err := git(ctx, nil, "-C", repo, "bundle", "create", "--quiet", file, "--all"); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", repo, err)
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("repo %s: %w", repo, err)
	}
	if len(data) > MaxBundleBytes {
		return nil, fmt.Errorf("repo %s: its bundle of %d bytes is over the limit of %d", repo, len(data), MaxBundleBytes)
	}
	return data, nil
}
