package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"crucible/internal/artifact"
	"crucible/internal/competition"
	"crucible/internal/launcher"
)

// ModelHost serves artifact submissions' models on this worker: it fetches
// an artifact into the cache, verifies its tree digest against the
// committed one, reads its facts, checks the competition's caps and leases
// a launched server on loopback for one evaluation.
type ModelHost struct {
	Cache    *artifact.Cache
	Fetcher  artifact.Fetcher
	Launcher *launcher.Launcher

	once       sync.Once
	provenance launcher.Provenance // probed once (the probes may take seconds)
}

// errNoModelHost is the infrastructure failure of an artifact submission
// on a worker that serves no artifacts.
var errNoModelHost = errors.New("this worker serves no artifact submissions: start it with --model-cache and --model-launcher")

// refusedArtifact is an artifact that can never be evaluated: its files
// are not the committed tree, or they exceed a cap. It fails the
// submission for good.
type refusedArtifact struct{ err error }

func (r refusedArtifact) Error() string { return r.err.Error() }
func (r refusedArtifact) Unwrap() error { return r.err }

// hosted is one evaluation's lease of an artifact's model, with the
// artifact as verified (its facts read from the files).
type hosted struct {
	artifact competition.ArtifactSpec
	model    competition.ModelSpec
	served   *competition.Served
	release  func()
}

// serve makes sub's artifact ready to evaluate: fetched and verified, its
// facts recorded on the submission, within c's caps, launched. The
// returned release stops using the server and the cached files.
func (w *evaluateWorker) serve(ctx context.Context, c competition.Competition, sub competition.Submission) (hosted, error) {
	h := w.cfg.Models
	if h == nil {
		return hosted{}, errNoModelHost
	}
	a := *sub.Artifact
	started := time.Now()
	dir, done, err := h.Cache.Get(ctx, a.TreeDigest, h.Fetcher, artifact.Source{Path: a.Path, URL: a.URL, Repo: a.Repo, Revision: a.Revision})
	if errors.Is(err, artifact.ErrDigestMismatch) {
		return hosted{}, refusedArtifact{err}
	}
	if err != nil {
		return hosted{}, err
	}
	facts := artifact.Facts{Parameters: a.Parameters, Bytes: a.Bytes}
	if a.Bytes == 0 {
		// The first run reads the facts (a later slice has them stored).
		facts, err = w.readFacts(ctx, sub.ID, dir, a.TreeDigest)
	}
	if err == nil {
		caps := competition.EntriesOf(c)
		if capErr := artifact.CheckCaps(facts, artifact.Caps{MaxParameters: caps.MaxParameters, MaxBytes: caps.MaxArtifactBytes}); capErr != nil {
			err = refusedArtifact{capErr}
		}
	}
	if err != nil {
		done()
		return hosted{}, err
	}
	verified := time.Since(started)
	lease, err := h.Launcher.Acquire(ctx, dir, "artifact-"+a.TreeDigest[:16])
	if err != nil {
		done()
		return hosted{}, fmt.Errorf("launch the artifact's model server: %w", err)
	}
	w.cfg.Logger.Info("artifact served", "submission", sub.ID, "digest", a.TreeDigest, "parameters", facts.Parameters,
		"fetch_verify", verified, "launch", time.Since(started)-verified, "base_url", lease.BaseURL)
	h.once.Do(func() { h.provenance = h.Launcher.Provenance(ctx) })
	p := h.provenance
	a.Parameters, a.Bytes = facts.Parameters, facts.Bytes
	return hosted{
		artifact: a,
		model:    competition.ModelSpec{BaseURL: lease.BaseURL, Model: lease.Model},
		served:   &competition.Served{Launcher: p.Program, Version: p.Version, CPU: p.Hardware.CPU, Cores: p.Hardware.Cores, GPUs: p.Hardware.GPUs},
		release:  func() { lease.Release(); done() },
	}, nil
}

// readFacts reads the facts of the verified tree in dir (hashing it again:
// the cache's copy must still be the committed tree) and records them on
// the submission.
func (w *evaluateWorker) readFacts(ctx context.Context, id, dir, digest string) (artifact.Facts, error) {
	tree, err := artifact.HashTree(dir, artifact.DefaultLimits())
	if err != nil {
		return artifact.Facts{}, err
	}
	if tree.Digest != digest {
		return artifact.Facts{}, refusedArtifact{fmt.Errorf("%w: committed %s, cached %s", artifact.ErrDigestMismatch, digest, tree.Digest)}
	}
	facts, err := artifact.ReadFacts(dir, tree)
	if err != nil {
		return artifact.Facts{}, refusedArtifact{err}
	}
	return facts, w.cfg.DB.SetArtifactFacts(ctx, id, facts.Parameters, facts.Bytes)
}
