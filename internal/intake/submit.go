package intake

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"crucible/internal/artifact"
	"crucible/internal/competition"
	"crucible/internal/identity"
	"crucible/internal/inference"
	"crucible/internal/kind"
	"crucible/internal/store"
)

// Entry is a submission as a competitor sends it: a model (BaseURL, Model),
// a patch (Task, Patch) or a predictions file (Predictions), by the
// competition's entry shape.
type Entry struct {
	CompetitionID string
	Submitter     string
	Name          string
	BaseURL       string
	Model         string
	Task          string
	Patch         string
	// Predictions is a predictions file's text (JSONL), stored as the
	// submission's secret.
	Predictions string
	// APIKey is sent to the model server as a bearer token; it is stored
	// and never returned.
	APIKey string
	// Artifact is an artifact entry: its source and the tree digest the
	// competitor commits to.
	Artifact *ArtifactEntry
	// Limit is how many active entries Submitter may have in the
	// competition (0: any number).
	Limit int
	// Quota bounds Submitter's submissions everywhere (nil: none, as for
	// an operator). It is checked in the submission's transaction under a
	// lock on the key, so concurrent submissions cannot all pass on one
	// count; a refusal is a *QuotaError.
	Quota *Quota
	// Nonce is the signed request's nonce, which Submit burns whatever
	// the outcome: in the submission's transaction when the entry reaches
	// it, alone otherwise. A nonce already used is refused with
	// identity.Replayed and creates nothing. Nil: the caller burned it.
	Nonce *store.NonceUse
	// Pool enters a funded pool, which only the pool service does (after
	// checking the pool is open): the entry takes the pool's lock and is
	// evaluated by the pool's ticks within its budget, so no evaluation is
	// enqueued here. Any other entry into a pool is refused.
	Pool bool
}

// ArtifactEntry is where an artifact's files are (exactly one of Repo with
// Revision, Path, URL) and the tree digest (internal/artifact.HashTree)
// they are committed by.
type ArtifactEntry struct {
	Repo, Revision, Path, URL, Digest string
}

// Submit enters e: it checks the entry against its competition's kind,
// then, in one transaction, applies the entry rules of kinds that rank
// models (one active entry per model, Limit per key; see
// competition.CheckEntry) under locks on the model and the key in the
// competition (store.Locks, LockTx), stores the submission and enqueues
// its evaluation, so that a submission never exists without its job and
// simultaneous entries of one model, or over one key's limit, cannot all
// get in. Concurrent Submits share that transaction (group commit, see
// committer), each with its own outcome. Refusals are ErrInvalid or
// ErrConflict, a *QuotaError (Entry.Quota), or identity.Replayed
// (Entry.Nonce).
func (s *Service) Submit(ctx context.Context, e Entry) (_ competition.Submission, err error) {
	db := s.cfg.DB
	var p *pending
	if e.Nonce != nil {
		// Every way out burns the nonce: a refused request, replayed,
		// must be refused again. The burn outlives the caller's
		// cancellation, as the request may have reached the hub whole.
		defer func() {
			if p != nil && p.burned {
				return
			}
			if berr := db.UseNonce(context.WithoutCancel(ctx), e.Nonce.KeyID, e.Nonce.Nonce, e.Nonce.Expires); errors.Is(berr, identity.ErrNonceReused) {
				err = identity.Replayed(e.Nonce.Nonce)
			} else if berr != nil {
				err = fmt.Errorf("record nonce: %w", berr)
			}
		}()
	}
	c, pool, err := db.CompetitionToEnter(ctx, e.CompetitionID)
	if err != nil {
		return competition.Submission{}, err
	}
	if !e.Pool && pool {
		// A pool's entrants are evaluated within its budget and only while
		// it is open; a submission here would be evaluated in full at any time.
		return competition.Submission{}, conflict(fmt.Errorf("%s is a funded pool: enter it while it is open with POST /api/v1/pools/%s/entries (crucible pool join)", c.ID, c.ID))
	}
	sub, err := s.entry(ctx, c, e)
	if err != nil {
		return competition.Submission{}, err
	}
	p = &pending{ctx: ctx, c: c, e: e, sub: sub, secret: e.APIKey}
	if sub.Predictions != nil {
		p.secret = sub.Predictions.Body
	}
	if e.Pool {
		// A pool entry takes the pool's lock, not the competition's, and
		// pool entries are rare: it commits alone rather than mixing
		// both kinds of lock in one batch.
		p.done = make(chan struct{})
		s.commitBatch([]*pending{p})
	} else if err := s.commit(p); err != nil {
		return competition.Submission{}, err
	}
	if p.err != nil {
		return competition.Submission{}, p.err
	}
	return sub, nil
}

