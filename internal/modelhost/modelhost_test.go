package modelhost

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"crucible/internal/launcher"
)

// TestServedIsNotPoisonedByACancelledFirstCaller: the launcher's version
// is probed once for the process; a first caller whose context is already
// cancelled (a job stopped while its artifact launched) still gets, and
// leaves for every later lease, the probed version.
func TestServedIsNotPoisonedByACancelledFirstCaller(t *testing.T) {
	prog := filepath.Join(t.TempDir(), "fake-launcher")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\necho fake-launcher 1.2.3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := launcher.New(launcher.Config{Command: prog + " --port {port}"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	h := &Host{Launcher: l}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s := h.served(ctx); s.Launcher != "fake-launcher" || s.Version != "fake-launcher 1.2.3" {
		t.Fatalf("first, cancelled caller: served %+v, want the probed version", s)
	}
	if s := h.served(context.Background()); s.Version != "fake-launcher 1.2.3" {
		t.Fatalf("later caller: served %+v, want the probed version", s)
	}
}
