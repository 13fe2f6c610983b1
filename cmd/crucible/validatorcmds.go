package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/egress"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/mcq"
	"crucible/internal/identity"
	"crucible/internal/incentive"
	"crucible/internal/modelhost"
	"crucible/internal/validator/node"
)

// envValidatorSecret holds the secret a validator plans its own roleplay
// items from (random per process when unset).
const envValidatorSecret = "CRUCIBLE_VALIDATOR_SECRET"

// stringList is a flag that may be repeated and takes comma-separated values.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

// Set appends the comma-separated values of v.
func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// consensusFlags are the hub's validator-network settings (serve and worker).
type consensusFlags struct {
	admins        *stringList
	maxUIDs       *int
	immunity      *time.Duration
	emission      *int64
	asset         *string
	yuma          yumaFlags
	maxValidators *int
	regFee        *int64
}

func addConsensusFlags(fs *flag.FlagSet) consensusFlags {
	admins := &stringList{}
	fs.Var(admins, "admin-key", "operator `KEYID` (ed25519:...) or key file: may set validator stakes, close consensus epochs, deposit money into funders' accounts and force a pool's settlement (repeat or comma-separate; env CRUCIBLE_ADMIN_KEY)")
	return consensusFlags{
		admins:        admins,
		maxUIDs:       fs.Int("max-uids", app.DefaultMaxUIDs, "miner registrations (UIDs) before a new one replaces the non-immune miner with the lowest last incentive"),
		immunity:      fs.Duration("immunity", app.DefaultImmunity, "how long after registration a miner cannot be replaced (4096 blocks of 12 s)"),
		emission:      fs.Int64("emission", app.DefaultEmission, "base units emitted per closed consensus epoch (0: record only)"),
		asset:         fs.String("emission-asset", app.DefaultAsset, "asset the consensus emission is paid in"),
		yuma:          addYumaFlags(fs),
		maxValidators: fs.Int("max-validators", 0, "consensus epochs give validator permits to the top-k stakes only (0: every validator with stake)"),
		regFee:        fs.Int64("registration-fee", 0, "base units of the emission asset burned from the registrant's participant account on each new miner registration (0: free; a fee makes UID churn cost)"),
	}
}

func (c consensusFlags) config() (app.ConsensusConfig, error) {
	admins := make([]string, len(*c.admins))
	for i, k := range *c.admins {
		id, err := keyID("admin-key", k)
		if err != nil {
			return app.ConsensusConfig{}, err
		}
		admins[i] = id
	}
	yuma, err := c.yuma.params()
	if err != nil {
		return app.ConsensusConfig{}, err
	}
	if *c.maxValidators < 0 {
		return app.ConsensusConfig{}, usagef("--max-validators %d must be ≥ 0", *c.maxValidators)
	}
	yuma.MaxValidators = *c.maxValidators
	if *c.emission < 0 || *c.emission > app.MaxEmission {
		return app.ConsensusConfig{}, usagef("--emission %d must be in [0, 2^53]", *c.emission)
	}
	emission := *c.emission
	if emission == 0 {
		emission = -1 // the config's "none"
	}
	if *c.maxUIDs < 1 {
		return app.ConsensusConfig{}, usagef("--max-uids must be at least 1")
	}
	if *c.regFee < 0 {
		return app.ConsensusConfig{}, usagef("--registration-fee %d must be ≥ 0", *c.regFee)
	}
	return app.ConsensusConfig{Admins: admins, MaxUIDs: *c.maxUIDs, Immunity: *c.immunity, Emission: emission, Asset: *c.asset,
		RegistrationFee: *c.regFee, Yuma: yuma}, nil
}

