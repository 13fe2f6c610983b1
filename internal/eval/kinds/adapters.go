package kinds

import (
	"context"
	"crucible/internal/eval/preference"
	"encoding/json"
	"fmt"
	"strconv"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/patch"
	"crucible/internal/eval/roleplay"
	"crucible/internal/kind"
)

// The four built-in kinds as kind.Kind implementations. internal/app
// registers them, with the server's egress and repository source.

// MCQ is multiple choice (internal/eval/mcq).
type MCQ struct{ Egress Egress }

// Patch is code-fix: a unified diff per task, judged in the sandbox.
type Patch struct{ Repos RepoSource }

// Roleplay is character roleplay judged against a reference model.
type Roleplay struct{ Egress Egress }

// Preference is human preference labeling: no submissions, labelers' work.
type Preference struct{ Egress Egress }

// Name implements kind.Kind.
func (MCQ) Name() string { return mcq.Name }

// Prepare implements kind.Kind.
func (MCQ) Prepare(ctx context.Context, spec kind.Spec) (kind.Prepared, error) {
	return prepareMCQ(spec)
}

// Plan implements kind.Kind.
func (k MCQ) Plan(ctx context.Context, c competition.Competition, s competition.Submission, secret string, items []json.RawMessage) (eval.Evaluator, error) {
	return planMCQ(c, s, secret, items, k.Egress)
}

// Score implements kind.Kind: mean item score, correct answers counted.
func (MCQ) Score(c competition.Competition, results []eval.Result) (competition.Card, []float64, error) {
	return ResultScores(results)
}

// SubmitCheck implements kind.SubmitChecker.
func (k MCQ) SubmitCheck(ctx context.Context, _ competition.Competition, s competition.Submission, secret string) error {
	return ModelCheck(ctx, s, secret, k.Egress)
}

// EntryOf implements kind.CompetitionEntryShaper: models, or artifacts.
func (MCQ) EntryOf(c competition.Competition) kind.Entry { return EntryOf(c) }

// Validation: a validator evaluates each model on its own copy of the
// dataset.
func (MCQ) Validation() kind.Validation { return kind.ValidateOwnDataset }

// Rules implements kind.Describer: mode, token budget and the template.
func (MCQ) Rules(c competition.Competition) []kind.Rule {
	var cfg competition.MCQConfig
	if err := json.Unmarshal(c.Config, &cfg); err != nil {
		return nil
	}
	tmpl, note := cfg.Template, ""
	if tmpl == "" {
		tmpl, note = mcq.DefaultTemplate, "the default template"
	}
	return []kind.Rule{
		{Label: "Mode", Value: cfg.Mode, Note: modeNote(cfg.Mode)},
		{Label: "Max tokens", Value: strconv.Itoa(cfg.MaxTokens), Note: "bound on each generated answer"},
		{Label: "Prompt template", Value: tmpl, Note: note, Block: true},
	}
}

func modeNote(mode string) string {
	switch mcq.Mode(mode) {
	case mcq.Generative:
		return "the model answers in text; the letter is extracted from it"
	case mcq.LogLikelihood:
		return "the most likely choice by the model's log-probabilities"
	}
	return ""
}

// Name implements kind.Kind.
func (Patch) Name() string { return patch.Name }

// Prepare implements kind.Kind; Options["patch_policy"] relaxes policy rules.
func (Patch) Prepare(ctx context.Context, spec kind.Spec) (kind.Prepared, error) {
	var policy *patch.Policy
	if raw, ok := spec.Options["patch_policy"]; ok && string(raw) != "null" {
		policy = new(patch.Policy)
		if err := json.Unmarshal(raw, policy); err != nil {
			return kind.Prepared{}, fmt.Errorf("patch_policy: %w", err)
		}
	}
	return preparePatch(ctx, spec, policy)
}

// Plan implements kind.Kind.
func (k Patch) Plan(ctx context.Context, c competition.Competition, s competition.Submission, _ string, items []json.RawMessage) (eval.Evaluator, error) {
	return planPatch(ctx, c, s, items, k.Repos)
}

