package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"crucible/internal/app"
	"crucible/internal/clock"
	"crucible/internal/egress"
	"crucible/internal/identity"
	"crucible/internal/router"
)

// routerAudience is what signatures of router admin requests name instead of
// a hub id, so a request signed for a hub is refused by a router and the
// other way round.
const routerAudience = "crucible-router"

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*l = append(*l, f)
		}
	}
	return nil
}

func runRouter(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("router", "Serve an OpenAI-compatible endpoint (/v1/models[/{id}], /v1/chat/completions and /v1/completions\n"+
		"incl. streaming, /v1/embeddings, /healthz) in front of many model servers (workers). Each request goes to the healthy worker\n"+
		"serving its model with the fewest requests in flight (ties round-robin); when every such worker is\n"+
		"at its max concurrency the request waits up to --queue-timeout, then gets 503 workers_busy.\n"+
		"Workers come from --worker or are registered through the signed admin API\n"+
		"(POST/DELETE /api/v1/router/workers, allowed for --admin-key; signatures name the audience \""+routerAudience+"\").\n"+
		"Metrics at /metrics.",
		"crucible router --listen 127.0.0.1:8090 --worker http://10.0.0.7:8000/v1=baseline-oracle:32 --worker http://10.0.0.8:8000/v1", stderr)
	fs.String("config", "", "YAML file of flag values (also CRUCIBLE_CONFIG)")
	listen := fs.String("listen", "127.0.0.1:8090", "HTTP address")
	var workers, adminKeys listFlag
	fs.Var(&workers, "worker", "a worker as `URL[=model[:maxconc]]`; repeat or comma-separate. Without a model the worker serves\n"+
		"whatever its /v1/models lists; maxconc 0 means no cap")
	fs.Var(&adminKeys, "admin-key", "`KEYID` (ed25519:...) or key file allowed to register workers; repeat or comma-separate")
	database := fs.String("database", "", "SQLite file or postgres:// URL whose nonce table guards the admin API against replays\n"+
		"(shared by several routers); empty keeps nonces in memory")
	allow := fs.String("allow-endpoints", "", "if set, only dial workers at public addresses or in these `CIDR,...`\n"+
		"(e.g. 10.0.0.0/8); empty dials any worker the operator lists or registers")
	interval := fs.Duration("health-interval", 2*time.Second, "time between health checks (GET /v1/models on each worker)")
	queue := fs.Duration("queue-timeout", 30*time.Second, "how long a request waits when every worker is at max concurrency; negative: 503 at once")
	attempts := fs.Int("max-attempts", 3, "workers one request may try when connecting fails")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	gcPercent := fs.Int("gc-percent", router.GCPercent, "the garbage collector's target (Go's GOGC; the GOGC environment variable wins when set).\n"+
		"The router's heap is small and its garbage per request large: above Go's default of 100 it collects\n"+
		"less often for more throughput; lower it to cap memory")
	if err := parse(fs, args); err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gcPercent)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef("--log-level: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	var specs []router.WorkerSpec
	for _, w := range workers {
		spec, err := router.ParseWorkerSpec(w)
		if err != nil {
			return usagef("--worker: %v", err)
		}
		specs = append(specs, spec)
	}
	var keys []string
	for _, k := range adminKeys {
		id, err := keyID("admin-key", k)
		if err != nil {
			return err
		}
		keys = append(keys, id)
	}
	if len(specs) == 0 && len(keys) == 0 {
		return usagef("no workers: give --worker URL (repeatable) or --admin-key KEYID to register them through the API")
	}

	var dial func(ctx context.Context, network, addr string) (net.Conn, error)
	if *allow != "" {
		policy, err := egress.ParseAllowList(*allow)
		if err != nil {
			return usagef("--allow-endpoints: %v", err)
		}
		dial = policy.Dialer(5 * time.Second).DialContext
	}

	var nonces identity.NonceStore = &router.MemoryNonces{}
	if *database != "" {
		db, err := app.OpenNonces(ctx, *database)
		if err != nil {
			return err
		}
		defer db.Close()
		nonces = db
	}
	rt, err := router.New(router.Config{
		Workers:        specs,
		HealthInterval: *interval,
		QueueTimeout:   *queue,
		MaxAttempts:    *attempts,
		DialContext:    dial,
		Verifier:       &identity.Verifier{Audience: routerAudience, Clock: clock.Real{}, Nonces: nonces},
		AdminKeys:      keys,
		Logger:         logger,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	srv := &router.Server{Router: rt, ReadHeaderTimeout: 10 * time.Second, Logger: logger}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	health := make(chan struct{})
	go func() {
		defer close(health)
		_ = rt.Run(ctx)
	}()
	go func() {
		<-ctx.Done()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}()
	logger.Info("router listening", "addr", "http://"+ln.Addr().String(), "workers", len(specs), "admin_keys", len(keys))
	err = srv.Serve(ln)
	cancel()
	<-health
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
