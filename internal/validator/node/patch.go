package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/patch"
	"crucible/internal/kind"
	"crucible/internal/sandbox"
)

// This file judges code-fix (patch) competitions on the validator itself:
// each miner's latest patch goes through the judge the hub's evaluator uses
// (kinds.Patch.Plan → patch.Judge), in the validator's own sandbox, against
// the competition's full task definitions and repository bundles, which
// validators with stake download from the hub. A bundle is used only if its
// bytes hash to the digest the task committed to, and is cached under
// Config.WorkDir by that digest; the hub's verdicts are never read.

// patchReady reports what is missing for judging patches here: the judge
// runs competitors' code only inside the sandbox (bwrap) and reads the
// repositories with git.
func patchReady() string {
	if err := sandbox.Available(); err != nil {
		return "judging patches needs a working sandbox: " + err.Error()
	}
	if _, err := exec.LookPath("git"); err != nil {
		return "judging patches needs git on the PATH (install the Debian package git)"
	}
	return ""
}

// checkPatchTasks checks the validator's own tasks file against the digest
// the competition was created from.
func checkPatchTasks(c competition.Competition, how kind.Validation, data []byte) error {
	if how != kind.ValidateSandbox {
		return fmt.Errorf("%w: competition %s is a %s competition; --tasks works for competitions judged in a sandbox (patch) only", ErrCannotEvaluate, c.ID, c.Kind)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != c.DatasetDigest {
		return fmt.Errorf("%w: the tasks file has digest %s, competition %s was created from %s: not the same tasks",
			ErrCannotEvaluate, hex.EncodeToString(sum[:]), c.ID, c.DatasetDigest)
	}
	return nil
}

// sameTask reports whether a task the hub served is the validator's own
// copy of it: equal in every field but the repo, which the hub rewrote to
// the uploaded bundle's digest (itself checked when the bundle is fetched).
func sameTask(served, own patch.Task) bool {
	served.Repo, own.Repo = "", ""
	a, errA := json.Marshal(served)
	b, errB := json.Marshal(own)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// patchItems fetches (once) the competition's full tasks as stored items.
// Every task must name an uploaded bundle by digest: a repository on the
// hub's host cannot be downloaded, so it cannot be judged independently.
// With the validator's own tasks file, every served task must match it.
func (n *Node) patchItems(ctx context.Context, c competition.Competition) ([]json.RawMessage, error) {
	n.mu.Lock()
	items := n.patchTasks
	n.mu.Unlock()
	if items != nil {
		return items, nil
	}
	tasks, err := n.cfg.Hub.PatchTasks(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("fetch the tasks of competition %s: %w", c.ID, err)
	}
	var own map[string]patch.Task
	if n.cfg.PatchTasks != nil {
		parsed, err := patch.ParseTasks(bytes.NewReader(n.cfg.PatchTasks))
		if err != nil {
			return nil, err
		}
		own = make(map[string]patch.Task, len(parsed))
		for _, t := range parsed {
			own[t.InstanceID] = t
		}
	} else {
		n.cfg.Logger.Warn("judging with the hub's task definitions unchecked; pass your own copy of the tasks file (--tasks) to check them", "competition", c.ID)
	}
	items = make([]json.RawMessage, len(tasks))
	for i, t := range tasks {
		if o, ok := own[t.InstanceID]; own != nil && (!ok || !sameTask(t, o)) {
			return nil, fmt.Errorf("competition %s task %s as the hub serves it is not the task in your tasks file (digest %s)", c.ID, t.InstanceID, c.DatasetDigest)
		}
		if !strings.HasPrefix(t.Repo, patch.BundlePrefix) {
			return nil, fmt.Errorf("competition %s task %s uses a repository on the hub's host, not an uploaded bundle; a validator cannot judge it itself", c.ID, t.InstanceID)
		}
		if items[i], err = json.Marshal(t); err != nil {
			return nil, err
		}
	}
	n.mu.Lock()
	n.patchTasks = items
	n.mu.Unlock()
	return items, nil
}

// withPatches sets each submission's patch from the validators' route (what
// the public views show of a patch is not relied on), keeping only patches
// that hash to the digest the submission committed to.
func (n *Node) withPatches(ctx context.Context, c competition.Competition, subs []competition.Submission) ([]competition.Submission, error) {
	list, err := n.cfg.Hub.PatchSubmissions(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("fetch the patches of competition %s: %w", c.ID, err)
	}
	byID := make(map[string]competition.PatchSpec, len(list))
	for _, p := range list {
		byID[p.SubmissionID] = p.Patch
	}
	out := subs[:0]
	for _, s := range subs {
		p, ok := byID[s.ID]
		if !ok || competition.PatchDigest(p) != s.Digest {
			n.cfg.Logger.Warn("no patch matching the submission's committed digest; it gets no weight", "submission", s.ID)
			continue
		}
		s.Patch = &p
		out = append(out, s)
	}
	return out, nil
}

// workDir returns the bundle cache: Config.WorkDir, or a private temporary
// directory made on first use.
func (n *Node) workDir() (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "crucible-validator-")
		if err != nil {
			return "", err
		}
		n.cfg.WorkDir = dir
	}
	return n.cfg.WorkDir, nil
}

// evaluatePatch judges the submission's patch for its task with the
// competition's judge configuration (sandbox limits, weights, policy).
func (n *Node) evaluatePatch(ctx context.Context, c competition.Competition, s competition.Submission) ([]eval.Result, error) {
	items, err := n.patchItems(ctx, c)
	if err != nil {
		return nil, err
	}
	dir, err := n.workDir()
	if err != nil {
		return nil, err
	}
	// patch.Repos checks the digest again before caching: the client
	// already refused bytes that do not hash to it.
	repos := patch.Repos{CacheDir: dir, Fetch: func(ctx context.Context, digest string) ([]byte, error) {
		return n.cfg.Hub.PatchBundle(ctx, c.ID, digest)
	}}
	ev, err := kinds.Patch{Repos: repos}.Plan(ctx, c, s, "", items)
	if err != nil {
		return nil, err
	}
	return n.run(ctx, ev)
}