// Score implements kind.Kind: the judge's score, resolved counted.
func (Patch) Score(c competition.Competition, results []eval.Result) (competition.Card, []float64, error) {
	return ResultScores(results)
}

// Entry implements kind.EntryShaper: a diff for one task.
func (Patch) Entry() kind.Entry { return kind.EntryPatch }

// Validation: a validator judges each patch in its own sandbox.
func (Patch) Validation() kind.Validation { return kind.ValidateSandbox }

// ValidateEntry implements kind.EntryValidator: the task must exist.
func (Patch) ValidateEntry(c competition.Competition, items []json.RawMessage, s competition.Submission) error {
	if s.Patch == nil {
		return fmt.Errorf("a code-fix competition takes a patch")
	}
	_, err := FindTask(items, s.Patch.Task)
	return err
}

// Leaderboard implements kind.Leaderboarder: submitters are ranked.
func (Patch) Leaderboard(c competition.Competition, subs []competition.Submission) []competition.Row {
	return competition.PatchLeaderboard(subs, c.Items)
}

// Name implements kind.Kind.
func (Roleplay) Name() string { return roleplay.Name }

// Prepare implements kind.Kind; Options["roleplay"] is the configuration
// and the dataset an optional persona JSONL.
func (k Roleplay) Prepare(ctx context.Context, spec kind.Spec) (kind.Prepared, error) {
	raw, ok := spec.Options["roleplay"]
	if !ok || string(raw) == "null" {
		return kind.Prepared{}, fmt.Errorf("a roleplay competition needs its configuration (seed, generator, reference, judge)")
	}
	var cfg roleplay.CompetitionConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return kind.Prepared{}, fmt.Errorf("roleplay: %w", err)
	}
	entries, err := SpecEntries(spec, cfg.Entries)
	if err != nil {
		return kind.Prepared{}, err
	}
	cfg.Entries = entries
	return prepareRoleplay(ctx, spec, cfg, k.Egress)
}

// Plan implements kind.Kind: items are the practice items or an epoch's.
func (k Roleplay) Plan(ctx context.Context, c competition.Competition, s competition.Submission, secret string, items []json.RawMessage) (eval.Evaluator, error) {
	return planRoleplay(c, s, secret, items, k.Egress)
}

// Score implements kind.Kind: the final item scores (cross-reply
// penalties, coherence gate, multiplier applied); a positive one counts.
func (Roleplay) Score(c competition.Competition, results []eval.Result) (competition.Card, []float64, error) {
	cfg, err := RoleplayConfig(c)
	if err != nil {
		return competition.Card{}, nil, err
	}
	scores, err := roleplay.ItemScores(results, cfg.Scoring)
	if err != nil {
		return competition.Card{}, nil, err
	}
	correct := 0
	for _, s := range scores {
		if s > 0 {
			correct++
		}
	}
	return competition.NewCard(scores, correct), scores, nil
}

// SubmitCheck implements kind.SubmitChecker.
func (k Roleplay) SubmitCheck(ctx context.Context, _ competition.Competition, s competition.Submission, secret string) error {
	return ModelCheck(ctx, s, secret, k.Egress)
}

// Components implements kind.Explainer: the aggregate's components.
func (Roleplay) Components(c competition.Competition, results []eval.Result) (map[string]float64, error) {
	cfg, err := RoleplayConfig(c)
	if err != nil {
		return nil, err
	}
	_, comps, err := roleplay.Aggregate(results, cfg.Scoring)
	if err != nil {
		return nil, fmt.Errorf("aggregate: %w", err)
	}
	return comps, nil
}

// EntryOf implements kind.CompetitionEntryShaper: models, or artifacts.
func (Roleplay) EntryOf(c competition.Competition) kind.Entry { return EntryOf(c) }

// Validation: a validator evaluates each model on its own fresh items each
// epoch, with its own generator, reference and judge.
func (Roleplay) Validation() kind.Validation { return kind.ValidateOwnModels }

