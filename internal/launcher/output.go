package launcher

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DefaultMaxLogBytes bounds a server's kept output unless
// Config.MaxLogBytes says otherwise.
const DefaultMaxLogBytes = 16 << 20

// boundedLog keeps the end of a server's output in its scratch directory
// without letting a chatty (or hostile) server fill the disk: it writes
// server.log until that holds half the bound, then renames it to
// server.log.1 (replacing the previous one) and starts a new server.log,
// so the two files hold between half the bound and the bound of the most
// recent output.
type boundedLog struct {
	path string
	half int64
	f    *os.File
	n    int64 // bytes in f
}

func newBoundedLog(dir string, max int64) (*boundedLog, error) {
	path := filepath.Join(dir, logName)
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &boundedLog{path: path, half: max / 2, f: f}, nil
}

func (b *boundedLog) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if b.n >= b.half {
			if err := b.rotate(); err != nil {
				return written, err
			}
		}
		k, err := b.f.Write(p[:min(int64(len(p)), b.half-b.n)])
		written, b.n, p = written+k, b.n+int64(k), p[k:]
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

func (b *boundedLog) rotate() error {
	if err := b.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(b.path, b.path+".1"); err != nil {
		return err
	}
	f, err := os.Create(b.path)
	if err != nil {
		return err
	}
	b.f, b.n = f, 0
	return nil
}

// pump copies the server's output from r into the log until the server
// and its group have closed their ends; if the log cannot be written any
// more (a full disk) it goes on reading and drops the rest, so the server
// never blocks on a full pipe.
func (b *boundedLog) pump(r io.Reader) {
	if _, err := io.Copy(b, r); err != nil && !errors.Is(err, os.ErrClosed) {
		_, _ = io.Copy(io.Discard, r)
	}
	_ = b.f.Close()
}

// readTail returns the last tailBytes of the server's output, across the
// rotated file when server.log alone holds less.
func readTail(work string) string {
	path := filepath.Join(work, logName)
	cur, err := fileTail(path)
	if err != nil {
		return "(no output: " + err.Error() + ")"
	}
	if len(cur) < tailBytes {
		if prev, err := fileTail(path + ".1"); err == nil {
			cur = append(prev, cur...)
			cur = cur[max(0, len(cur)-tailBytes):]
		}
	}
	return strings.TrimSpace(string(cur))
}

// fileTail returns the last tailBytes of the file at path.
func fileTail(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > tailBytes {
		if _, err := f.Seek(fi.Size()-tailBytes, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(f, tailBytes))
}
