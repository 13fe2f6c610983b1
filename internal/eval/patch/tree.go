package patch

// This file gives competitors the tree a task starts from: a tar.gz of
// base_commit's files with no .git and no history (nothing after the
// base, such as the fix, can leak through it).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"crucible/internal/sandbox"
)

// MaxTreeBytes bounds the compressed tree of one task.
const MaxTreeBytes = 32 << 20

// ArchiveTree returns a tar.gz of the tree of commit in repo (a repository
// or a bundle). git runs in the sandbox over a read-only view of repo,
// bounded in time, memory and output: an archive over limit bytes is an
// error, not a truncated tree.
func ArchiveTree(ctx context.Context, repo, commit string, limit int) ([]byte, error) {
	if commit == "" || strings.HasPrefix(commit, "-") {
		return nil, fmt.Errorf("base_commit %q is not a commit id", commit)
	}
	dir, err := os.MkdirTemp("", "crucible-tree-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o777); err != nil { // the sandbox's user clones here
		return nil, err
	}
	cfg := bundleSandbox(dir)
	cfg.Mounts = []sandbox.Mount{{Source: repo, Target: "/repo"}}
	cfg.OutputLimit = limit + 1
	cfg.Env = append(append([]string{"PATH=/usr/bin:/bin"}, gitEnv...), gitConfig...)
	res, err := sandbox.Run(ctx, cfg, []string{"/bin/sh", "-c", `set -e
git -c safe.directory='*' clone --bare --quiet /repo /work/r.git
git --git-dir /work/r.git archive --format=tar.gz "$1^{commit}"`, "sh", commit})
	switch {
	case err != nil:
		return nil, err
	case res.ExitCode != 0:
		return nil, fmt.Errorf("archive %s: %s%s", commit, strings.TrimSpace(tail(string(res.Stderr), 600)), res.Killed)
	case len(res.Stdout) > limit:
		return nil, fmt.Errorf("the tree of %s is over the limit of %d compressed bytes", commit, limit)
	}
	return res.Stdout, nil
}

// Tree returns the tar.gz of commit in a stored task's repo (see Local),
// cached in CacheDir so that repeated downloads run git once.
func (r Repos) Tree(ctx context.Context, repo, commit string) ([]byte, error) {
	local, err := r.Local(ctx, repo)
	if err != nil {
		return nil, err
	}
	if r.CacheDir == "" {
		return ArchiveTree(ctx, local, commit, MaxTreeBytes)
	}
	sum := sha256.Sum256([]byte(repo + "\x00" + commit))
	path := filepath.Join(r.CacheDir, "tree-"+hex.EncodeToString(sum[:])+".tar.gz")
	if b, err := os.ReadFile(path); err == nil {
		return b, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b, err := ArchiveTree(ctx, local, commit, MaxTreeBytes)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.CacheDir, 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(r.CacheDir, "tree-*.tmp")
	if err != nil {
		return nil, err
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path) // atomic: readers see all or nothing
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return nil, werr
	}
	return b, nil
}