// FreshItems implements kind.Epochal: a competition created with
// fresh_items.
func (Roleplay) FreshItems(c competition.Competition) bool {
	cfg, err := RoleplayConfig(c)
	return err == nil && cfg.FreshItems
}

// WinRate implements kind.Epochal: the competition's win_rate preset.
func (Roleplay) WinRate(c competition.Competition) string {
	cfg, err := RoleplayConfig(c)
	if err != nil {
		return ""
	}
	return cfg.WinRate
}

// PlanFresh implements kind.Epochal.
func (k Roleplay) PlanFresh(ctx context.Context, c competition.Competition, practice []json.RawMessage, seed int64) ([]json.RawMessage, string, error) {
	cfg, err := RoleplayConfig(c)
	if err != nil {
		return nil, "", err
	}
	prac, err := RoleplayItems(c, practice)
	if err != nil {
		return nil, "", err
	}
	items, err := FreshRoleplayItems(ctx, cfg, prac, seed, k.Egress)
	if err != nil {
		return nil, "", err
	}
	raw, err := EncodeItems(items)
	return raw, roleplay.Digest(items), err
}

// Name implements kind.Kind.
func (Preference) Name() string { return preference.Name }

// Prepare implements kind.Kind; Options["preference"] is the
// preference-specific part of the request.
func (k Preference) Prepare(ctx context.Context, spec kind.Spec) (kind.Prepared, error) {
	var p PreferenceSpec
	if raw, ok := spec.Options["preference"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &p); err != nil {
			return kind.Prepared{}, fmt.Errorf("preference: %w", err)
		}
	}
	return PreparePreference(ctx, CompetitionSpec{Kind: preference.Name, Title: spec.Title,
		DatasetName: spec.DatasetName, Dataset: spec.Dataset, Egress: k.Egress}, p)
}

// Plan implements kind.Kind: a preference competition evaluates nothing.
func (Preference) Plan(_ context.Context, c competition.Competition, _ competition.Submission, _ string, _ []json.RawMessage) (eval.Evaluator, error) {
	return nil, fmt.Errorf("competition %s is a preference competition: labelers rank its tasks; it evaluates no submissions", c.ID)
}

// Score implements kind.Kind.
func (Preference) Score(c competition.Competition, results []eval.Result) (competition.Card, []float64, error) {
	return ResultScores(results)
}

// Entry implements kind.EntryShaper: labelers, not submissions.
func (Preference) Entry() kind.Entry { return kind.EntryNone }

// Tell implements kind.Teller: the rules in words.
func (Preference) Tell(c competition.Competition) (string, error) {
	cfg, err := PreferenceSettings(c)
	if err != nil {
		return "", err
	}
	return cfg.Describe(), nil
}

// Labeled implements kind.Labeled.
func (Preference) Labeled() bool { return true }

// Validation: a validator scores a preference competition from its labels.
func (Preference) Validation() kind.Validation { return kind.ValidateLabels }

// ResultScores is the card of kinds whose item score is the result's and
// whose correct count is the results marked correct.
func ResultScores(results []eval.Result) (competition.Card, []float64, error) {
	scores := make([]float64, len(results))
	correct := 0
	for i, r := range results {
		scores[i] = r.Score
		if r.Correct {
			correct++
		}
	}
	return competition.NewCard(scores, correct), scores, nil
}

// EncodeItems encodes items for storage, one JSON value each.
func EncodeItems[T any](items []T) ([]json.RawMessage, error) {
	raw := make([]json.RawMessage, len(items))
	for i, it := range items {
		var err error
		if raw[i], err = json.Marshal(it); err != nil {
			return nil, err
		}
	}
	return raw, nil
}

// Builtin returns the built-in kinds, reaching models through egress and
// judging patches with repos, for a kind.Registry (internal/app builds the
// server's; a validator node scores with one of its own).
func Builtin(egress Egress, repos RepoSource) []kind.Kind {
	return []kind.Kind{MCQ{Egress: egress}, Patch{Repos: repos}, Roleplay{Egress: egress}, Preference{Egress: egress}}
}
