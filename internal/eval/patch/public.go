package patch

import (
	"path/filepath"
	"strings"
	"time"
)

// PublicTask is what competitors see of a task: enough to reproduce the
// bug and run the tests, never the reference fix (Patch) nor the tests
// that decide it (TestPatch).
type PublicTask struct {
	InstanceID       string `json:"instance_id"`
	ProblemStatement string `json:"problem_statement"`
	// Repo names the repository: an uploaded bundle's digest, or the base
	// name of an operator's repository (its host path stays private).
	Repo       string     `json:"repo"`
	BaseCommit string     `json:"base_commit"`
	FailToPass StringList `json:"FAIL_TO_PASS"`
	PassToPass StringList `json:"PASS_TO_PASS"`
	TestCmd    Command    `json:"test_cmd"`
	// PublishedAt is when competitors could first see the task; the time
	// component of the score runs from it.
	PublishedAt time.Time `json:"published_at"`
}

// Public returns what competitors may see of t, published at published.
func (t Task) Public(published time.Time) PublicTask {
	repo := t.Repo
	if !strings.HasPrefix(repo, BundlePrefix) {
		repo = filepath.Base(repo)
	}
	return PublicTask{InstanceID: t.InstanceID, ProblemStatement: t.ProblemStatement, Repo: repo, BaseCommit: t.BaseCommit,
		FailToPass: t.FailToPass, PassToPass: t.PassToPass, TestCmd: t.TestCmd, PublishedAt: published}
}
