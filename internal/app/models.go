package app

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"crucible/internal/artifact"
	"crucible/internal/egress"
	"crucible/internal/jobs"
	"crucible/internal/launcher"
)

// Models configures how this process's workers serve artifact
// submissions: the model cache, the fetch command for repositories and
// the launcher. Without CacheDir and Launcher its workers serve none (an
// artifact submission then meets an infrastructure failure and waits for
// its retries, which another worker may take).
type Models struct {
	// CacheDir is the content-addressed model cache, bounded to CacheBytes.
	CacheDir   string
	CacheBytes int64
	// Fetcher is the command template for repository sources, e.g.
	// "huggingface-cli download {repo} --revision {revision} --local-dir {dir}".
	Fetcher      string
	FetchTimeout time.Duration
	// Launcher is the model server template, e.g.
	// "vllm serve {dir} --port {port} --served-model-name {name}".
	Launcher string
	// MaxLaunched bounds the model servers running at once (default 1).
	MaxLaunched int
	// StartTimeout bounds a server's start (default: the launcher's).
	StartTimeout time.Duration
}

// openModels builds the workers' model host (nil when m configures none).
func openModels(m Models, cfg Config) (*jobs.ModelHost, error) {
	if m.CacheDir == "" && m.Launcher == "" {
		if m.Fetcher != "" {
			return nil, errors.New("--model-fetcher needs --model-cache and --model-launcher")
		}
		return nil, nil
	}
	if m.CacheDir == "" || m.Launcher == "" {
		return nil, errors.New("artifact submissions need both --model-cache DIR and --model-launcher TEMPLATE")
	}
	if m.CacheBytes <= 0 {
		return nil, fmt.Errorf("--model-cache-bytes %d: give the cache's bound in bytes (e.g. 200000000000)", m.CacheBytes)
	}
	l, err := launcher.New(launcher.Config{Command: m.Launcher, MaxRunning: m.MaxLaunched, StartTimeout: m.StartTimeout, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	cache, err := artifact.OpenCache(m.CacheDir, m.CacheBytes)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("--model-cache: %w", err)
	}
	return &jobs.ModelHost{Cache: cache, Launcher: l,
		Fetcher: artifact.Fetcher{Command: m.Fetcher, Timeout: m.FetchTimeout, Limits: artifact.DefaultLimits()}}, nil
}

// closeModels stops the launched servers and releases the cache.
func closeModels(h *jobs.ModelHost) {
	if h != nil {
		h.Launcher.Close()
		h.Cache.Close()
	}
}

// launchedPolicy is the dial policy of requests to launched model servers:
// policy, with loopback allowed, where the launcher listens. Only artifact
// submissions, whose base URL the worker sets, are sent through it.
func launchedPolicy(policy egress.EndpointPolicy) egress.EndpointPolicy {
	policy.Allow = append(append([]netip.Prefix(nil), policy.Allow...),
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
	return policy
}
