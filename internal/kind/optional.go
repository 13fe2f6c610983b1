package kind

import (
	"context"
	"encoding/json"
	"flag"

	"crucible/internal/competition"
	"crucible/internal/eval"
)

// The optional interfaces below are what only some kinds do. Callers ask
// the Registry (or type-assert a Kind) instead of naming a kind.

// Entry is the shape of what competitors submit to a kind.
type Entry int

// Entry shapes.
const (
	// EntryModel is an OpenAI-compatible model server and a model name: the
	// default for a kind that does not say otherwise.
	EntryModel Entry = iota
	// EntryPatch is a unified diff for one of the competition's tasks.
	EntryPatch
	// EntryNone: the kind takes no submissions (its work comes otherwise,
	// for example from labelers).
	EntryNone
	// EntryPredictions is a file of responses to the competition's items,
	// scored without a model. Entries are ranked, limited and checked for
	// copies as models are (Registry.RanksModels).
	EntryPredictions
	// EntryArtifact is model files (a repository at a revision, a path, a
	// file:// tarball) committed by their tree digest, which workers fetch,
	// verify and serve themselves. Ranked, limited and checked for copies
	// as models are; the same tree entered later is a copy.
	EntryArtifact
)

// EntryShaper is a kind whose entries are not models.
type EntryShaper interface {
	Entry() Entry
}

// Prompt is what a predictions competition shows of one item: its doc_id
// (the item's index), the prompt a model is sent, and the strings its
// generation stops at. The item's target is never part of it.
type Prompt struct {
	DocID  int      `json:"doc_id"`
	Prompt string   `json:"prompt"`
	Until  []string `json:"until,omitempty"`
}

// Prompter is a kind whose competitions taking predictions publish their
// items' prompts, so competitors can generate the responses.
type Prompter interface {
	Prompts(c competition.Competition, items []json.RawMessage) ([]Prompt, error)
}

// CompetitionEntryShaper is a kind whose competitions choose their entry
// shape (a task competition takes models or predictions files).
type CompetitionEntryShaper interface {
	EntryOf(c competition.Competition) Entry
}

// EntryValidator checks an entry against the competition's stored items
// when it is submitted (for example: the task a patch names exists).
type EntryValidator interface {
	ValidateEntry(c competition.Competition, items []json.RawMessage, s competition.Submission) error
}

// SubmitChecker runs a deterministic check on an entry once, before its
// first evaluation; its error is final (the submission fails with it).
type SubmitChecker interface {
	SubmitCheck(ctx context.Context, c competition.Competition, s competition.Submission, secret string) error
}

// Leaderboarder is a kind that ranks other than one row per scored
// submission (a code-fix competition ranks its submitters).
type Leaderboarder interface {
	Leaderboard(c competition.Competition, subs []competition.Submission) []competition.Row
}

// Rule is one line of a competition's description: a label and a value,
// with an optional note; Block values are shown preformatted.
type Rule struct {
	Label, Value, Note string
	Block              bool
}

// Describer describes a competition's configuration for people (web page,
// CLI) with the kind's defaults spelled out.
type Describer interface {
	Rules(c competition.Competition) []Rule
}

// Teller describes a competition's rules in words, for `crucible
// competition show` (which otherwise prints the configuration as JSON).
type Teller interface {
	Tell(c competition.Competition) (string, error)
}

// Epochal is a kind whose competitions are weighted in epochs; those that
// ask for it are evaluated each epoch on fresh items planned from the
// epoch's secret seed (Plan evaluates a submission on them).
type Epochal interface {
	// FreshItems reports whether c evaluates on fresh items each epoch.
	FreshItems(c competition.Competition) bool
	// PlanFresh plans an epoch's items from its seed, with the digest that
	// binds them; practice are the competition's stored items.
	PlanFresh(ctx context.Context, c competition.Competition, practice []json.RawMessage, seed int64) ([]json.RawMessage, string, error)
	// WinRate names the win-rate preset c's epoch weights use
	// (incentive.Preset; "" is the default, crucible).
	WinRate(c competition.Competition) string
}

// Labeled is a kind whose work is done by human labelers at /label, paid
// from the competition's rewards (preference).
type Labeled interface {
	Labeled() bool
}

// Explainer breaks a finished evaluation's score into named components
// (shown by `crucible eval` beside the card).
type Explainer interface {
	Components(c competition.Competition, results []eval.Result) (map[string]float64, error)
}

// Flagged is a kind with flags of its own on `crucible competition create`.
// Every kind's flags share one flag set, so a name is used by one kind only;
// help starts with the kind's name ("roleplay: ...").
type Flagged interface {
	// CreateFlags adds the kind's flags to fs and returns what reads them
	// once fs is parsed.
	CreateFlags(fs *flag.FlagSet) func() (Creation, error)
}

// Creation is a kind's part of a competition request, read from its flags.
type Creation struct {
	// Dataset is the dataset file named by a flag of the kind's own ("":
	// the --dataset flag's); DatasetName, when set, is the name the
	// competition keeps for it instead of the file's base name.
	Dataset, DatasetName string
	// Data, when set, is Dataset's content as the kind read it (converted
	// to the format the hub reads); the CLI sends it instead of the file.
	Data []byte
	// Shipped: the kind has a dataset of its own, so the file is optional.
	Shipped bool
	// Options are the kind's settings by their JSON field name in the
	// competition request, as Spec.Options holds them.
	Options map[string]json.RawMessage
	// Created describes the new competition c in one line ("created
	// competition ..."); nil: the CLI's generic line.
	Created func(c competition.Competition) string
}
