package main

// This file is how competitors enter a code-fix competition: list its
// tasks and check one out into a fresh single-commit repository, fix it,
// and submit `git diff`.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"crucible/internal/client"
	"crucible/internal/eval/patch"
)

func runPatchTasks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runShow(ctx, args, stdout, stderr, showSpec{name: "patch tasks", idFlag: "competition",
		summary: "List a code-fix competition's tasks: problem statement, repository, base commit and the tests that decide\n" +
			"each (FAIL_TO_PASS must pass after your fix, PASS_TO_PASS must keep passing). Check one out with patch checkout.",
		example: "crucible patch tasks --competition c-abc123"},
		func(c *client.Client, id string) ([]patch.PublicTask, error) { return c.Tasks(ctx, id) },
		func(w io.Writer, tasks []patch.PublicTask) error {
			for _, t := range tasks {
				fmt.Fprintf(w, "== %s (repo %s, base %.12s, published %s)\n", t.InstanceID, t.Repo, t.BaseCommit, t.PublishedAt.Format("2006-01-02 15:04 MST"))
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				for _, n := range t.FailToPass {
					fmt.Fprintf(tw, "  FAIL_TO_PASS\t%s\n", n)
				}
				for _, n := range t.PassToPass {
					fmt.Fprintf(tw, "  PASS_TO_PASS\t%s\n", n)
				}
				tw.Flush()
				fmt.Fprintf(w, "\n%s\n\n", indent(t.ProblemStatement, "  "))
			}
			return nil
		})
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+prefix)
}

func runPatchCheckout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("patch checkout", "Download a task's tree at its base commit (no history) into a new directory and commit it\n"+
		"there, so that after your fix `git diff` is the patch to submit.",
		"crucible patch checkout --competition c-abc123 --task calc-1a2b3c4d5e6f --dir calc && cd calc && $EDITOR ... &&\n"+
			"  git diff > fix.diff && crucible submit patch --competition c-abc123 --task calc-1a2b3c4d5e6f --file fix.diff", stderr)
	cf := addClientFlags(fs)
	comp := fs.String("competition", "", "competition id")
	task := fs.String("task", "", "task instance id (crucible patch tasks)")
	dir := fs.String("dir", "", "directory to create (must not exist or be empty)")
	c, err := parseWithID(fs, args, cf, "competition", comp, false)
	if err != nil {
		return err
	}
	if *task == "" || *dir == "" {
		return usagef("--task INSTANCE and --dir DIR are required")
	}
	tgz, err := c.TaskTree(ctx, *comp, *task)
	if err != nil {
		return err
	}
	if err := unpackTree(tgz, *dir, maxCheckoutBytes); err != nil {
		return fmt.Errorf("checkout %s: %w", *task, err)
	}
	for _, g := range [][]string{{"init", "-q"}, {"add", "-A", "-f"}, {"commit", "-q", "--no-verify", "-m", "base of " + *task}} {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "user.name=crucible", "-c", "user.email=crucible@localhost", "-c", "core.hooksPath=/dev/null"}, g...)...)
		cmd.Dir = *dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s in %s: %w: %s", strings.Join(g, " "), *dir, err, bytes.TrimSpace(out))
		}
	}
	fmt.Fprintf(stdout, "checked out %s into %s; fix it, then: git -C %s diff > fix.diff\n", *task, *dir, *dir)
	return nil
}

// Bounds of one checkout: total file bytes and entries.
const (
	maxCheckoutBytes   = 1 << 30
	maxCheckoutEntries = 200_000
)

// unpackTree extracts a tar.gz into dir (created; it must not exist or be
// empty) without ever writing outside it: entry names must be relative
// and free of "..", only regular files, directories and symbolic links
// are taken, a link's target must be relative and free of ".." (so it
// resolves inside dir), links are made last and no entry may pass through
// one, and the total size is bounded by limit.
func unpackTree(tgz []byte, dir string, limit int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return err
	} else if len(ents) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	}
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	type link struct{ name, target string }
	var links []link
	seen := map[string]bool{}
	var total int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if n >= maxCheckoutEntries {
			return fmt.Errorf("more than %d entries", maxCheckoutEntries)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue // git archive's record of the commit id
		}
		name, err := safeName(h.Name)
		if err != nil {
			return err
		}
		if seen[name] {
			return fmt.Errorf("%q appears twice", h.Name)
		}
		seen[name] = true
		dst := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if total += h.Size; h.Size < 0 || total > limit {
				return fmt.Errorf("the tree is over the limit of %d bytes", limit)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			mode := os.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, io.LimitReader(tr, h.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if path.IsAbs(h.Linkname) || hasDotDot(h.Linkname) {
				return fmt.Errorf("symbolic link %q → %q points out of the tree", h.Name, h.Linkname)
			}
			links = append(links, link{name, h.Linkname})
		default:
			return fmt.Errorf("%q: entry type %q is not a file, directory or symbolic link", h.Name, h.Typeflag)
		}
	}
	isLink := map[string]bool{}
	for _, l := range links {
		isLink[l.name] = true
	}
	for name := range seen {
		for i := strings.IndexByte(name, '/'); i >= 0; i = next(name, i) {
			if isLink[name[:i]] {
				return fmt.Errorf("%q lies beneath the symbolic link %q", name, name[:i])
			}
		}
	}
	for _, l := range links {
		dst := filepath.Join(dir, filepath.FromSlash(l.name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(l.target, dst); err != nil {
			return err
		}
	}
	return nil
}

// next returns the index of the first "/" in name after i, or -1.
func next(name string, i int) int {
	if j := strings.IndexByte(name[i+1:], '/'); j >= 0 {
		return i + 1 + j
	}
	return -1
}

// safeName cleans a tar entry name, refusing absolute names and "..".
func safeName(name string) (string, error) {
	clean := strings.TrimSuffix(path.Clean(strings.TrimPrefix(name, "./")), "/")
	if name == "" || path.IsAbs(name) || hasDotDot(name) || clean == "." || strings.ContainsRune(name, '\\') {
		return "", fmt.Errorf("entry %q is not a relative path inside the tree", name)
	}
	return clean, nil
}

func hasDotDot(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}
