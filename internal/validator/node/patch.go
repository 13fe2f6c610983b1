package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/patch"
	"crucible/internal/sandbox"
)

// This file judges code-fix (patch) competitions on the validator itself:
// each miner's latest patch goes through the judge the hub's evaluator uses
// (kinds.Planner → patch.Judge), in the validator's own sandbox, against
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

// patchItems fetches (once) the competition's full tasks as stored items.
// Every task must name an uploaded bundle by digest: a repository on the
// hub's host cannot be downloaded, so it cannot be judged independently.
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
	items = make([]json.RawMessage, len(tasks))
	for i, t := range tasks {
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
	ev, err := kinds.Planner{Repos: repos}.Plan(ctx, c, s, "", items)
	if err != nil {
		return nil, err
	}
	return n.run(ctx, ev)
}
