package kinds

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"crucible/internal/competition"
	"crucible/internal/eval/patch"
	"crucible/internal/eval/roleplay"
	"crucible/internal/incentive"
	"crucible/internal/kind"
)

// The built-in kinds' own flags on `crucible competition create`
// (kind.Flagged); mcq takes only the generic ones (--dataset, --template,
// --mode).

// RoleplayFlags are the planning and model flags of a roleplay evaluation,
// shared by `crucible competition create` and `crucible eval`.
type RoleplayFlags struct {
	seed                                       *int64
	items, turns, maxTokens                    *int
	generatorURL, generatorModel, referenceURL *string
	referenceModel, judgeURL, judgeModel       *string
	scoring                                    *string
	trustParams                                *bool
	// Personas is the persona JSONL file ("": the shipped set).
	Personas *string
}

// AddRoleplayFlags adds the roleplay flags to fs.
func AddRoleplayFlags(fs *flag.FlagSet) RoleplayFlags {
	return RoleplayFlags{
		seed:      fs.Int64("seed", 0, "roleplay: seed the conversations are generated from (same seed, same items)"),
		items:     fs.Int("items", roleplay.DefaultItems, "roleplay: number of conversations"),
		turns:     fs.Int("turns", roleplay.DefaultTurns, "roleplay: user messages per conversation"),
		maxTokens: fs.Int("max-tokens", roleplay.DefaultMaxTokens, "roleplay: bound on generated messages and replies"),
		generatorURL: fs.String("generator-url", "", "roleplay: generator model server, continues the user side (local eval: key from CRUCIBLE_GENERATOR_API_KEY;\n"+
			"on a hub: empty for the hub's own generator, the only one that gets the hub's key)"),
		generatorModel: fs.String("generator-model", roleplay.BaselineGenerator, "roleplay: generator model name"),
		referenceURL:   fs.String("reference-url", "", "roleplay: reference model server (local eval: key from CRUCIBLE_REFERENCE_API_KEY; on a hub: empty for the hub's own)"),
		referenceModel: fs.String("reference-model", roleplay.BaselineReference, "roleplay: reference model name"),
		judgeURL:       fs.String("judge-url", "", "roleplay: judge model server (local eval: key from CRUCIBLE_JUDGE_API_KEY; on a hub: empty for the hub's own)"),
		judgeModel:     fs.String("judge-model", roleplay.BaselineJudge, "roleplay: judge model name"),
		Personas:       fs.String("personas", "", "roleplay: persona JSONL (default: the shipped set)"),
		scoring: fs.String("scoring", roleplay.PresetCrucible, "roleplay: scoring preset, one of "+strings.Join(roleplay.Presets(), ", ")+
			";\n"+"the dippy-* presets are the Dippy subnet's scoring eras (e.g. --scoring dippy-2024-11, the era its miner FAQ describes)"),
		trustParams: fs.Bool("trust-declared-params", false, "roleplay: let the size component use the parameter count the model's own server declares in\n"+
			"/v1/models (meta.n_params); only for servers you or the operator run, since a competitor's can declare anything;\n"+
			"an artifact submission's size always reads the count the worker measured from its files"),
	}
}

// config builds the competition configuration; empty endpoint URLs default
// to fallback. An unknown scoring preset is an error naming the flag.
func (f RoleplayFlags) config(fallback string) (roleplay.CompetitionConfig, error) {
	or := func(s string) string {
		if s == "" {
			return fallback
		}
		return s
	}
	scoring, err := roleplay.ScoringPreset(*f.scoring)
	if err != nil {
		return roleplay.CompetitionConfig{}, fmt.Errorf("--scoring: %w", err)
	}
	return roleplay.CompetitionConfig{Seed: *f.seed, Items: *f.items, Turns: *f.turns, MaxTokens: *f.maxTokens,
		Generator:           roleplay.EndpointSpec{BaseURL: or(*f.generatorURL), Model: *f.generatorModel},
		Reference:           roleplay.EndpointSpec{BaseURL: or(*f.referenceURL), Model: *f.referenceModel},
		Judge:               roleplay.EndpointSpec{BaseURL: or(*f.judgeURL), Model: *f.judgeModel},
		Scoring:             scoring,
		TrustDeclaredParams: *f.trustParams}, nil
}

// Options are the flags' configuration as kind.Spec.Options holds it, with
// empty endpoint URLs defaulting to fallback (a local evaluation's model
// server).
func (f RoleplayFlags) Options(fallback string) (map[string]json.RawMessage, error) {
	cfg, err := f.config(fallback)
	if err != nil {
		return nil, err
	}
	return roleplayOptions(cfg)
}

func roleplayOptions(cfg roleplay.CompetitionConfig) (map[string]json.RawMessage, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return map[string]json.RawMessage{"roleplay": raw}, nil
}

// CreateFlags implements kind.Flagged: the roleplay flags, fresh items and
// the contamination threshold; empty endpoint URLs are the hub's own models.
func (Roleplay) CreateFlags(fs *flag.FlagSet) func() (kind.Creation, error) {
	rf := AddRoleplayFlags(fs)
	fresh := fs.Bool("fresh-items", true, "roleplay: evaluate every model each epoch on items from a secret seed (committed when the\n"+
		"epoch opens, revealed when it ends); the items from --seed become the public practice set")
	gap := fs.Float64("contamination-threshold", roleplay.DefaultContaminationThreshold,
		"roleplay: flag a model whose practice score exceeds its fresh-items score by more than this")
	winRate := fs.String("win-rate", incentive.PresetCrucible, "roleplay: how epoch weights come from scores: crucible, dippy or pretraining\n"+
		"(see crucible winrate --help)")
	return func() (kind.Creation, error) {
		cfg, err := rf.config("")
		if err != nil {
			return kind.Creation{}, err
		}
		cfg.FreshItems, cfg.ContaminationThreshold = *fresh, *gap
		if _, err := incentive.Preset(*winRate); err != nil {
			return kind.Creation{}, fmt.Errorf("--win-rate: %w", err)
		}
		if *winRate != incentive.PresetCrucible {
			cfg.WinRate = *winRate // stored competitions without it keep crucible
		}
		opts, err := roleplayOptions(cfg)
		if err != nil {
			return kind.Creation{}, err
		}
		// The persona set keeps the file's path: verify-epoch asks for it.
		return kind.Creation{Dataset: *rf.Personas, DatasetName: *rf.Personas, Shipped: true, Options: opts,
			Created: func(c competition.Competition) string {
				return fmt.Sprintf("created roleplay competition %s: %d conversations from seed %d", c.ID, c.Items, cfg.Seed)
			}}, nil
	}
}

// CreateFlags implements kind.Flagged: the tasks file and the policy rules
// a competition relaxes.
func (Patch) CreateFlags(fs *flag.FlagSet) func() (kind.Creation, error) {
	tasks := fs.String("tasks", "", "patch: task instances (SWE-bench JSONL plus test_cmd and log_parser; see crucible patch mine)")
	allowRules := fs.String("allow-rules", "", "patch: policy-screen rules this competition relaxes, comma-separated (default none: every rule applies);\n"+
		"rules: "+strings.Join(patch.PolicyRules(), ", "))
	return func() (kind.Creation, error) {
		c := kind.Creation{Dataset: *tasks}
		if *allowRules != "" {
			raw, err := json.Marshal(patch.Policy{Allow: strings.Split(*allowRules, ",")})
			if err != nil {
				return kind.Creation{}, err
			}
			c.Options = map[string]json.RawMessage{"patch_policy": raw}
		}
		return c, nil
	}
}
