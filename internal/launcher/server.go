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
	"regexp"
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

// server is one launched model server: its process (the last attempt's,
// see run) and scratch directory. refs is guarded by Launcher.mu; the rest
// is set by run before ready is closed.
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

	exited   chan struct{} // closed once the server is gone and its slot given back
	stopping bool          // set (under stopOnce) before signalling
	stopOnce sync.Once
}

// proc is one attempt's process.
type proc struct {
	pid    int
	port   int
	exited chan struct{} // closed once it is gone and cleaned up
	tail   string        // the end of its output, read before the cleanup
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

// maxStartAttempts bounds the starts of one server when its port was taken
// by another process between the pick and the server's bind.
const maxStartAttempts = 3

// errPortTaken marks an attempt whose server exited before listing the
// model because its port was taken.
var errPortTaken = errors.New("its port was taken before it could bind it")

// run starts the process and waits until it lists the model; it owns the
// slot taken for it, given back once the server is gone. A server that
// exits before listing the model because another process took its port
// is started again on a new port, up to maxStartAttempts times.
func (s *server) run() {
	defer close(s.ready)
	var err error
	for attempt := 1; ; attempt++ {
		var p *proc
		if p, err = s.attempt(); err == nil {
			go func() {
				<-p.exited
				s.done()
			}()
			return
		}
		if !errors.Is(err, errPortTaken) || attempt == maxStartAttempts || s.ctx.Err() != nil {
			break
		}
		s.l.cfg.Logger.Warn("model server lost its port; starting it on another", "dir", s.key.dir, "model", s.key.name,
			"port", p.port, "attempt", attempt)
	}
	s.err = err
	s.done()
}

// done gives the server's slot back and marks it gone.
func (s *server) done() {
	<-s.l.slots
	s.l.all.Done()
	close(s.exited)
}

// attempt starts one process and waits until it lists the model. On
// failure the process is gone and cleaned up when it returns (p is set
// when a process was started).
func (s *server) attempt() (*proc, error) {
	p, err := s.start()
	if err != nil {
		return nil, err
	}
	s.pid = p.pid
	log := s.l.cfg.Logger.With("dir", s.key.dir, "model", s.key.name, "pid", p.pid)
	log.Info("model server started", "url", s.baseURL)
	err = s.health(p)
	if err == nil {
		log.Info("model server ready")
		return p, nil
	}
	exited := errors.Is(err, errExitedEarly)
	if !exited {
		s.l.mu.Lock()
		s.stopping = true // reported here, not as an unexpected exit
		s.l.mu.Unlock()
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	<-p.exited
	if exited && portTaken(p.port, p.tail) {
		err = fmt.Errorf("%w (port %d)", errPortTaken, p.port)
	}
	log.Warn("model server failed to start", "err", err)
	return p, fmt.Errorf("launcher: %s for %s: %w; its output ends:\n%s", s.l.argv[0], s.key.dir, err, p.tail)
}

// bindFailure is what servers print when they cannot bind their port
// (Go, Python and uvicorn: "address already in use"; llama-server:
// "couldn't bind HTTP server socket").
var bindFailure = regexp.MustCompile(`(?i)address already in use|\bbind\b`)

// portTaken reports whether an attempt that exited early lost its port to
// another process: its output says it could not bind, or the port is
// still held now that the server and its group are gone.
func portTaken(port int, tail string) bool {
	if bindFailure.MatchString(tail) {
		return true
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return true
	}
	_ = ln.Close()
	return false
}

// start runs the command on a free loopback port in its own process group.
func (s *server) start() (*proc, error) {
	port, err := s.l.pickPort()
	if err != nil {
		return nil, fmt.Errorf("launcher: no free loopback port: %w", err)
	}
	vars := []string{"{dir}", s.key.dir, "{port}", strconv.Itoa(port), "{name}", s.key.name}
	if s.l.gguf {
		g, err := ggufFile(s.key.dir)
		if err != nil {
			return nil, err
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
		return nil, fmt.Errorf("launcher: scratch directory: %w", err)
	}
	logf, err := newBoundedLog(work, s.l.cfg.MaxLogBytes)
	if err != nil {
		_ = os.RemoveAll(work)
		return nil, fmt.Errorf("launcher: %w", err)
	}
	// A pipe copied into a bounded log: a file written by the server
	// itself could grow without bound.
	pr, pw, err := os.Pipe()
	if err != nil {
		_ = logf.f.Close()
		_ = os.RemoveAll(work)
		return nil, fmt.Errorf("launcher: %w", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "TMPDIR="+work)
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	_ = pw.Close() // the server's copies keep it open
	if err != nil {
		_ = pr.Close()
		_ = logf.f.Close()
		_ = os.RemoveAll(work)
		return nil, fmt.Errorf("launcher: start %s: %w", argv[0], err)
	}
	pumped := make(chan struct{})
	go func() {
		logf.pump(pr)
		close(pumped)
	}()
	s.baseURL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/v1"
	p := &proc{pid: cmd.Process.Pid, port: port, exited: make(chan struct{})}
	go s.watch(p, cmd, work, pr, pumped)
	return p, nil
}

// outputGrace is how long watch waits, once the group is killed, for the
// rest of the output: a process that left the group may hold the pipe.
const outputGrace = 5 * time.Second

// watch reaps the process, kills what is left of its group, reads the end
// of its output and removes the scratch directory.
func (s *server) watch(p *proc, cmd *exec.Cmd, work string, pr *os.File, pumped chan struct{}) {
	err := cmd.Wait()
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	t := time.NewTimer(outputGrace)
	select {
	case <-pumped:
	case <-t.C:
		_ = pr.Close()
		<-pumped
	}
	t.Stop()
	_ = pr.Close()
	p.tail = readTail(work)
	if !s.isStopping() && s.ctx.Err() == nil {
		s.l.cfg.Logger.Warn("model server exited unexpectedly", "dir", s.key.dir, "model", s.key.name,
			"pid", p.pid, "err", err, "output", p.tail)
	}
	_ = os.RemoveAll(work)
	close(p.exited)
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

// errExitedEarly is a process that exited before listing the model.
var errExitedEarly = errors.New("the server exited before listing the model")

// health polls GET /v1/models until it lists the model, the process p
// exits, StartTimeout passes or the server is stopped.
func (s *server) health(p *proc) error {
	deadline := time.NewTimer(s.l.cfg.StartTimeout)
	defer deadline.Stop()
	// A probe ends when the process does: whatever holds the port then
	// (another process that took it) is not the server.
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	wait := 20 * time.Millisecond
	var last error
	for {
		listed, err := s.lists(ctx)
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
		case <-p.exited:
			t.Stop()
			return errExitedEarly
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
func (s *server) lists(ctx context.Context) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL+"/models", nil)
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
