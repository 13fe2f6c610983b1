// Package launcher starts the model servers that evaluate artifact
// submissions: a configured command (vLLM, llama.cpp's llama-server, or
// `crucible model-server --artifact` in tests) run on a free loopback port,
// health-checked on GET /v1/models until it lists the model, shared by every
// evaluation of the same artifact and stopped when the last one is done.
//
// The command template is split into arguments on white space BEFORE the
// placeholders are substituted, and run without a shell, so a
// competitor-controlled name or directory is always one literal argument:
//
//	vllm serve {dir} --port {port} --served-model-name {name}
//	llama-server -m {dir}/{gguf} --port {port} --alias {name}
//
// Placeholders: {dir} the artifact directory (absolute), {port} the port,
// {name} the model name, {gguf} the base name of the single .gguf file in
// the directory (an error when there is none or several). The template has
// no quoting: an argument cannot contain white space.
//
// Each server runs in its own process group with its own scratch directory
// (its working directory and TMPDIR), removed when it stops; stopping sends
// SIGTERM to the group, waits Config.StopTimeout, then SIGKILLs the group,
// children included. At most Config.MaxRunning servers run at once; a
// further Acquire of another artifact waits for one to stop. A server that
// exits on its own is noticed, and the next Acquire starts it again. A
// server that exits before listing its model because another process took
// its port between the pick and the bind is started again on another port
// (at most three starts). Its output goes through a pipe into server.log
// in the scratch directory, bounded to Config.MaxLogBytes.
//
// This package never imports the store, the job queue or the API.
package launcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Config configures a Launcher.
type Config struct {
	// Command is the server command template (see the package doc).
	Command string
	// MaxRunning bounds the servers running at once (default 1).
	MaxRunning int
	// StartTimeout bounds the wait for a server to list its model
	// (default 10 minutes: a large model loads slowly).
	StartTimeout time.Duration
	// StopTimeout is the grace between SIGTERM and SIGKILL (default 10s).
	StopTimeout time.Duration
	// MaxLogBytes bounds the output kept of each server, its most recent
	// (default DefaultMaxLogBytes; at least 8 KiB); the end of it is quoted
	// when the server fails.
	MaxLogBytes int64
	// Logger receives start and stop events (default slog.Default()).
	Logger *slog.Logger
}

// MaxNameBytes bounds a model name.
const MaxNameBytes = 256

// ErrClosed is returned by Acquire after Close.
var ErrClosed = errors.New("launcher: closed")

var placeholder = regexp.MustCompile(`\{[^{}]*\}`)

var known = map[string]bool{"{dir}": true, "{port}": true, "{name}": true, "{gguf}": true}

// Launcher runs model servers on demand. It is safe for concurrent use.
type Launcher struct {
	cfg   Config
	argv  []string
	gguf  bool
	slots chan struct{} // one token per running server
	// pickPort picks a server's port (freePort; a test's stands in).
	pickPort func() (int, error)

	mu      sync.Mutex
	servers map[key]*server
	closed  bool
	all     sync.WaitGroup // live server processes
}

type key struct{ dir, name string }

