package artifact

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Source says where an artifact's files are: exactly one of Path (a local
// directory, copied), URL (a file:// .tar or .tar.gz) or Repo with Revision
// (fetched by the configured command).
type Source struct {
	Path     string `json:"path,omitempty"`
	URL      string `json:"url,omitempty"`
	Repo     string `json:"repo,omitempty"`
	Revision string `json:"revision,omitempty"`
}

// Fetcher fetches a Source into an empty directory.
type Fetcher struct {
	// Command is the template for Repo sources, e.g.
	// "huggingface-cli download {repo} --revision {revision} --local-dir {dir}".
	// It is split into arguments first (single and double quotes group) and
	// the placeholders are substituted inside each argument, so a value never
	// becomes more than one argument and no shell ever reads it.
	Command string
	// Timeout bounds the command; its process group is killed after it.
	Timeout time.Duration
	// Limits bound what a tarball may unpack and a directory may copy.
	Limits Limits
}

// Fetch fills the empty directory dst from src.
func (f Fetcher) Fetch(ctx context.Context, src Source, dst string) error {
	set := 0
	for _, s := range []string{src.Path, src.URL, src.Repo} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return errors.New("artifact source: give exactly one of a path, a file:// URL or a repository")
	}
	switch {
	case src.Path != "":
		return copyTree(src.Path, dst, f.Limits)
	case src.URL != "":
		u, err := url.Parse(src.URL)
		if err != nil || u.Scheme != "file" || u.Host != "" {
			return fmt.Errorf("artifact URL %q: only file:///absolute/path.tar[.gz] is fetched", src.URL)
		}
		return untar(u.Path, dst, f.Limits)
	}
	return f.command(ctx, src, dst)
}

// copyTree copies the regular files of src into dst, with HashTree's rules.
func copyTree(src, dst string, lim Limits) error {
	files, _, err := listTree(src, lim)
	if err != nil {
		return err
	}
	for _, file := range files {
		if err := copyFile(filepath.Join(src, filepath.FromSlash(file.Name)), filepath.Join(dst, filepath.FromSlash(file.Name)), file.Size); err != nil {
			return fmt.Errorf("copy %s: %w", file.Name, err)
		}
	}
	return nil
}

func copyFile(from, to string, size int64) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFile(to, in, size)
}

// writeFile creates to (and its parents) and writes exactly size bytes of r.
func writeFile(to string, r io.Reader, size int64) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, io.LimitReader(r, size))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("%d bytes, expected %d", n, size)
	}
	return err
}

// untar unpacks a .tar or gzip-compressed .tar into dst: regular files and
// directories only, names checked like a tree's, entries and bytes bounded
// by the limits before each entry is written.
func untar(path, dst string, lim Limits) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	br := bufio.NewReader(fh)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	var files int
	var total int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
		if name == "" || name == "." {
			continue
		}
		if err := checkName(name, lim.MaxNameLen); err != nil {
			return fmt.Errorf("%s: entry %w", path, err)
		}
		target := filepath.Join(dst, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			continue
		case tar.TypeReg:
		default:
			return fmt.Errorf("%s: entry %q is not a regular file or directory (tar type %q); links and devices are refused", path, name, hdr.Typeflag)
		}
		files++
		if files > lim.MaxFiles {
			return fmt.Errorf("%s: more than %d files", path, lim.MaxFiles)
		}
		if hdr.Size < 0 || hdr.Size > lim.MaxBytes-total {
			return fmt.Errorf("%s: more than %d bytes unpacked (at %s)", path, lim.MaxBytes, name)
		}
		total += hdr.Size
		if err := writeFile(target, tr, hdr.Size); err != nil {
			return fmt.Errorf("%s: %s: %w", path, name, err)
		}
	}
}

var (
	repoName     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)
	revisionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
)

// CheckRepo refuses a repository or revision name outside the plain
// characters hubs use (ORG/NAME; a branch, tag or commit), so that neither
// can start with "-" and pass as an option of the fetch tool.
func CheckRepo(repo, revision string) error {
	if len(repo) > 200 || !repoName.MatchString(repo) {
		return fmt.Errorf("repository %.80q: use ORG/NAME of letters, digits, '.', '_' and '-' (at most 200 bytes)", repo)
	}
	if len(revision) > 200 || !revisionName.MatchString(revision) {
		return fmt.Errorf("revision %.80q: use a branch, tag or commit of letters, digits, '.', '_', '/' and '-' (at most 200 bytes)", revision)
	}
	return nil
}

func (f Fetcher) command(ctx context.Context, src Source, dst string) error {
	if f.Command == "" {
		return errors.New("no fetch command is configured for repositories (--model-fetcher)")
	}
	if err := CheckRepo(src.Repo, src.Revision); err != nil {
		return err
	}
	argv, err := expand(f.Command, map[string]string{"{repo}": src.Repo, "{revision}": src.Revision, "{dir}": dst})
	if err != nil {
		return err
	}
	return f.run(ctx, argv)
}

// run runs argv (no shell) under the timeout, killing its process group
// when the timeout passes.
func (f Fetcher) run(ctx context.Context, argv []string) error {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = time.Hour
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("fetch command %s timed out after %s", argv[0], timeout)
	}
	if err != nil {
		return fmt.Errorf("fetch command %s: %w: %s", argv[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}

// expand splits template into arguments (whitespace separates; single or
// double quotes group, without escapes) and substitutes the placeholders in
// each argument.
func expand(template string, vals map[string]string) ([]string, error) {
	var argv []string
	var cur strings.Builder
	inArg := false
	var quote rune
	for _, r := range template {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inArg = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inArg {
				argv = append(argv, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("fetch command %q: unclosed %c quote", template, quote)
	}
	if inArg {
		argv = append(argv, cur.String())
	}
	if len(argv) == 0 {
		return nil, errors.New("fetch command is empty")
	}
	pairs := make([]string, 0, 2*len(vals))
	for k, v := range vals {
		pairs = append(pairs, k, v)
	}
	rep := strings.NewReplacer(pairs...)
	for i := range argv {
		argv[i] = rep.Replace(argv[i])
	}
	return argv, nil
}

// tail keeps the last 2 KiB written to it: the fetch command's output for
// the error message.
type tail []byte

func (t *tail) Write(p []byte) (int, error) {
	*t = append(*t, p...)
	if len(*t) > 2048 {
		*t = append((*t)[:0], (*t)[len(*t)-2048:]...)
	}
	return len(p), nil
}
