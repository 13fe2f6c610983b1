// Package modelhost serves artifact submissions' models on this machine for
// one evaluation at a time: it fetches an artifact into the content-addressed
// cache, verifies its tree digest against the committed one, reads its facts
// from the files, checks the competition's caps and leases a launched model
// server on loopback. The hub's evaluate workers (internal/jobs) and the
// independent validator (internal/validator/node) both serve artifacts
// through it, so a validator evaluates the committed weights itself instead
// of trusting the hub's results.
package modelhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"crucible/internal/artifact"
	"crucible/internal/competition"
	"crucible/internal/egress"
	"crucible/internal/launcher"
)

// Config says how this process serves artifact submissions: the model
// cache, the fetch command for repositories and the launcher. Without
// CacheDir and Launcher it serves none.
type Config struct {
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

// Host serves artifact submissions' models.
type Host struct {
	Cache    *artifact.Cache
	Fetcher  artifact.Fetcher
	Launcher *launcher.Launcher
	logger   *slog.Logger

	once       sync.Once
	provenance launcher.Provenance // probed once (the probes may take seconds)
}

// Open builds the host cfg configures; nil (and no error) when it
// configures none. The errors name the command-line flags that set cfg.
func Open(cfg Config, logger *slog.Logger) (*Host, error) {
	if cfg.CacheDir == "" && cfg.Launcher == "" {
		if cfg.Fetcher != "" {
			return nil, errors.New("--model-fetcher needs --model-cache and --model-launcher")
		}
		return nil, nil
	}
	if cfg.CacheDir == "" || cfg.Launcher == "" {
		return nil, errors.New("artifact submissions need both --model-cache DIR and --model-launcher TEMPLATE")
	}
	if cfg.CacheBytes <= 0 {
		return nil, fmt.Errorf("--model-cache-bytes %d: give the cache's bound in bytes (e.g. 200000000000)", cfg.CacheBytes)
	}
	if logger == nil {
		logger = slog.Default()
	}
	l, err := launcher.New(launcher.Config{Command: cfg.Launcher, MaxRunning: cfg.MaxLaunched, StartTimeout: cfg.StartTimeout, Logger: logger})
	if err != nil {
		return nil, err
	}
	cache, err := artifact.OpenCache(cfg.CacheDir, cfg.CacheBytes)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("--model-cache: %w", err)
	}
	return &Host{Cache: cache, Launcher: l, logger: logger,
		Fetcher: artifact.Fetcher{Command: cfg.Fetcher, Timeout: cfg.FetchTimeout, Limits: artifact.DefaultLimits()}}, nil
}

// Close stops the launched servers and releases the cache. A nil Host
// closes nothing.
func (h *Host) Close() {
	if h != nil {
		h.Launcher.Close()
		h.Cache.Close()
	}
}

// Refused is an artifact that can never be evaluated: its files are not the
// committed tree, or they exceed a cap. It fails the submission for good.
type Refused struct{ Err error }

func (r Refused) Error() string { return r.Err.Error() }
func (r Refused) Unwrap() error { return r.Err }

// Lease is one evaluation's use of an artifact's model.
type Lease struct {
	// Artifact is the submission's artifact with its facts as read from the
	// verified files (or as given, when they were known).
	Artifact competition.ArtifactSpec
	// Model is the launched server on loopback.
	Model competition.ModelSpec
	// Served says where the model ran.
	Served *competition.Served
	// Release stops using the server and the cached files.
	Release func()
}

// Serve makes sub's artifact ready to evaluate: fetched and verified,
// within c's caps, launched. When sub's artifact carries no facts
// (Bytes 0) they are read from the verified files and handed to record
// (nil: not recorded); a caller that does not trust the stored facts
// clears them. A Refused error is final for the submission; any other is
// this machine's failure.
func (h *Host) Serve(ctx context.Context, c competition.Competition, sub competition.Submission, record func(artifact.Facts) error) (Lease, error) {
	a := *sub.Artifact
	started := time.Now()
	dir, done, err := h.Cache.Get(ctx, a.TreeDigest, h.Fetcher, artifact.Source{Path: a.Path, URL: a.URL, Repo: a.Repo, Revision: a.Revision})
	if errors.Is(err, artifact.ErrDigestMismatch) {
		return Lease{}, Refused{err}
	}
	if err != nil {
		return Lease{}, err
	}
	facts := artifact.Facts{Parameters: a.Parameters, Bytes: a.Bytes}
	if a.Bytes == 0 {
		if facts, err = readFacts(dir, a.TreeDigest); err == nil && record != nil {
			err = record(facts)
		}
	}
	if err == nil {
		caps := competition.EntriesOf(c)
		if capErr := artifact.CheckCaps(facts, artifact.Caps{MaxParameters: caps.MaxParameters, MaxBytes: caps.MaxArtifactBytes}); capErr != nil {
			err = Refused{capErr}
		}
	}
	if err != nil {
		done()
		return Lease{}, err
	}
	verified := time.Since(started)
	lease, err := h.Launcher.Acquire(ctx, dir, "artifact-"+a.TreeDigest[:16])
	if err != nil {
		done()
		return Lease{}, fmt.Errorf("launch the artifact's model server: %w", err)
	}
	h.logger.Info("artifact served", "submission", sub.ID, "digest", a.TreeDigest, "parameters", facts.Parameters,
		"fetch_verify", verified, "launch", time.Since(started)-verified, "base_url", lease.BaseURL)
	a.Parameters, a.Bytes = facts.Parameters, facts.Bytes
	return Lease{
		Artifact: a,
		Model:    competition.ModelSpec{BaseURL: lease.BaseURL, Model: lease.Model},
		Served:   h.served(ctx),
		Release:  func() { lease.Release(); done() },
	}, nil
}

// served says where this host runs models, probed once for the process.
// The probe runs without ctx's cancellation (the probes bound themselves):
// it is kept for every later lease, so a first caller cancelled during it
// must not leave every card without the launcher's version and GPUs.
func (h *Host) served(ctx context.Context) *competition.Served {
	h.once.Do(func() { h.provenance = h.Launcher.Provenance(context.WithoutCancel(ctx)) })
	p := h.provenance
	return &competition.Served{Launcher: p.Program, Version: p.Version, CPU: p.Hardware.CPU, Cores: p.Hardware.Cores, GPUs: p.Hardware.GPUs}
}

// readFacts reads the facts of the verified tree in dir, hashing it again:
// the cache's copy must still be the committed tree.
func readFacts(dir, digest string) (artifact.Facts, error) {
	tree, err := artifact.HashTree(dir, artifact.DefaultLimits())
	if err != nil {
		return artifact.Facts{}, err
	}
	if tree.Digest != digest {
		return artifact.Facts{}, Refused{fmt.Errorf("%w: committed %s, cached %s", artifact.ErrDigestMismatch, digest, tree.Digest)}
	}
	facts, err := artifact.ReadFacts(dir, tree)
	if err != nil {
		return artifact.Facts{}, Refused{err}
	}
	return facts, nil
}

// LaunchedPolicy is the dial policy of requests to launched model servers:
// policy, with loopback allowed, where the launcher listens. Only artifact
// submissions, whose base URL the host sets, may be sent through it.
func LaunchedPolicy(policy egress.EndpointPolicy) egress.EndpointPolicy {
	policy.Allow = append(append([]netip.Prefix(nil), policy.Allow...),
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
	return policy
}
