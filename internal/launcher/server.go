package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bounds on what the launcher reads from a server.
const (
	tailBytes      = 4 << 10 // the end of its output quoted in errors
	maxModelsBytes = 1 << 20 // a /v1/models answer
	logName        = "server.log"
)

// server is one launched process and its scratch directory. refs is
// guarded by Launcher.mu; the rest is set by run before ready is closed.
type server struct {
	l      *Launcher
	key    key
	refs   int
	ctx    context.Context
	cancel context.CancelFunc

	ready   chan struct{} // closed once started (err nil) or failed
	err     error
	baseURL string
	pid     int

	exited   chan struct{} // closed once the process is gone and cleaned up
	tail     string        // the end of its output, read before the cleanup
	stopping bool          // set (under stopOnce) before signalling
	stopOnce sync.Once
}

func newServer(l *Launcher, k key) *server {
	ctx, cancel := context.WithCancel(context.Background())
	return &server{l: l, key: k, ctx: ctx, cancel: cancel, ready: make(chan struct{}), exited: make(chan struct{})}
}

func (s *server) dead() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// run starts the process and waits until it lists the model; it owns the
// slot taken for it, which watch gives back when the process is gone.
func (s *server) run() {
	defer close(s.ready)
	pid, err := s.start()
	if err != nil {
		s.err = err
		<-s.l.slots
		s.l.all.Done()
		close(s.exited)
		return
	}
	s.pid = pid
	log := s.l.cfg.Logger.With("dir", s.key.dir, "model", s.key.name, "pid", pid)
	log.Info("model server started", "url", s.baseURL)
	if err := s.health(); err != nil {
		s.l.mu.Lock()
		s.stopping = true // reported here, not as an unexpected exit
		s.l.mu.Unlock()
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.exited
		s.err = fmt.Errorf("launcher: %s for %s: %w; its output ends:\n%s", s.l.argv[0], s.key.dir, err, s.tail)
		log.Warn("model server failed to start", "err", err)
		return
	}
	log.Info("model server ready")
}

// start runs the command on a free loopback port in its own process group.
func (s *server) start() (int, error) {
	port, err := freePort()
	if err != nil {
		return 0, fmt.Errorf("launcher: no free loopback port: %w", err)
	}
	vars := []string{"{dir}", s.key.dir, "{port}", strconv.Itoa(port), "{name}", s.key.name}
	if s.l.gguf {
		g, err := ggufFile(s.key.dir)
		if err != nil {
			return 0, err
		}
		vars = append(vars, "{gguf}", g)
	}
	// One pass per argument, after splitting: a value is never split and
	// never substituted again.
	r := strings.NewReplacer(vars...)
	argv := make([]string, len(s.l.argv))
	for i, a := range s.l.argv {
		argv[i] = r.Replace(a)
	}
	work, err := os.MkdirTemp("", "crucible-model-")
	if err != nil {
		return 0, fmt.Errorf("launcher: scratch directory: %w", err)
	}
	logf, err := os.Create(filepath.Join(work, logName))
	if err != nil {
		_ = os.RemoveAll(work)
		return 0, fmt.Errorf("launcher: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "TMPDIR="+work)
	// A file, not a pipe: Wait then never waits for a child holding it.
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(work)
		return 0, fmt.Errorf("launcher: start %s: %w", argv[0], err)
	}
	s.baseURL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/v1"
	go s.watch(cmd, work)
	return cmd.Process.Pid, nil
}

// watch reaps the process, kills what is left of its group, removes the
// scratch directory and gives the slot back.
func (s *server) watch(cmd *exec.Cmd, work string) {
	err := cmd.Wait()
	pid := cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	s.tail = readTail(work)
	if !s.isStopping() && s.ctx.Err() == nil {
		s.l.cfg.Logger.Warn("model server exited unexpectedly", "dir", s.key.dir, "model", s.key.name,
			"pid", pid, "err", err, "output", s.tail)
	}
	_ = os.RemoveAll(work)
	<-s.l.slots
	s.l.all.Done()
	close(s.exited)
}

func (s *server) isStopping() bool {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	return s.stopping
}

// stop ends the server: SIGTERM to its group, StopTimeout of grace, then
// SIGKILL. It returns once the process is gone and cleaned up.
func (s *server) stop() {
	s.stopOnce.Do(func() {
		s.l.mu.Lock()
		s.stopping = true
		s.l.mu.Unlock()
		s.cancel()
		<-s.ready
		if s.dead() {
			return
		}
		_ = syscall.Kill(-s.pid, syscall.SIGTERM)
		t := time.NewTimer(s.l.cfg.StopTimeout)
		defer t.Stop()
		select {
		case <-s.exited:
		case <-t.C:
			_ = syscall.Kill(-s.pid, syscall.SIGKILL)
			<-s.exited
		}
		s.l.cfg.Logger.Info("model server stopped", "dir", s.key.dir, "model", s.key.name, "pid", s.pid)
	})
	<-s.exited
}

var healthClient = &http.Client{
	// Loopback only: never through a proxy from the environment.
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	Timeout:   5 * time.Second,
}

// health polls GET /v1/models until it lists the model, the process
// exits, StartTimeout passes or the server is stopped.
func (s *server) health() error {
	deadline := time.NewTimer(s.l.cfg.StartTimeout)
	defer deadline.Stop()
	wait := 20 * time.Millisecond
	var last error
	for {
		listed, err := s.lists()
		if err == nil && listed {
			return nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("/v1/models does not list %q yet", s.key.name)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.exited:
			t.Stop()
			return errors.New("the server exited before listing the model")
		case <-deadline.C:
			t.Stop()
			return fmt.Errorf("the server did not list model %q on /v1/models within %s (last: %v); killed its process group",
				s.key.name, s.l.cfg.StartTimeout, last)
		case <-s.ctx.Done():
			t.Stop()
			return errors.New("stopped while starting")
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// lists reports whether the server's /v1/models lists the model.
func (s *server) lists() (bool, error) {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, s.baseURL+"/models", nil)
	if err != nil {
		return false, err
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET /v1/models: %s", resp.Status)
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxModelsBytes)).Decode(&list); err != nil {
		return false, fmt.Errorf("GET /v1/models: %w", err)
	}
	for _, m := range list.Data {
		if m.ID == s.key.name {
			return true, nil
		}
	}
	return false, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// readTail returns the last tailBytes of the server's output.
func readTail(work string) string {
	f, err := os.Open(filepath.Join(work, logName))
	if err != nil {
		return "(no output: " + err.Error() + ")"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > tailBytes {
		_, _ = f.Seek(fi.Size()-tailBytes, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, tailBytes))
	return strings.TrimSpace(string(b))
}
