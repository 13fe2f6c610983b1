package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tgz builds a tar.gz from headers; a regular file's body is its Linkname
// field's text (moved into the content).
func tgz(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range entries {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body, h.Linkname = h.Linkname, ""
			h.Size = int64(len(body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func file(name, body string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeReg, Linkname: body}
}

func symlink(name, target string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}
}

// A hostile server (or a tree tampered with on the way) cannot make
// `crucible patch checkout` write outside the directory it was given.
func TestCheckoutRefusesTarballsThatEscapeTheDirectory(t *testing.T) {
	for _, tt := range []struct {
		name    string
		entries []tar.Header
		limit   int64
		want    string
	}{
		{"path traversal", []tar.Header{file("ok.go", "x"), file("../evil", "pwned")}, 1 << 20, "not a relative path"},
		{"traversal inside a name", []tar.Header{file("a/../../evil", "pwned")}, 1 << 20, "not a relative path"},
		{"absolute path", []tar.Header{file("/tmp/evil", "pwned")}, 1 << 20, "not a relative path"},
		{"symbolic link out by ..", []tar.Header{symlink("out", "../../etc")}, 1 << 20, "points out of the tree"},
		{"absolute symbolic link", []tar.Header{symlink("out", "/etc")}, 1 << 20, "points out of the tree"},
		{"a file written through a link", []tar.Header{symlink("l", "sub"), file("l/x", "pwned")}, 1 << 20, "beneath the symbolic link"},
		{"a link made through a link", []tar.Header{symlink("l", "."), symlink("l/up", "x")}, 1 << 20, "beneath the symbolic link"},
		{"hard link", []tar.Header{file("a", "x"), {Name: "b", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}, 1 << 20, "entry type"},
		{"device", []tar.Header{{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}, 1 << 20, "entry type"},
		{"over the size bound", []tar.Header{file("a", strings.Repeat("x", 600)), file("b", strings.Repeat("x", 600))}, 1000, "over the limit"},
		{"duplicate entry", []tar.Header{file("a", "x"), file("a", "y")}, 1 << 20, "twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "checkout")
			err := unpackTree(tgz(t, tt.entries...), dir, tt.limit)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("unpack: %v, want an error saying %q", err, tt.want)
			}
			if _, err := os.Lstat(filepath.Join(parent, "evil")); err == nil {
				t.Fatal("a file was written outside the checkout")
			}
		})
	}
	t.Run("an ordinary tree with an inside link unpacks", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "checkout")
		exe := file("bin/run.sh", "#!/bin/sh\n")
		exe.Mode = 0o755
		err := unpackTree(tgz(t, tar.Header{Name: "pkg/", Typeflag: tar.TypeDir, Mode: 0o755}, file("pkg/a.go", "package a\n"), exe, symlink("docs", "pkg/a.go")), dir, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "docs")); err != nil || string(b) != "package a\n" {
			t.Fatalf("docs link reads %q, %v", b, err)
		}
		if st, err := os.Stat(filepath.Join(dir, "bin/run.sh")); err != nil || st.Mode().Perm()&0o100 == 0 {
			t.Fatalf("bin/run.sh: %v %v, want executable", st, err)
		}
	})
	t.Run("a non-empty directory is refused", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "mine"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := unpackTree(tgz(t, file("a", "x")), dir, 1<<20); err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Fatalf("unpack into a non-empty directory: %v", err)
		}
	})
}