// New checks the command template and returns a Launcher.
func New(cfg Config) (*Launcher, error) {
	argv := strings.Fields(cfg.Command)
	if len(argv) == 0 {
		return nil, errors.New("launcher: the command is empty (e.g. 'vllm serve {dir} --port {port} --served-model-name {name}')")
	}
	if placeholder.MatchString(argv[0]) {
		return nil, fmt.Errorf("launcher: the program %q must not be a placeholder", argv[0])
	}
	var port, gguf bool
	for _, a := range argv {
		for _, p := range placeholder.FindAllString(a, -1) {
			if !known[p] {
				return nil, fmt.Errorf("launcher: command %q: unknown placeholder %s (want {dir}, {port}, {name} or {gguf})", cfg.Command, p)
			}
			port = port || p == "{port}"
			gguf = gguf || p == "{gguf}"
		}
	}
	if !port {
		return nil, fmt.Errorf("launcher: command %q has no {port}: the server must listen where the launcher looks", cfg.Command)
	}
	if cfg.MaxRunning <= 0 {
		cfg.MaxRunning = 1
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Minute
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.MaxLogBytes <= 0 {
		cfg.MaxLogBytes = DefaultMaxLogBytes
	}
	cfg.MaxLogBytes = max(cfg.MaxLogBytes, 2*tailBytes)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Launcher{cfg: cfg, argv: argv, gguf: gguf, slots: make(chan struct{}, cfg.MaxRunning),
		pickPort: freePort, servers: map[key]*server{}}, nil
}

// Lease is one evaluation's use of a running server. Release it when done.
type Lease struct {
	// BaseURL is the server's OpenAI base URL: http://127.0.0.1:PORT/v1.
	BaseURL string
	// Model is the name the server serves the artifact under.
	Model string
	// PID is the server's process id (its process group id too).
	PID int

	l    *Launcher
	s    *server
	once sync.Once
}

// Release ends the lease; the last lease of a server stops it. Calling it
// again does nothing.
func (le *Lease) Release() {
	le.once.Do(func() { le.l.release(le.s) })
}

// Acquire returns a lease on the server for the artifact in dir served as
// name, starting the server unless one is already running (or starting) for
// the same dir and name. It waits, honouring ctx, for a free slot and for the
// server to list name on /v1/models.
func (l *Launcher) Acquire(ctx context.Context, dir, name string) (*Lease, error) {
	if name == "" || len(name) > MaxNameBytes || strings.ContainsRune(name, 0) {
		return nil, fmt.Errorf("launcher: model name must be 1 to %d bytes without NUL", MaxNameBytes)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("launcher: artifact directory %q: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("launcher: artifact directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("launcher: artifact %s is not a directory", abs)
	}
	k := key{abs, name}
	s, err := l.join(ctx, k)
	if err != nil {
		return nil, err
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		l.release(s)
		return nil, ctx.Err()
	}
	if s.err != nil {
		l.release(s)
		return nil, s.err
	}
	return &Lease{BaseURL: s.baseURL, Model: name, PID: s.pid, l: l, s: s}, nil
}

// join returns the live server for k with one more reference, starting it
// (after taking a slot) when there is none.
func (l *Launcher) join(ctx context.Context, k key) (*server, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, ErrClosed
		}
		if s := l.servers[k]; s != nil {
			if !s.dead() {
				s.refs++
				l.mu.Unlock()
				return s, nil
			}
			// It exited on its own: start a new one.
			delete(l.servers, k)
		}
		l.mu.Unlock()
		select {
		case l.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		l.mu.Lock()
		if l.closed || l.servers[k] != nil {
			// Closed, or someone started it while we waited: give the
			// slot back and look again.
			l.mu.Unlock()
			<-l.slots
			continue
		}
		s := newServer(l, k)
		s.refs = 1
		l.servers[k] = s
		l.all.Add(1)
		l.mu.Unlock()
		go s.run()
		return s, nil
	}
}

// release drops one reference; the last one stops the server.
func (l *Launcher) release(s *server) {
	l.mu.Lock()
	s.refs--
	last := s.refs == 0
	if last && l.servers[s.key] == s {
		delete(l.servers, s.key)
	}
	l.mu.Unlock()
	if last {
		s.stop()
	}
}

// Close stops every server, leased or not, and waits for them to exit.
// Acquire fails with ErrClosed afterwards.
func (l *Launcher) Close() error {
	l.mu.Lock()
	l.closed = true
	servers := make([]*server, 0, len(l.servers))
	for k, s := range l.servers {
		servers = append(servers, s)
		delete(l.servers, k)
	}
	l.mu.Unlock()
	for _, s := range servers {
		s.stop()
	}
	l.all.Wait()
	return nil
}

// ggufFile returns the base name of the single .gguf file in dir.
func ggufFile(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var found []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.EqualFold(filepath.Ext(e.Name()), ".gguf") {
			found = append(found, e.Name())
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("launcher: {gguf}: no .gguf file in %s", dir)
	}
	return "", fmt.Errorf("launcher: {gguf}: %d .gguf files in %s (%s): want exactly one", len(found), dir, strings.Join(found, ", "))
}
