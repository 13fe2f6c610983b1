package kind

import (
	"context"
	"fmt"

	"crucible/internal/competition"
)

// Validation is how a validator evaluates a kind's submissions on its own,
// and so what it needs to: a validator (internal/validator/node) asks the
// Registry for it instead of naming kinds, so a new kind that is validated
// one of these ways needs no change in the validator.
type Validation int

// Validations.
const (
	// ValidateNone: a validator cannot evaluate the kind itself; it scores
	// from the hub's stored results only when told to trust them.
	ValidateNone Validation = iota
	// ValidateOwnDataset: the kind's evaluator runs against each miner's
	// model over the validator's own copy of the dataset, checked against
	// the competition's dataset digest; the kind's Score scores it.
	ValidateOwnDataset
	// ValidateOwnModels: the kind's evaluator runs against each miner's
	// model over fresh items the validator plans each epoch from its own
	// secret seed, with its own models (generator, reference, judge).
	ValidateOwnModels
	// ValidateSandbox: each miner's latest entry (a patch, not a model) is
	// judged in the validator's own sandbox over the competition's full
	// tasks and their repository bundles, checked against their digests.
	ValidateSandbox
	// ValidateLabels: no submission is evaluated; the competition is scored
	// from its labels and a miner's weight is its reward.
	ValidateLabels
	// ValidateOwnItems: the validator renders the competition's items
	// itself from its stored configuration (and its own copy of the rows
	// the competition was created from, if it was sent any), checks them
	// against the competition's dataset digest, and runs the kind's
	// evaluator (Plan) on them against each miner's model. The kind
	// implements Rendering.
	ValidateOwnItems
)

// Validating is a kind that validators evaluate on their own.
type Validating interface {
	Validation() Validation
}

// Validation returns how a validator evaluates competitions of kind k on
// its own (ValidateNone for a kind that does not say, or an unknown one).
func (r *Registry) Validation(k competition.Kind) Validation {
	if v, ok := r.lookup(string(k)).(Validating); ok {
		return v.Validation()
	}
	return ValidateNone
}

// Rendering is a kind whose items a validator renders itself
// (ValidateOwnItems).
type Rendering interface {
	// Render prepares c's items again from c's stored configuration and
	// rows, the dataset file c was created from (nil: the rows the
	// configuration brings itself, such as a shipped preset's). The
	// result's DatasetDigest equals c's exactly when the items are the
	// ones the hub stored.
	Render(ctx context.Context, c competition.Competition, rows []byte) (Prepared, error)
}

// Render renders c's items as its kind's Rendering does.
func (r *Registry) Render(ctx context.Context, c competition.Competition, rows []byte) (Prepared, error) {
	k, ok := r.lookup(string(c.Kind)).(Rendering)
	if !ok {
		return Prepared{}, fmt.Errorf("kind %s does not render its items", c.Kind)
	}
	return k.Render(ctx, c, rows)
}
