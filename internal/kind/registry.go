package kind

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"

	"crucible/internal/competition"
	"crucible/internal/eval"
)

// Registry maps kind names to kinds. It is built once, explicitly, in
// internal/app (no init()) and then only read, so it needs no lock.
type Registry struct {
	kinds map[string]Kind
}

// NewRegistry returns a registry of ks; it fails as Register does.
func NewRegistry(ks ...Kind) (*Registry, error) {
	r := &Registry{kinds: map[string]Kind{}}
	for _, k := range ks {
		if err := r.Register(k); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds k. It refuses an empty name and a name already registered:
// two kinds answering to one stored name would score the same competition
// two ways.
func (r *Registry) Register(k Kind) error {
	name := k.Name()
	if strings.TrimSpace(name) == "" || name != strings.TrimSpace(name) {
		return fmt.Errorf("kind: register: empty or padded kind name %q", name)
	}
	if _, dup := r.kinds[name]; dup {
		return fmt.Errorf("kind: register: kind %q is registered twice", name)
	}
	r.kinds[name] = k
	return nil
}

// lookup returns the kind named name, nil if none (or no registry).
func (r *Registry) lookup(name string) Kind {
	if r == nil {
		return nil
	}
	return r.kinds[name]
}

// Names lists the registered kinds, sorted.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	names := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Get returns the kind named name; an unknown name is an error that lists
// the known kinds.
func (r *Registry) Get(name string) (Kind, error) {
	if k := r.lookup(name); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("unknown kind %q (kinds: %s)", name, strings.Join(r.Names(), ", "))
}

// Parse validates a kind name from a request or a flag.
func (r *Registry) Parse(name string) (competition.Kind, error) {
	if _, err := r.Get(name); err != nil {
		return "", err
	}
	return competition.Kind(name), nil
}

// Entry returns the shape of c's entries (EntryModel for a kind that does
// not say, and for an unknown kind, whose entries are refused later).
func (r *Registry) Entry(k competition.Kind) Entry {
	if s, ok := r.lookup(string(k)).(EntryShaper); ok {
		return s.Entry()
	}
	return EntryModel
}

// EntryOf returns the shape of competition c's entries: its kind's
// (Entry), unless the kind lets each competition choose.
func (r *Registry) EntryOf(c competition.Competition) Entry {
	if s, ok := r.lookup(string(c.Kind)).(CompetitionEntryShaper); ok {
		return s.EntryOf(c)
	}
	return r.Entry(c.Kind)
}

// Prompts returns the public prompts of c's items, for a competition that
// takes predictions files (EntryOf is EntryPredictions).
func (r *Registry) Prompts(c competition.Competition, items []json.RawMessage) ([]Prompt, error) {
	p, ok := r.lookup(string(c.Kind)).(Prompter)
	if !ok || r.EntryOf(c) != EntryPredictions {
		return nil, fmt.Errorf("%s is a %s competition of models: it publishes no prompts (only task competitions created with --submissions predictions do)", c.ID, c.Kind)
	}
	return p.Prompts(c, items)
}

// RanksModels reports whether competitions of kind k rank model
// submissions, one row each: the kinds whose entries are limited and
// checked for copies.
func (r *Registry) RanksModels(k competition.Kind) bool {
	return r.lookup(string(k)) != nil && r.Entry(k) == EntryModel
}

// Epochs reports whether competitions of kind k are scored in epochs.
func (r *Registry) Epochs(k competition.Kind) bool {
	_, ok := r.lookup(string(k)).(Epochal)
	return ok
}

// Labeled reports whether competitions of kind k are labeling work.
func (r *Registry) Labeled(k competition.Kind) bool {
	l, ok := r.lookup(string(k)).(Labeled)
	return ok && l.Labeled()
}

// Leaderboard ranks the submissions of c by its kind's rule: one row per
// scored submission unless the kind ranks otherwise.
func (r *Registry) Leaderboard(c competition.Competition, subs []competition.Submission) []competition.Row {
	if l, ok := r.lookup(string(c.Kind)).(Leaderboarder); ok {
		return l.Leaderboard(c, subs)
	}
	return competition.Leaderboard(c, subs)
}

// Rules describes c's configuration; nil when its kind has no description
// (callers then show the raw configuration).
func (r *Registry) Rules(c competition.Competition) []Rule {
	if d, ok := r.lookup(string(c.Kind)).(Describer); ok {
		return d.Rules(c)
	}
	return nil
}

// Prepare validates spec for kind k and encodes its items.
func (r *Registry) Prepare(ctx context.Context, k competition.Kind, spec Spec) (Prepared, error) {
	if err := competition.ValidateTitle(spec.Title); err != nil {
		return Prepared{}, err
	}
	kd, err := r.Get(string(k))
	if err != nil {
		return Prepared{}, err
	}
	return kd.Prepare(ctx, spec)
}

// Plan builds the evaluator of a stored submission by its competition's
// kind (it implements jobs.Planner and pool.Planner).
func (r *Registry) Plan(ctx context.Context, c competition.Competition, s competition.Submission, secret string, items []json.RawMessage) (eval.Evaluator, error) {
	kd, err := r.Get(string(c.Kind))
	if err != nil {
		return nil, fmt.Errorf("competition %s: %w", c.ID, err)
	}
	return kd.Plan(ctx, c, s, secret, items)
}

// SubmitCheck runs the kind's check of an entry, if it has one.
func (r *Registry) SubmitCheck(ctx context.Context, c competition.Competition, s competition.Submission, secret string) error {
	if sc, ok := r.lookup(string(c.Kind)).(SubmitChecker); ok {
		return sc.SubmitCheck(ctx, c, s, secret)
	}
	return nil
}

// ValidateEntry checks an entry against c's items at submit time, if the
// kind has such a check.
func (r *Registry) ValidateEntry(c competition.Competition, items []json.RawMessage, s competition.Submission) error {
	if v, ok := r.lookup(string(c.Kind)).(EntryValidator); ok {
		return v.ValidateEntry(c, items, s)
	}
	return nil
}

// Score scores a finished evaluation of a submission to c: the card and
// the per-item scores, results sorted by index first.
func (r *Registry) Score(c competition.Competition, results []eval.Result) (competition.Card, []float64, error) {
	kd, err := r.Get(string(c.Kind))
	if err != nil {
		return competition.Card{}, nil, fmt.Errorf("competition %s: %w", c.ID, err)
	}
	results = slices.Clone(results)
	slices.SortFunc(results, func(a, b eval.Result) int { return a.Index - b.Index })
	return kd.Score(c, results)
}

// FreshItems reports whether c evaluates on fresh items each epoch.
func (r *Registry) FreshItems(c competition.Competition) bool {
	e, ok := r.lookup(string(c.Kind)).(Epochal)
	return ok && e.FreshItems(c)
}

// WinRate names the win-rate preset of c's epoch weights ("" for a kind
// without epochs, and for the default).
func (r *Registry) WinRate(c competition.Competition) string {
	if e, ok := r.lookup(string(c.Kind)).(Epochal); ok {
		return e.WinRate(c)
	}
	return ""
}

// PlanFresh plans an epoch's fresh items of c from seed, with their digest.
func (r *Registry) PlanFresh(ctx context.Context, c competition.Competition, practice []json.RawMessage, seed int64) ([]json.RawMessage, string, error) {
	e, ok := r.lookup(string(c.Kind)).(Epochal)
	if !ok {
		return nil, "", fmt.Errorf("competition %s: a %s competition has no epochs", c.ID, c.Kind)
	}
	return e.PlanFresh(ctx, c, practice, seed)
}

// Components breaks a finished evaluation's score into named components;
// nil when c's kind does not.
func (r *Registry) Components(c competition.Competition, results []eval.Result) (map[string]float64, error) {
	if e, ok := r.lookup(string(c.Kind)).(Explainer); ok {
		return e.Components(c, results)
	}
	return nil, nil
}

// Tell describes c's rules in words; ok is false when its kind does not.
func (r *Registry) Tell(c competition.Competition) (text string, ok bool, err error) {
	t, ok := r.lookup(string(c.Kind)).(Teller)
	if !ok {
		return "", false, nil
	}
	text, err = t.Tell(c)
	return text, true, err
}

// CreateFlags adds the flags of every Flagged kind to fs (the flags of
// `crucible competition create`) and returns the reader of kind k's, to
// call once fs is parsed: it gives the zero Creation for a kind without
// flags.
func (r *Registry) CreateFlags(fs *flag.FlagSet) func(k competition.Kind) (Creation, error) {
	read := map[competition.Kind]func() (Creation, error){}
	for _, name := range r.Names() {
		if f, ok := r.kinds[name].(Flagged); ok {
			read[competition.Kind(name)] = f.CreateFlags(fs)
		}
	}
	return func(k competition.Kind) (Creation, error) {
		if f := read[k]; f != nil {
			return f()
		}
		return Creation{}, nil
	}
}
