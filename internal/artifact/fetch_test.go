package artifact

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type tarEntry struct {
	name string
	typ  byte
	body string
	size int64 // declared size when body is empty and size > 0
}

// writeTar writes a .tar.gz of entries and returns its file:// URL.
func writeTar(t *testing.T, entries []tarEntry) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "a.tar.gz")
	fh, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(fh)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ == tar.TypeSymlink {
			hdr.Linkname, hdr.Size = "/etc/passwd", 0
		}
		if e.typ == tar.TypeDir {
			hdr.Size = 0
		}
		if e.size > 0 {
			hdr.Size = e.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.size > 0 {
			tw.Write(make([]byte, e.size))
		} else {
			tw.Write([]byte(e.body))
		}
	}
	for _, c := range []interface{ Close() error }{tw, zw, fh} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return "file://" + p
}

func TestFetchTarballAndPath(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, toyModel(t))
	want, err := HashTree(src, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var entries []tarEntry
	entries = append(entries, tarEntry{name: "./", typ: tar.TypeDir}, tarEntry{name: "sub/", typ: tar.TypeDir})
	for name, body := range toyModel(t) {
		entries = append(entries, tarEntry{name: name, typ: tar.TypeReg, body: body})
	}
	f := Fetcher{Limits: DefaultLimits()}
	for name, s := range map[string]Source{"tarball": {URL: writeTar(t, entries)}, "path": {Path: src}} {
		dst := t.TempDir()
		if err := f.Fetch(context.Background(), s, dst); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := HashTree(dst, DefaultLimits())
		if err != nil || got.Digest != want.Digest {
			t.Fatalf("%s: fetched %s, %v; want %s", name, got.Digest, err, want.Digest)
		}
	}
}

func TestFetchTarballRefusesHostileArchives(t *testing.T) {
	lim := Limits{MaxFiles: 3, MaxBytes: 1000, MaxNameLen: 100}
	cases := map[string]struct {
		entries []tarEntry
		want    string
	}{
		"dot-dot":  {[]tarEntry{{name: "../escaped", typ: tar.TypeReg, body: "x"}}, `".." component`},
		"absolute": {[]tarEntry{{name: "/tmp/escaped", typ: tar.TypeReg, body: "x"}}, "absolute"},
		"symlink":  {[]tarEntry{{name: "link", typ: tar.TypeSymlink}}, "links and devices are refused"},
		"bomb":     {[]tarEntry{{name: "a", typ: tar.TypeReg, size: 600}, {name: "b", typ: tar.TypeReg, size: 600}}, "more than 1000 bytes"},
		"many": {[]tarEntry{{name: "a", typ: tar.TypeReg}, {name: "b", typ: tar.TypeReg}, {name: "c", typ: tar.TypeReg},
			{name: "d", typ: tar.TypeReg}}, "more than 3 files"},
	}
	for name, c := range cases {
		parent := t.TempDir()
		dst := filepath.Join(parent, "dst")
		os.Mkdir(dst, 0o755)
		err := Fetcher{Limits: lim}.Fetch(context.Background(), Source{URL: writeTar(t, c.entries)}, dst)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
		if _, err := os.Lstat(filepath.Join(parent, "escaped")); err == nil {
			t.Errorf("%s: a file escaped the destination", name)
		}
	}
	if err := (Fetcher{Limits: lim}).Fetch(context.Background(), Source{URL: "http://example.com/a.tar"}, t.TempDir()); err == nil {
		t.Error("an http URL was fetched")
	}
}

func TestCommandFetcher(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, toyModel(t))
	// The configured tool: copy the repository's directory (named by {repo}
	// under src) into {dir}; {revision} is checked by the script.
	f := Fetcher{
		Command: `sh -c 'test "$2" = v1 && cp -R "$3"/"$1"/. "$4"' fetch {repo} {revision} ` + filepath.Dir(src) + ` {dir}`,
		Timeout: time.Minute, Limits: DefaultLimits(),
	}
	dst := t.TempDir()
	if err := f.Fetch(context.Background(), Source{Repo: filepath.Base(src), Revision: "v1"}, dst); err != nil {
		t.Fatal(err)
	}
	a, _ := HashTree(src, DefaultLimits())
	b, err := HashTree(dst, DefaultLimits())
	if err != nil || a.Digest != b.Digest {
		t.Fatalf("fetched %s, %v; want %s", b.Digest, err, a.Digest)
	}
	if err := f.Fetch(context.Background(), Source{Repo: filepath.Base(src), Revision: "v2"}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("failing tool: %v", err)
	}
	for _, bad := range []Source{{Repo: "x; rm -rf /", Revision: "main"}, {Repo: "--config=/etc/x", Revision: "main"},
		{Repo: "org/name", Revision: "-rf"}, {Repo: "a/b/c", Revision: "main"}} {
		if err := f.Fetch(context.Background(), bad, t.TempDir()); err == nil || !strings.Contains(err.Error(), "use ") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	// A tool that outlives the timeout, with a child in the background: the
	// whole process group is killed.
	slowDir := t.TempDir()
	slow := Fetcher{Command: `sh -c 'sleep 60 & echo $! > "$1/child"; wait' fetch {dir}`, Timeout: time.Second}
	if err := slow.Fetch(context.Background(), Source{Repo: "a/b", Revision: "main"}, slowDir); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("slow tool: %v", err)
	}
	pidText, err := os.ReadFile(filepath.Join(slowDir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	stat := "/proc/" + strings.TrimSpace(string(pidText)) + "/stat"
	// SIGKILL was sent before Fetch returned; wait (without a time bound the
	// test relies on) for the child to be reaped or a zombie.
	for i := 0; ; i++ {
		b, err := os.ReadFile(stat)
		if err != nil || strings.Contains(string(b), ") Z ") {
			break
		}
		if i == 200 {
			t.Fatalf("the fetch tool's background child is still running: %s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCommandTemplateIsNotAShell runs a hostile value through the template
// with the name check bypassed: it stays one argument and the shell
// metacharacters in it are never interpreted.
func TestCommandTemplateIsNotAShell(t *testing.T) {
	dir := t.TempDir()
	canary := filepath.Join(dir, "canary")
	argv, err := expand(`sh -c 'printf %s "$1" > "$2/repo.txt"' sh {repo} {dir}`,
		map[string]string{"{repo}": "x; touch " + canary + " #{dir}", "{dir}": dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(argv) != 6 || argv[4] != "x; touch "+canary+" #{dir}" {
		t.Fatalf("argv %q", argv)
	}
	f := Fetcher{Command: "unused", Timeout: time.Minute}
	if err := f.run(context.Background(), argv); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("the repository name ran as shell")
	}
	got, _ := os.ReadFile(filepath.Join(dir, "repo.txt"))
	if string(got) != argv[4] {
		t.Fatalf("the tool saw %q", got)
	}
	if _, err := expand(`sh -c 'unclosed`, nil); err == nil {
		t.Fatal("unclosed quote accepted")
	}
}
