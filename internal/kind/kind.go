// Package kind is the contract every competition kind implements, shaped
// like database/sql drivers: a small required interface (Kind) and optional
// interfaces, discovered by type assertion, for what only some kinds do.
// A Registry, built explicitly in internal/app, maps names to kinds; the
// API, CLI, web, jobs, pools, epochs and validators ask it and never switch
// on a kind's name. A new kind is one package plus one registration line.
//
// The package is pure: it must never import the store, the job queue, the
// API, the web pages or anything that serves HTTP.
package kind

import (
	"context"
	"encoding/json"

	"crucible/internal/competition"
	"crucible/internal/eval"
)

// Kind is a competition kind: how a creator's spec becomes stored items, how
// a stored submission is evaluated and how its results are scored.
type Kind interface {
	// Name is the kind's name as stored in competition.Competition.Kind.
	Name() string
	// Prepare validates a competition spec and encodes its items. A bad
	// dataset line is reported with its line number and nothing is prepared.
	Prepare(ctx context.Context, spec Spec) (Prepared, error)
	// Plan builds the evaluator of a stored submission from its
	// competition's stored items; secret is the submission's model API key.
	// An error is deterministic: the submission fails with it.
	Plan(ctx context.Context, c competition.Competition, s competition.Submission, secret string, items []json.RawMessage) (eval.Evaluator, error)
	// Score turns a finished evaluation's results (sorted by index) into the
	// submission's card and the per-item scores that leaderboards and win
	// rates compare.
	Score(c competition.Competition, results []eval.Result) (competition.Card, []float64, error)
}

// Spec is what a competition creator sends, in the shape every kind reads.
type Spec struct {
	Title       string
	DatasetName string
	// Dataset is the dataset file's content (items, tasks or personas).
	Dataset []byte
	// Template is an optional prompt template, Mode an optional evaluation
	// mode and MaxTokens an optional bound on generated answers (0: the
	// kind's default); kinds that take none ignore them.
	Template  string
	Mode      string
	MaxTokens int
	// Options are the request's kind-specific settings by their JSON field
	// name (for example "roleplay", "patch_policy"); each kind reads its own
	// and refuses what it needs and lacks.
	Options map[string]json.RawMessage
	// ResolveRepo vets a repository a task names (with the base commit it
	// needs) and returns what the stored task refers to instead; nil refuses
	// every repository.
	ResolveRepo func(ctx context.Context, repo, baseCommit string) (string, error)
}

// Prepared is a validated competition, ready to store.
type Prepared struct {
	Config        json.RawMessage
	DatasetDigest string
	Items         []json.RawMessage
}