// entry builds the submission of e by c's entry shape.
func (s *Service) entry(ctx context.Context, c competition.Competition, e Entry) (competition.Submission, error) {
	now := s.cfg.Clock.Now().UTC()
	sub := competition.Submission{ID: store.NewID("s"), CompetitionID: c.ID, Name: e.Name, Submitter: e.Submitter,
		CommittedAt: now, State: competition.StateQueued, ItemsTotal: c.Items, UpdatedAt: now}
	shape := s.cfg.Kinds.EntryOf(c)
	if shape != kind.EntryArtifact && e.Artifact != nil {
		return sub, invalid("%s takes no artifacts: its entries are %s", c.ID, entryWords[shape])
	}
	if shape != kind.EntryNone && (shape == kind.EntryPredictions) != (e.Predictions != "") {
		if e.Predictions != "" {
			return sub, invalid("%s takes no predictions files: its entries are %s", c.ID, entryWords[shape])
		}
		return sub, invalid("predictions are required: %s is scored from a predictions file (crucible submit predictions)", c.ID)
	}
	// A patch sent to a model competition (or a model to a patch one) is
	// named as such, before the shape's own checks complain about a field
	// the sender never meant to give (an empty base URL).
	if isPatch, isModel := e.Patch != "" || e.Task != "", e.BaseURL != "" || e.Model != ""; shape == kind.EntryModel && isPatch && !isModel {
		return sub, invalid("competition %s takes models, not patches: its entries are %s (crucible submit model)", c.ID, entryWords[shape])
	} else if shape == kind.EntryPatch && isModel && !isPatch {
		return sub, invalid("competition %s takes patches, not models: its entries are %s (crucible submit patch)", c.ID, entryWords[shape])
	}
	switch shape {
	case kind.EntryNone:
		if s.cfg.Kinds.Labeled(c.Kind) {
			return sub, invalid("%s is a %s competition: miners take copies and contributors rank them at /label; it takes no submissions", c.ID, c.Kind)
		}
		return sub, invalid("%s is a %s competition: it takes no submissions", c.ID, c.Kind)
	case kind.EntryPatch:
		items, err := s.cfg.DB.CompetitionItems(ctx, c.ID)
		if err != nil {
			return sub, err
		}
		sub.Patch = &competition.PatchSpec{Task: e.Task, Diff: e.Patch}
		if err := s.cfg.Kinds.ValidateEntry(c, items, sub); err != nil {
			return sub, invalid("task: %v", err)
		}
		if strings.TrimSpace(e.Patch) == "" {
			return sub, invalid("patch is required: a unified diff against the task's base commit")
		}
		sub.Digest, sub.ItemsTotal = competition.PatchDigest(*sub.Patch), 1
		if sub.Name == "" {
			sub.Name = e.Task
		}
	case kind.EntryPredictions:
		if e.BaseURL != "" || e.Model != "" || e.APIKey != "" || e.Task != "" || e.Patch != "" {
			return sub, invalid("a predictions submission is the file alone: no base_url, model, api_key, task or patch")
		}
		items, err := s.cfg.DB.CompetitionItems(ctx, c.ID)
		if err != nil {
			return sub, err
		}
		p := competition.NewPredictions(e.Predictions)
		sub.Predictions = &p
		if err := s.cfg.Kinds.ValidateEntry(c, items, sub); err != nil {
			return sub, invalid("predictions: %v", err)
		}
		sub.Digest = competition.PredictionsDigest(p)
		if sub.Name == "" {
			sub.Name = "predictions " + p.SHA256[:12]
		}
	case kind.EntryArtifact:
		if e.BaseURL != "" || e.Model != "" || e.APIKey != "" || e.Task != "" || e.Patch != "" {
			return sub, invalid("an artifact submission is its source and tree digest alone: no base_url, model, api_key, task or patch")
		}
		a, err := artifactSpec(e.Artifact)
		if err != nil {
			return sub, err
		}
		a.Commitment = artifact.Commitment(a.TreeDigest, e.Submitter, now)
		sub.Artifact, sub.Digest = &a, a.TreeDigest
		if sub.Name == "" {
			sub.Name = "artifact " + a.TreeDigest[:12]
		}
	default:
		base, err := inference.NormalizeBaseURL(e.BaseURL)
		if err != nil {
			return sub, invalid("base_url: %v", err)
		}
		model := strings.TrimSpace(e.Model)
		if model == "" {
			return sub, invalid("model is required: the model name the server expects, as in its /v1/models")
		}
		if sub.Name == "" {
			sub.Name = model
		}
		sub.Model = competition.ModelSpec{BaseURL: base, Model: model}
		sub.Digest = competition.ModelDigest(sub.Model)
	}
	return sub, nil
}

// entryWords names an entry shape in refusals.
var entryWords = map[kind.Entry]string{
	kind.EntryModel:    "models (base_url and model)",
	kind.EntryPatch:    "patches (task and patch)",
	kind.EntryArtifact: "artifacts (repo and revision, path or url, with the tree digest)",
}

// artifactSpec checks an artifact entry's source and digest.
func artifactSpec(e *ArtifactEntry) (competition.ArtifactSpec, error) {
	if e == nil {
		return competition.ArtifactSpec{}, invalid("artifact is required: repo and revision, path or url, and the tree digest (crucible submit artifact)")
	}
	a := competition.ArtifactSpec{Repo: strings.TrimSpace(e.Repo), Revision: strings.TrimSpace(e.Revision),
		Path: e.Path, URL: strings.TrimSpace(e.URL), TreeDigest: strings.ToLower(strings.TrimSpace(e.Digest))}
	sources := 0
	for _, set := range []bool{a.Repo != "", a.Path != "", a.URL != ""} {
		if set {
			sources++
		}
	}
	switch {
	case sources != 1:
		return a, invalid("artifact: give exactly one source: repo (with revision), path or url")
	case a.Repo != "" && a.Revision == "":
		return a, invalid("artifact: revision is required with repo: a commit, so the files cannot change after the commitment")
	case a.Repo == "" && a.Revision != "":
		return a, invalid("artifact: revision goes with repo")
	case a.Path != "" && !filepath.IsAbs(a.Path):
		return a, invalid("artifact: path %q must be absolute (a directory the workers can read)", a.Path)
	case a.URL != "" && !strings.HasPrefix(a.URL, "file://"):
		return a, invalid("artifact: url %q: only file:// tarballs are fetched; name a hub repository with repo and revision", a.URL)
	}
	if len(a.TreeDigest) != 64 || strings.Trim(a.TreeDigest, "0123456789abcdef") != "" {
		return a, invalid("artifact: digest %q is not a sha256 in hex (64 characters): run crucible artifact hash DIR", e.Digest)
	}
	return a, nil
}