func runRegister(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("register", "Register your key as a miner: it gets a UID (the hub's limit is --max-uids; when full, the\n"+
		"non-immune miner with the lowest last incentive is replaced). Registering again returns your UID.",
		"crucible register --server http://hub:8080 --key miner.key", stderr)
	cf := addClientFlags(fs)
	o := addOutputFlags(fs, "print the registration as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := cf.client(true)
	if err != nil {
		return err
	}
	reg, err := c.Register(ctx)
	if err != nil {
		return err
	}
	return o.emit(stdout, reg, func() error {
		switch {
		case !reg.Created:
			fmt.Fprintf(stdout, "already registered: UID %d (since %s)\n", reg.UID, reg.RegisteredAt.Format(time.RFC3339))
		case reg.Replaced != nil:
			fmt.Fprintf(stdout, "registered as UID %d, replacing %s (pruning score %.6f)\n", reg.UID, reg.Replaced.Key, reg.Replaced.PruningScore)
		default:
			fmt.Fprintf(stdout, "registered as UID %d\n", reg.UID)
		}
		return nil
	})
}

func runValidator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand(args, "validator",
		verb{"run", "run a validator node that scores a competition and sets weights"},
		verb{"stake", "set a validator's stake (operator keys)"},
		verb{"list", "list validators and their stakes"},
		verb{"uids", "list miner registrations (UIDs)"})
	if err != nil {
		return err
	}
	switch verb {
	case "run":
		return runValidatorNode(ctx, args, stderr)
	case "stake":
		fs := newFlags("validator stake", "Set a validator's stake (signed by an admin key of the hub; 0 takes its vote away).",
			"crucible validator stake --key admin.key --validator ed25519:... --stake 1000", stderr)
		cf := addClientFlags(fs)
		validator := fs.String("validator", "", "the validator's `KEYID` (ed25519:...) or key file")
		stake := fs.Int64("stake", -1, "stake in integer base units")
		o := addOutputFlags(fs, "print the stake record as JSON")
		if err := parse(fs, args); err != nil {
			return err
		}
		if *validator == "" || *stake < 0 {
			return usagef("--validator KEYID and --stake S (≥ 0) are required")
		}
		id, err := keyID("validator", *validator)
		if err != nil {
			return err
		}
		c, err := cf.client(true)
		if err != nil {
			return err
		}
		st, err := c.SetStake(ctx, id, *stake)
		if err != nil {
			return err
		}
		return o.emit(stdout, st, func() error {
			fmt.Fprintf(stdout, "stake of %s is %d\n", st.Key, st.Stake)
			return nil
		})
	case "list":
		return runList(ctx, args, stdout, stderr, "validator list", "List validators and their stakes.",
			(*client.Client).Stakes, "VALIDATOR\tSTAKE\tSET", func(s apiv1.ValidatorStake) string {
				return fmt.Sprintf("%s\t%d\t%s", s.Key, s.Stake, s.UpdatedAt.Format(time.RFC3339))
			})
	default:
		return runList(ctx, args, stdout, stderr, "validator uids", "List miner registrations (UIDs).",
			(*client.Client).UIDs, "UID\tMINER\tREGISTERED\tPRUNING SCORE", func(m apiv1.MinerUID) string {
				return fmt.Sprintf("%d\t%s\t%s\t%.6f", m.UID, m.Key, m.RegisteredAt.Format(time.RFC3339), m.PruningScore)
			})
	}
}

