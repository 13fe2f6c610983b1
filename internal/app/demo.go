package app

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/identity"
)

// SampleDataset is the bundled Social IQa sample (see demodata/README.md for
// its source and licence).
//
//go:embed demodata/siqa-sample.jsonl
var SampleDataset []byte

// DemoPolicies are the baseline policies the demo submits.
var DemoPolicies = []string{"oracle", "overlap", "first", "random"}

// DemoConfig configures a demo run.
type DemoConfig struct {
	// Database defaults to a SQLite file in a fresh temporary folder.
	Database string
	// Progress receives human-readable progress lines (nil: discarded).
	Progress io.Writer
	// Interactive redraws the progress line in place (a terminal).
	Interactive bool
	Logger      *slog.Logger
	// Ready, if set, is called with the server's base URL and the final
	// leaderboard, before the demo keeps serving (Keep) or stops.
	Ready func(serverURL string, rows []competition.Row)
	// Listen is the server's address (default 127.0.0.1:0, a free port).
	Listen string
	// Keep, if set, keeps serving after the leaderboard is printed until ctx ends.
	Keep bool
}

// Demo runs Crucible in-process end to end: a server on SQLite, the baseline
// model server, a competition from the bundled Social IQa sample, one
// submission per baseline policy, and waits for the evaluations. It returns
// the leaderboard.
func Demo(ctx context.Context, cfg DemoConfig) ([]competition.Row, error) {
	out := cfg.Progress
	if out == nil {
		out = io.Discard
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Database == "" {
		dir, err := os.MkdirTemp("", "crucible-demo-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cfg.Database = filepath.Join(dir, "crucible.db")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	ds, err := mcq.Parse(strings.NewReader(string(SampleDataset)), "siqa-sample")
	if err != nil {
		return nil, fmt.Errorf("bundled sample: %w", err)
	}
	models, err := mcqtest.New(mcqtest.Config{Policies: DemoPolicies, Key: ds})
	if err != nil {
		return nil, err
	}
	modelURL, stopModels, err := serveHandler(models)
	if err != nil {
		return nil, err
	}
	defer stopModels()
	fmt.Fprintf(out, "baseline model server (deterministic baselines, not real models) on %s\n", modelURL)

	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	// The demo's baseline model server runs on loopback, which submitted
	// URLs may not reach unless the operator allows it: the demo does. Pools
	// created against a demo kept serving (--serve) are funded from nothing.
	a, err := Open(ctx, Config{Database: cfg.Database, Listen: cfg.Listen, Logger: logger, Slice: 10 * time.Second,
		AllowEndpoints: "127.0.0.0/8,::1/128", DemoFunding: true})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	ln, err := a.Listen()
	if err != nil {
		return nil, err
	}
	serverURL := "http://" + ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	fmt.Fprintf(out, "crucible server on %s (database %s)\n", serverURL, cfg.Database)

	key, err := identity.NewKey()
	if err != nil {
		return nil, err
	}
	c, err := client.New(client.Config{Server: serverURL, Key: key})
	if err != nil {
		return nil, err
	}
	comp, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{
		Kind: mcq.Name, Title: "Social IQa sample (demo)", DatasetName: "siqa-sample", Dataset: string(SampleDataset),
	})
	if err != nil {
		return nil, fmt.Errorf("create competition: %w", err)
	}
	fmt.Fprintf(out, "competition %s: %d items\n", comp.ID, comp.Items)
	for _, p := range DemoPolicies {
		sub, err := c.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{Name: "baseline-" + p, BaseURL: modelURL + "/v1", Model: "baseline-" + p})
		if err != nil {
			return nil, fmt.Errorf("submit baseline-%s: %w", p, err)
		}
		fmt.Fprintf(out, "submitted %s as %s\n", sub.Name, sub.ID)
	}
	lastDone := -1
	subs, err := c.WaitScored(ctx, comp.ID, 200*time.Millisecond, func(subs []competition.Submission) {
		done, total := 0, 0
		for _, s := range subs {
			done, total = done+s.ItemsDone, total+s.ItemsTotal
		}
		switch {
		case cfg.Interactive:
			fmt.Fprintf(out, "\revaluating: %d/%d items", done, total)
		case done == total && done != lastDone:
			fmt.Fprintf(out, "evaluated: %d/%d items\n", done, total)
		}
		lastDone = done
	})
	if cfg.Interactive {
		fmt.Fprintln(out)
	}
	if err != nil {
		return nil, err
	}
	for _, s := range subs {
		if s.State != competition.StateScored {
			return nil, fmt.Errorf("submission %s ended %s: %s", s.Name, s.State, s.Reason)
		}
	}
	rows, err := c.Leaderboard(ctx, comp.ID)
	if err != nil {
		return nil, err
	}
	if cfg.Ready != nil {
		cfg.Ready(serverURL, rows)
	}
	if cfg.Keep {
		fmt.Fprintf(out, "serving the API and web UI on %s until interrupted\n", serverURL)
		<-ctx.Done()
	}
	cancel()
	if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
		return rows, err
	}
	return rows, nil
}

// serveHandler serves h on a fresh loopback port and returns its base URL.
func serveHandler(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}
