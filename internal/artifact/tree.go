// Package artifact handles model artifacts that competitors publish as files
// (weights, config, tokenizer) instead of an endpoint: the tree digest a
// submission commits to, the commitment binding it to a key and a time, the
// facts read from the files (parameter count, architecture, chat template),
// a content-addressed cache and the fetchers that fill it.
//
// A competitor controls every byte of an artifact, so every input is bounded
// before work is done on it and the tree may hold only regular files and
// directories with plain relative names. The package imports no store, API
// or job package (internal/deps_test.go says so): the hub and the workers
// call it.
package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Limits bound an artifact tree. They are checked on the names and sizes
// before any file is hashed or copied.
type Limits struct {
	MaxFiles   int   // regular files in the tree
	MaxBytes   int64 // sum of the files' sizes
	MaxNameLen int   // bytes of a file's slash-separated relative name
}

// DefaultLimits fit a 70B-parameter model in 16-bit weights with its
// tokenizer and configuration files.
func DefaultLimits() Limits {
	return Limits{MaxFiles: 10_000, MaxBytes: 200 << 30, MaxNameLen: 1024}
}

// File is one regular file of a tree.
type File struct {
	Name   string `json:"name"` // relative, slash-separated
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Tree is an artifact's file tree and its digest.
type Tree struct {
	Digest string `json:"digest"`
	Files  []File `json:"files"` // sorted by Name (byte order)
	Bytes  int64  `json:"bytes"`
}

// skipped reports whether the directory at rel is left out of the tree: the
// version-control directories (.git, .hg, .svn) anywhere, and the download
// metadata huggingface-cli keeps in .cache at the top, so the tree of a
// clone or a hub download equals the tree of the published files.
func skipped(rel string, d fs.DirEntry) bool {
	if !d.IsDir() {
		return false
	}
	switch d.Name() {
	case ".git", ".hg", ".svn":
		return true
	}
	return rel == ".cache"
}

// checkName refuses a relative name that could escape the tree or make the
// digest ambiguous: absolute paths, "..", ".", empty components,
// backslashes and control characters.
func checkName(name string, max int) error {
	if name == "" || len(name) > max {
		return fmt.Errorf("name %.80q is %d bytes; names are 1 to %d bytes", name, len(name), max)
	}
	if strings.HasPrefix(name, "/") {
		return fmt.Errorf("name %q is absolute", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("name %q holds a control character or a backslash", name)
		}
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("name %q has an empty, \".\" or \"..\" component", name)
		}
	}
	return nil
}

// listTree walks dir without following links and returns its regular files
// (names and sizes, not yet hashed), refusing anything else and checking the
// limits as it goes, before any content is read.
func listTree(dir string, lim Limits) ([]File, int64, error) {
	info, err := os.Lstat(dir)
	if err != nil {
		return nil, 0, err
	}
	if !info.IsDir() {
		return nil, 0, fmt.Errorf("%s is not a directory", dir)
	}
	var files []File
	var total int64
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skipped(rel, d) {
			return filepath.SkipDir
		}
		if err := checkName(rel, lim.MaxNameLen); err != nil {
			return err
		}
		switch t := d.Type(); {
		case t.IsDir():
			return nil
		case !t.IsRegular():
			return fmt.Errorf("%s is a %s; an artifact holds regular files and directories only", rel, describe(t))
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if len(files) == lim.MaxFiles {
			return fmt.Errorf("more than %d files", lim.MaxFiles)
		}
		if fi.Size() > lim.MaxBytes-total {
			return fmt.Errorf("more than %d bytes (at %s)", lim.MaxBytes, rel)
		}
		total += fi.Size()
		files = append(files, File{Name: rel, Size: fi.Size()})
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("artifact %s: %w", dir, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, total, nil
}

func describe(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// HashTree digests the tree at dir: sha256 over "crucible-artifact-tree-v1"
// and, per regular file in name order, its relative slash-separated name,
// size and sha256. Symbolic links, devices and other special files are
// refused, as are names that are absolute, hold ".." or control characters;
// .git, .hg and .svn directories and a top-level .cache (hub download
// metadata) are left out. The limits are checked before any file is read.
func HashTree(dir string, lim Limits) (Tree, error) {
	files, total, err := listTree(dir, lim)
	if err != nil {
		return Tree{}, err
	}
	h := sha256.New()
	io.WriteString(h, "crucible-artifact-tree-v1\n")
	for i := range files {
		sum, err := hashFile(filepath.Join(dir, filepath.FromSlash(files[i].Name)), files[i].Size)
		if err != nil {
			return Tree{}, fmt.Errorf("artifact %s: %s: %w", dir, files[i].Name, err)
		}
		files[i].SHA256 = sum
		fmt.Fprintf(h, "%s\x00%d\x00%s\n", files[i].Name, files[i].Size, sum)
	}
	return Tree{Digest: hex.EncodeToString(h.Sum(nil)), Files: files, Bytes: total}, nil
}

// hashFile hashes exactly size bytes of the regular file at path; a file
// replaced or grown since it was listed is an error.
func hashFile(path string, size int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() || fi.Size() != size {
		return "", fmt.Errorf("changed while it was hashed")
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, size+1))
	if err != nil {
		return "", err
	}
	if n != size {
		return "", fmt.Errorf("changed while it was hashed (%d bytes, listed %d)", n, size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Commitment binds a tree digest to the submitter's key and the commit time:
// sha256 of "crucible-artifact-commit-v1", the digest, the key ID and the
// time (UTC, RFC 3339 with nanoseconds), one per line. It follows the
// Bittensor model subnets (REFERENCE.md, "Model competitions"): the chain
// commitment is the hash of the model hash and the hotkey, stored with the
// block it was committed at, and the validator recomputes it from the
// downloaded model. The same tree committed later by another key gets a
// different commitment but the same tree digest, which is how a copy is
// recognised.
func Commitment(treeDigest, keyID string, at time.Time) string {
	sum := sha256.Sum256([]byte("crucible-artifact-commit-v1\n" + treeDigest + "\n" + keyID + "\n" +
		at.UTC().Format(time.RFC3339Nano) + "\n"))
	return hex.EncodeToString(sum[:])
}