func runValidatorNode(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("validator run", "Run a validator: evaluate a competition's submissions yourself (mcq: with your copy of the\n"+
		"dataset, --dataset; roleplay: with your own generator, reference and judge on your own fresh items\n"+
		"each epoch; patch: each miner's latest patch judged in your own sandbox (bwrap) over the\n"+
		"competition's repository bundles, checked against their digests, --tasks to check the tasks too;\n"+
		"task: on the items you render from the competition's task and the preset's rows or --rows)\n"+
		"against each miner's model: its endpoint, or for an artifact submission the model files you\n"+
		"fetch (--model-cache, --model-fetcher), verify against the committed tree digest and serve\n"+
		"yourself (--model-launcher; without these flags it stops at an artifact submission),\n"+
		"and post one signed weight vector over miner UIDs per epoch; copies get weight 0.\n"+
		"Without what the kind needs it refuses to start, unless --trust-hub-results (not independent).\n"+
		"An admin must have given your key a stake.",
		"crucible validator run --server http://hub:8080 --key validator.key --competition c-... --dataset internal/app/demodata/siqa-sample.jsonl", stderr)
	hub := fs.String("server", "http://127.0.0.1:8080", "the hub's URL")
	addAlias(fs, "hub", "server", nil)
	keyFile := fs.String("key", "", "the validator's key file")
	comp := fs.String("competition", "", "competition to score")
	dataset := fs.String("dataset", "", "your own copy of an mcq competition's dataset (must match its digest); evaluate models yourself")
	rowsFile := fs.String("rows", "", "task: your own copy of the rows the competition was created with (--data); without it, the preset's own rows")
	tasksFile := fs.String("tasks", "", "patch: your own copy of the competition's tasks file (must match its digest); the tasks the hub serves must match it")
	workDir := fs.String("work-dir", "", "patch: where downloaded repository bundles are cached (default: a temporary directory)")
	interval := fs.Duration("interval", node.DefaultInterval, "how often to poll the hub")
	temperature := fs.Float64("temperature", node.DefaultTemperature, "softmax temperature from win rates to weights")
	epsilon := fs.Float64("epsilon", node.DefaultEpsilon, "the earlier submission's advantage in win rates")
	concurrency := fs.Int("concurrency", node.DefaultConcurrency, "items evaluated at once per submission")
	allow := fs.String("allow-endpoints", "", "CIDRs that miners' model URLs and your own models may reach although private (e.g. 127.0.0.0/8); loopback, private, link-local, metadata and multicast addresses are refused otherwise")
	generatorURL := fs.String("generator-url", "", "roleplay: your own generator model server (key from "+app.EnvGeneratorKey+", sent to this URL only)")
	referenceURL := fs.String("reference-url", "", "roleplay: your own reference model server (key from "+app.EnvReferenceKey+")")
	judgeURL := fs.String("judge-url", "", "roleplay: your own judge model server (key from "+app.EnvJudgeKey+")")
	generatorModel := fs.String("generator-model", "", "roleplay: model name at --generator-url (default: the competition's)")
	referenceModel := fs.String("reference-model", "", "roleplay: model name at --reference-url (default: the competition's)")
	judgeModel := fs.String("judge-model", "", "roleplay: model name at --judge-url (default: the competition's)")
	trustHub := fs.Bool("trust-hub-results", false, "score kinds you cannot evaluate yourself from the hub's stored results: NOT an independent check (a tampered hub result moves your weights)")
	collude := fs.Int64("collude-with", -1, "TESTING ONLY: act dishonestly, giving this UID weight 1 and all others 0")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	mf := addModelFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *keyFile == "" || *comp == "" {
		return usagef("--key KEYFILE and --competition ID are required")
	}
	if !(*temperature > 0) || math.IsInf(*temperature, 0) || *epsilon < 0 {
		return usagef("--temperature must be > 0 and --epsilon ≥ 0")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef("--log-level: %v", err)
	}
	policy, err := egress.ParseAllowList(*allow)
	if err != nil {
		return usagef("--allow-endpoints: %v", err)
	}
	key, err := identity.Load(*keyFile)
	if err != nil {
		return err
	}
	hc, err := client.New(client.Config{Server: *hub, Key: key})
	if err != nil {
		return usagef("--server: %v", err)
	}
	// The registry the hub builds: it tells the node how each kind is
	// validated, plans the task kind's evaluators (reaching miners' models
	// through the node's own client) and scores results as the hub does.
	// Artifact submissions' models are served on loopback, reached through
	// launchedHTTP only (their base URL is the validator's own lease).
	modelHTTP := egress.NewSafeHTTPClient(policy, egress.Timeouts{})
	launchedHTTP := egress.NewSafeHTTPClient(modelhost.LaunchedPolicy(policy), egress.Timeouts{})
	reg, err := app.Kinds(kinds.Egress{HTTPClient: modelHTTP, Launched: launchedHTTP}, nil)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("validator", key.ID())
	models, err := modelhost.Open(mf.config(), logger)
	if err != nil {
		return err
	}
	defer models.Close()
	cfg := node.Config{Hub: hc, Competition: *comp, Kinds: reg, Interval: *interval, Temperature: *temperature, Epsilon: *epsilon,
		Concurrency: *concurrency, ModelHTTP: modelHTTP, LaunchedHTTP: launchedHTTP, Models: models, Logger: logger}
	if *collude >= 0 {
		cfg.ColludeWith = collude
	}
	if *dataset != "" {
		if cfg.Dataset, err = mcq.ParseFile(*dataset); err != nil {
			return err
		}
	}
	if *generatorURL != "" || *referenceURL != "" || *judgeURL != "" {
		if *referenceURL == "" || *judgeURL == "" {
			return usagef("roleplay needs your own --reference-url and --judge-url (and --generator-url for multi-turn competitions)")
		}
		// Each epoch's items come from this secret: random per process
		// unless set, so nobody can plan them in advance.
		secret := []byte(os.Getenv(envValidatorSecret))
		if len(secret) == 0 {
			secret = make([]byte, 32)
			_, _ = rand.Read(secret) // crypto/rand.Read never fails
		}
		cfg.Roleplay = &node.Roleplay{Secret: secret,
			Egress: kinds.Egress{Operator: app.ValidatorEndpoints(*generatorURL, *referenceURL, *judgeURL)},
			Models: map[kinds.Role]string{kinds.RoleGenerator: *generatorModel, kinds.RoleReference: *referenceModel, kinds.RoleJudge: *judgeModel}}
	}
	if *tasksFile != "" {
		if cfg.PatchTasks, err = readTasksFile("--tasks", *tasksFile); err != nil {
			return err
		}
	}
	if *rowsFile != "" {
		if cfg.Rows, err = readTasksFile("--rows", *rowsFile); err != nil {
			return err
		}
	}
	cfg.WorkDir = *workDir
	cfg.TrustHubResults = *trustHub
	cfg.Logger.Info("validator running", "hub", *hub, "competition", *comp, "own_mcq", *dataset != "", "own_roleplay", cfg.Roleplay != nil,
		"own_tasks", *tasksFile != "", "own_rows", *rowsFile != "", "serves_artifacts", models != nil, "trust_hub_results", *trustHub)
	return node.New(cfg).Run(ctx)
}

