package launcher

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Hardware summarises the machine a result was produced on.
type Hardware struct {
	// CPU is the first "model name" of /proc/cpuinfo ("" when unknown).
	CPU string `json:"cpu,omitempty"`
	// Cores is the number of logical CPUs the process may use.
	Cores int `json:"cores"`
	// GPUs are the names `nvidia-smi -L` lists, when it exists.
	GPUs []string `json:"gpus,omitempty"`
}

// Provenance records where and with what a result was produced, for the
// card: the hardware and the launcher's program and version.
type Provenance struct {
	Hardware Hardware `json:"hardware"`
	// Program is the base name of the launcher command's program ("vllm").
	Program string `json:"program"`
	// Version is the first line of `PROGRAM --version` when it exits 0
	// within probeTimeout ("" otherwise).
	Version string `json:"version,omitempty"`
}

// Bounds on the probes: each reads at most probeBytes within probeTimeout.
const (
	probeBytes   = 64 << 10
	probeTimeout = 10 * time.Second
	maxGPUs      = 64
	maxLine      = 200
)

// Provenance describes this launcher: the hardware and its program's
// version. It never fails; what cannot be found is left empty.
func (l *Launcher) Provenance(ctx context.Context) Provenance {
	return Provenance{Hardware: ReadHardware(ctx), Program: filepath.Base(l.argv[0]),
		Version: firstLine(probe(ctx, l.argv[0], "--version"))}
}

// ReadHardware reads the CPU model from /proc/cpuinfo, the core count and
// the GPU names from `nvidia-smi -L` (when it exists). It never fails.
func ReadHardware(ctx context.Context) Hardware {
	h := Hardware{Cores: runtime.NumCPU()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(io.LimitReader(f, probeBytes))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				h.CPU = clip(strings.TrimSpace(v))
				break
			}
		}
		f.Close()
	}
	if _, err := exec.LookPath("nvidia-smi"); err == nil {
		// "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-...)" → the name.
		for line := range strings.Lines(probe(ctx, "nvidia-smi", "-L")) {
			_, name, ok := strings.Cut(strings.TrimSpace(line), ": ")
			if !ok || len(h.GPUs) == maxGPUs {
				continue
			}
			name, _, _ = strings.Cut(name, " (UUID")
			h.GPUs = append(h.GPUs, clip(name))
		}
	}
	return h
}

// probe runs a program briefly and returns its bounded standard output,
// or "" when it fails.
func probe(ctx context.Context, prog string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	var out bytes.Buffer
	cmd.Stdout = &limitWriter{w: &out, n: probeBytes}
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return ""
	}
	return out.String()
}

func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if t := strings.TrimSpace(line); t != "" {
			return clip(t)
		}
	}
	return ""
}

func clip(s string) string {
	if len(s) > maxLine {
		return s[:maxLine]
	}
	return s
}

// limitWriter keeps the first n bytes and discards the rest.
type limitWriter struct {
	w io.Writer
	n int
}

func (lw *limitWriter) Write(p []byte) (int, error) {
	keep := min(len(p), lw.n)
	lw.n -= keep
	if keep > 0 {
		if _, err := lw.w.Write(p[:keep]); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
