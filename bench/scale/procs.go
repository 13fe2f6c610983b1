package main

// This file holds the processes around the benchmark: building the binary,
// the hub and worker processes, the simulated model server and CPU
// accounting of child processes.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
)

// buildBinary builds cmd/crucible into dir, as the benchmark measures the
// real processes.
func buildBinary(dir string) (string, error) {
	bin := filepath.Join(dir, "crucible")
	out, err := exec.Command("go", "build", "-o", bin, "crucible/cmd/crucible").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// proc is a started child process, killed by stop.
type proc struct {
	name string
	cmd  *exec.Cmd
}

func start(name, bin string, args []string, stderr io.Writer) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &proc{name: name, cmd: cmd}, nil
}

// stop ends the process (SIGKILL: the benchmark's database is dropped
// afterwards, so nothing needs a graceful shutdown).
func (p *proc) stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// cpu returns the user+system CPU time the process has used so far.
func (p *proc) cpu() time.Duration {
	return procCPU(p.cmd.Process.Pid)
}

// procCPU reads utime+stime of pid from /proc (0 where unavailable).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; fields after its ')' are fixed.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}

// waitHealthy polls GET /healthz until it answers 200.
func waitHealthy(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("hub on %s did not become healthy within %s", addr, limit)
}

// modelServer is the simulated model: the deterministic baseline server
// (oracle and random policies) answering after delay, behind a semaphore
// of capacity requests: what a model of that many slots serves. Requests
// beyond it wait for a slot, as at a real inference server's queue.
// Entrants' base URLs are /e<i>/v1, so every entry is a distinct endpoint
// (a hub refuses the same model twice); the prefix is stripped here.
type modelServer struct {
	srv  *http.Server
	slot chan struct{}
	URL  string
	// asking counts the requests at the server (waiting for a slot or
	// served): fewer than the slots means the workers leave capacity idle.
	asking atomic.Int64
	// held and served sum the time requests held a slot and count them:
	// a mean far above the delay means the box is too loaded to simulate
	// the model, and the rates below its capacity say nothing of Crucible.
	held, served atomic.Int64
}

func newModelServer(ds *mcq.Dataset, delay time.Duration, capacity int) (*modelServer, error) {
	h, err := mcqtest.New(mcqtest.Config{Policies: []string{"oracle", "random"}, Key: ds, Delay: delay})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	m := &modelServer{slot: make(chan struct{}, capacity), URL: "http://" + ln.Addr().String()}
	m.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/e"); ok {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				r.URL.Path = rest[i:]
			}
		}
		m.asking.Add(1)
		defer m.asking.Add(-1)
		select {
		case m.slot <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		began := time.Now()
		defer func() {
			m.held.Add(int64(time.Since(began)))
			m.served.Add(1)
			<-m.slot
		}()
		h.ServeHTTP(w, r)
	})}
	go m.srv.Serve(ln)
	return m, nil
}

func (m *modelServer) close() { _ = m.srv.Shutdown(context.Background()) }