// maxTasksFile bounds a patch tasks file or task rows read by a validator,
// like the hub's dataset upload limit.
const maxTasksFile = 64 << 20

// readTasksFile reads the file of option flag (--tasks, --rows), of at most
// maxTasksFile bytes.
func readTasksFile(flag, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTasksFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	if len(data) > maxTasksFile {
		return nil, fmt.Errorf("%s %s: over the limit of %d bytes", flag, path, maxTasksFile)
	}
	return data, nil
}

func runEpoch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand(args, "epoch",
		verb{"show", "show a closed consensus epoch"},
		verb{"current", "show the consensus epoch open now"},
		verb{"close", "close an ended consensus epoch (operator keys)"})
	if err != nil {
		return err
	}
	fs := newFlags("epoch "+verb, map[string]string{
		"show":    "Show a closed consensus epoch: consensus, incentive, trust, dividends and emissions per UID.",
		"current": "Show the consensus epoch open now on the hub.",
		"close":   "Close an ended consensus epoch (signed by an admin key; the hub also closes them periodically).",
	}[verb], "crucible epoch "+verb+" --epoch 123 --json", stderr)
	cf := addClientFlags(fs)
	n := fs.Int64("epoch", -1, "epoch number (show: default the latest closed)")
	o := addOutputFlags(fs, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := cf.client(verb == "close")
	if err != nil {
		return err
	}
	switch verb {
	case "current":
		cur, err := c.CurrentEpoch(ctx)
		if err != nil {
			return err
		}
		return o.emit(stdout, cur, func() error {
			fmt.Fprintf(stdout, "epoch %d: %s to %s (%ds)\n", cur.Epoch, cur.Start.Format(time.RFC3339), cur.End.Format(time.RFC3339), cur.LengthSeconds)
			return nil
		})
	case "close":
		if *n < 0 {
			return usagef("--epoch N is required")
		}
		rec, err := c.CloseEpoch(ctx, *n)
		if err != nil {
			return err
		}
		return o.emit(stdout, rec, func() error { return printEpoch(stdout, rec) })
	}
	rec, err := c.ConsensusEpoch(ctx, *n)
	if err != nil {
		return err
	}
	return o.emit(stdout, rec, func() error { return printEpoch(stdout, rec) })
}

func printEpoch(w io.Writer, rec apiv1.ConsensusRecord) error {
	variant := rec.Variant
	if variant == "" {
		variant = string(incentive.Yuma1) // records from before variants ran Yuma 1
	}
	fmt.Fprintf(w, "epoch %d (%s to %s), closed %s; emission %d %s; %s, κ %.7g, α %g, β %g\n\n", rec.Epoch, rec.Start.Format(time.RFC3339),
		rec.End.Format(time.RFC3339), rec.ClosedAt.Format(time.RFC3339), rec.Emission, rec.Asset, variant, rec.Kappa, rec.BondsAlpha, rec.BondsPenalty)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UID\tMINER\tCONSENSUS\tINCENTIVE\tTRUST\tEMISSION")
	for _, m := range rec.Miners {
		fmt.Fprintf(tw, "%d\t%s\t%.6f\t%.6f\t%.6f\t%d\n", m.UID, m.Key, m.Consensus, m.Incentive, m.Trust, m.Emission)
	}
	fmt.Fprintln(tw, "\nVALIDATOR\tSTAKE\tTRUST\tDIVIDENDS\tEMISSION")
	for _, v := range rec.Validators {
		fmt.Fprintf(tw, "%s\t%d\t%.6f\t%.6f\t%d\n", v.Key, v.Stake, v.Trust, v.Dividends, v.Emission)
	}
	return tw.Flush()
}
