package patch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"crucible/internal/sandbox"
)

// tarNames lists the entries of a tar.gz.
func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeXGlobalHeader { // git's record of the commit id
			names = append(names, h.Name)
		}
	}
	sort.Strings(names)
	return names
}

// The downloadable tree of a task is base_commit's files only: no .git,
// nothing from the fix or later commits, from a bundle as from a
// repository, and an archive over the limit is refused, not truncated.
func TestArchiveTreeHasTheBaseFilesOnly(t *testing.T) {
	if err := sandbox.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	repo := goRepo(t)
	base := gitT(t, repo, "rev-parse", "HEAD~2")
	bundle := filepath.Join(t.TempDir(), "repo.bundle")
	gitT(t, repo, "bundle", "create", "--quiet", bundle, "--all")
	for _, src := range []string{repo, bundle} {
		b, err := ArchiveTree(context.Background(), src, base, MaxTreeBytes)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(tarNames(t, b), ","); got != "calc.go,calc_test.go,go.mod" {
			t.Errorf("tree of %s: %s, want the base commit's three files", src, got)
		}
		if bytes.Contains(b, []byte("FUTURE")) {
			t.Errorf("tree of %s leaks a later commit", src)
		}
	}
	if _, err := ArchiveTree(context.Background(), bundle, base, 10); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("a 10-byte limit: %v, want a refusal", err)
	}
	if _, err := ArchiveTree(context.Background(), bundle, "--output=/tmp/x", MaxTreeBytes); err == nil {
		t.Fatal("an option as base_commit was accepted")
	}
}
