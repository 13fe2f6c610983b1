package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/eval/taskkind"
)

// parseTime reads an RFC 3339 time, "now", or "now+DURATION" / "+DURATION".
func parseTime(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "+"), strings.HasPrefix(s, "now+"):
		d, err := time.ParseDuration(strings.TrimPrefix(strings.TrimPrefix(s, "now"), "+"))
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: %w", s, err)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not RFC 3339 (2026-12-01T00:00:00Z), now or +DURATION", s)
	}
	return t, nil
}

// parseBudget reads "1000", "1000/h" or "1000/hour".
func parseBudget(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSuffix(s, "/hour"), "/h"))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("budget %q: want a positive count per hour like 1000/h", s)
	}
	return n, nil
}

func runPool(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand(args, "pool",
		verb{"create", "fund a benchmark pool"},
		verb{"join", "enter a model into an open pool"},
		verb{"status", "show a pool's budget, entrants and progress"},
		verb{"leaderboard", "show a pool's leaderboard"},
		verb{"settle", "settle a pool: pay its escrow out"},
		verb{"list", "list pools"})
	if err != nil {
		return err
	}
	switch verb {
	case "create":
		return poolCreate(ctx, args, stdout, stderr)
	case "join":
		fs := newFlags("pool join", "Enter a model into an open pool: an OpenAI-compatible server (--base-url, --model), or, in a\n"+
			"pool created with --submissions artifacts, model files the hub's workers fetch, verify and serve\n"+
			"themselves (--path, --repo with --revision, or --url, as for crucible submit artifact; the tree\n"+
			"digest is committed with your key and the time). The same tree joined later, by any key, is a\n"+
			"copy: ranked, paid nothing. Its items are evaluated within the pool's hourly budget, round-robin\n"+
			"with the other entrants.",
			"crucible pool join --pool c-abc --base-url http://127.0.0.1:8000/v1 --model my-model --key me.key\n"+
				"  crucible pool join --pool c-abc --path /models/mine --key me.key", stderr)
		cf := addClientFlags(fs)
		id := fs.String("pool", "", "pool id")
		baseURL := fs.String("base-url", "", "the model server's OpenAI base URL")
		model := fs.String("model", "", "model name")
		name := fs.String("name", "", "display name (default: the model name)")
		keyEnv := fs.String("api-key-env", "", "environment variable holding the model server's API key")
		source := addArtifactFlags(fs)
		o := addOutputFlags(fs, "print JSON")
		if err := parse(fs, args); err != nil {
			return err
		}
		art, err := source()
		if err != nil {
			return err
		}
		switch {
		case *id == "":
			return usagef("--pool is required")
		case art != nil && (*baseURL != "" || *model != "" || *keyEnv != ""):
			return usagef("an artifact (--path, --repo or --url) is entered alone: no --base-url, --model or --api-key-env")
		case art == nil && (*baseURL == "" || *model == ""):
			return usagef("--base-url and --model (an endpoint), or --path, --repo with --revision, or --url (an artifact) are required")
		}
		req := apiv1.JoinPoolRequest{Name: *name, BaseURL: *baseURL, Model: *model, Artifact: art}
		if *keyEnv != "" {
			req.APIKey = os.Getenv(*keyEnv)
		}
		c, err := cf.client(true)
		if err != nil {
			return err
		}
		sub, err := c.JoinPool(ctx, *id, req)
		if err != nil {
			return err
		}
		return o.emit(stdout, sub, func() error {
			fmt.Fprintf(stdout, "joined %s as %s (committed %s)\n", sub.Name, sub.ID, sub.CommittedAt.Format(time.RFC3339))
			return nil
		})
	case "list":
		return runList(ctx, args, stdout, stderr, "pool list", "List funded pools.",
			(*client.Client).Pools, "POOL\tSTATE\tFUND\tRULE\tENDS\tTITLE", func(p competition.Pool) string {
				return fmt.Sprintf("%s\t%s\t%d %s\t%s\t%s\t%s", p.CompetitionID, p.State, p.Amount, p.Asset, p.Rule, p.End.Format(time.RFC3339), p.Title)
			})
	case "status":
		return runShow(ctx, args, stdout, stderr, showSpec{name: "pool status", idFlag: "pool",
			summary: "Show a pool's terms, escrow, budget use and each entrant's progress.", example: "crucible pool status --pool c-abc"},
			func(c *client.Client, id string) (apiv1.PoolStatus, error) { return c.Pool(ctx, id) },
			func(w io.Writer, st apiv1.PoolStatus) error {
				p := st.Pool
				fmt.Fprintf(w, "pool %s  %q  %s\nfund %d %s  escrow %d  rule %s\nschedule %s → %s  refresh %s\nbudget %d/h: %d used of %d allowed so far  private fraction %.2f\n\n",
					p.CompetitionID, p.Title, p.State, p.Amount, p.Asset, st.Escrow, p.Rule, p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339),
					p.Refresh, p.BudgetPerHour, st.BudgetUsed, st.BudgetSoFar, p.PrivateFraction)
				if p.Settlement != nil && p.Settlement.ForcedBy != "" {
					fmt.Fprintf(w, "settlement forced before the final evaluation tick by %s\n\n", p.Settlement.ForcedBy)
				}
				printStatus(w, st.Entrants, isTerminal(w), nil)
				return nil
			})
	case "leaderboard":
		var at *string
		return runShow(ctx, args, stdout, stderr, showSpec{name: "pool leaderboard", idFlag: "pool",
			summary: "Show the public leaderboard snapshot in force now, or at a past time.",
			example: "crucible pool leaderboard --pool c-abc --at 2026-12-02T00:00:00Z",
			flags:   func(fs *flag.FlagSet) { at = fs.String("at", "", "show the snapshot in force at this RFC 3339 time") }},
			func(c *client.Client, id string) (competition.Snapshot, error) {
				return c.PoolLeaderboard(ctx, id, *at)
			},
			func(w io.Writer, snap competition.Snapshot) error {
				fmt.Fprintf(w, "public leaderboard, snapshot of %s\n", snap.TakenAt.Format(time.RFC3339))
				printLeaderboard(w, snap.Rows)
				return nil
			})
	default:
		var force *bool
		return runShow(ctx, args, stdout, stderr, showSpec{name: "pool settle", idFlag: "pool", needKey: true,
			summary: "Settle an ended pool: rank on the private items, apply the allocation rule, pay, close.\n" +
				"It happens exactly once; asking again prints the first result. The server's evaluation tick after\n" +
				"the end spends the rest of the budget and settles the pool itself; before that tick only the\n" +
				"funder or an operator may settle, with --force (recorded in the settlement).",
			example: "crucible pool settle --pool c-abc --key me.key",
			flags: func(fs *flag.FlagSet) {
				force = fs.Bool("force", false, "settle before the final evaluation tick (the pool's funder or an operator key only)")
			}},
			func(c *client.Client, id string) (competition.Settlement, error) {
				return c.SettlePool(ctx, id, *force)
			},
			func(w io.Writer, st competition.Settlement) error {
				fmt.Fprintf(w, "settled %s by %s: %d units\n", st.SettledAt.Format(time.RFC3339), st.Rule, st.Amount)
				if st.ForcedBy != "" {
					fmt.Fprintf(w, "forced before the final evaluation tick by %s\n", st.ForcedBy)
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tPRIVATE SCORE\tITEMS\tUNITS\tACCOUNT")
				for _, po := range st.Payouts {
					fmt.Fprintf(tw, "%s\t%.4f\t%d\t%d\t%s\n", po.Name, po.Score, po.Items, po.Units, po.Account)
				}
				tw.Flush()
				fmt.Fprintf(w, "refunded to the funder: %d\n", st.Refunded)
				return nil
			})
	}
}

func poolCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pool create", "Fund a benchmark pool: the fund is deposited and escrowed, models join, evaluation runs\n"+
		"within the hourly budget, a public leaderboard is published every refresh, and when the end passes\n"+
		"the pool settles once on the private items.\n\n"+
		"Rules: arithmetic-decrease[:top=N], proportional, winner-take-all, top-k:50,30,20, table:P1,...[+flat:X], softmax:T,\n"+
		"with +progress and +ties=split|earliest (preview with crucible allocate).\n\n"+
		"With --task the pool runs an lm-eval task file or preset (crucible task list) instead of a multiple-choice\n"+
		"dataset; --data gives its rows (JSONL, CSV or Parquet, sent as JSONL), required with a task file:\n"+
		"  crucible pool create --task examples/task/siqa.yaml --data examples/task/siqa-dev.csv --title \"SIQA sample\" --fund 1000 --asset USDC --allocation winner-take-all --end +24h --key me.key\n\n"+
		"With --submissions artifacts its entrants join with model files, which the hub's workers (serve --model-cache,\n"+
		"--model-launcher) fetch, verify against the committed tree digest and serve on loopback themselves.",
		"crucible pool create --dataset internal/app/demodata/siqa-sample.jsonl --title \"Social IQa\" --fund 1000000 --asset USDC --allocation top-k:50,30,20 --start now --end +168h --key me.key", stderr)
	cf := addClientFlags(fs)
	dataset := fs.String("dataset", "", "multiple-choice dataset file (JSONL, as for competitions)")
	taskRef := fs.String("task", "", "an lm-eval task file (YAML) or a preset name (crucible task list), instead of --dataset")
	taskData := fs.String("data", "", "with --task: rows of the evaluation split (JSONL, CSV or Parquet; sent as JSONL), replacing a preset's;\n"+
		"required with a task file, whose data_files the hub cannot read")
	numFewshot := fs.Int("num-fewshot", -1, "with --task: few-shot examples per prompt, drawn from the rows (default: the task's num_fewshot)")
	submissions := fs.String("submissions", "", "with --task: what entrants join with: models (endpoints, the default) or artifacts\n"+
		"(model files the workers fetch, verify and serve: crucible pool join --path|--repo|--url)")
	maxParams := fs.Int64("max-parameters", 0, "with --submissions artifacts: refuse artifacts with more parameters (0: no cap)")
	maxBytes := fs.Int64("max-artifact-bytes", 0, "with --submissions artifacts: refuse artifacts whose files total more bytes (0: no cap)")
	title := fs.String("title", "", "title")
	fund := fs.Int64("fund", 0, "amount in integer base units")
	asset := fs.String("asset", "", "asset name, e.g. USDC")
	rule := fs.String("allocation", "", "allocation rule")
	start := fs.String("start", "now", "start: RFC 3339, now or +DURATION")
	end := fs.String("end", "", "end: RFC 3339 or +DURATION")
	budget := fs.String("budget", "1000/h", "evaluated items per hour across the pool")
	refresh := fs.String("refresh", "24h", "how often the public leaderboard is published")
	private := fs.Float64("private-fraction", 0.5, "fraction of items kept private for the final ranking")
	o := addOutputFlags(fs, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case (*dataset == "") == (*taskRef == ""):
		return usagef("one of --dataset FILE (multiple choice) or --task FILE|NAME is required")
	case *taskData != "" && *taskRef == "", *numFewshot >= 0 && *taskRef == "", *submissions != "" && *taskRef == "",
		(*maxParams != 0 || *maxBytes != 0) && *taskRef == "":
		return usagef("--data, --num-fewshot, --submissions and the artifact caps go with --task (a multiple-choice pool takes --dataset)")
	case *title == "" || *fund == 0 || *asset == "" || *rule == "" || *end == "":
		return usagef("--title, --fund, --asset, --allocation and --end are required")
	}
	now := time.Now()
	s, err := parseTime(*start, now)
	if err != nil {
		return usagef("--start %v", err)
	}
	e, err := parseTime(*end, now)
	if err != nil {
		return usagef("--end %v", err)
	}
	b, err := parseBudget(*budget)
	if err != nil {
		return usagef("--budget: %v", err)
	}
	req := apiv1.CreatePoolRequest{Title: *title, Fund: *fund, Asset: *asset, Allocation: *rule,
		Start: s, End: e, BudgetPerHour: b, Refresh: *refresh, PrivateFraction: *private}
	if err := poolData(&req, *dataset, *taskRef, *taskData, *numFewshot); err != nil {
		return err
	}
	if req.Task != nil {
		// The task kind checks them as for a competition (caps only with artifacts).
		req.Task.Submissions, req.Task.MaxParameters, req.Task.MaxArtifactBytes = *submissions, *maxParams, *maxBytes
	}
	c, err := cf.client(true)
	if err != nil {
		return err
	}
	p, err := c.CreatePool(ctx, req)
	if err != nil {
		return err
	}
	return o.emit(stdout, p, func() error {
		fmt.Fprintf(stdout, "created pool %s: %d %s escrowed, %s, %s → %s\n", p.CompetitionID, p.Amount, p.Asset, p.Rule,
			p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339))
		return nil
	})
}

// poolData fills a pool request's items: a multiple-choice dataset file
// sent as it is, or a task with its rows read in their format and sent as
// JSONL (a bad row stops the command before anything is sent).
func poolData(req *apiv1.CreatePoolRequest, dataset, taskRef, taskData string, numFewshot int) error {
	if taskRef == "" {
		data, err := os.ReadFile(dataset)
		if err != nil {
			return err
		}
		req.Dataset, req.DatasetName = string(data), strings.TrimSuffix(filepath.Base(dataset), filepath.Ext(dataset))
		return nil
	}
	src, rows, err := taskkind.Source(taskRef, taskData, numFewshot)
	if err != nil {
		return err
	}
	req.Task, req.Dataset = &src, string(rows)
	if taskData != "" {
		req.DatasetName = strings.TrimSuffix(filepath.Base(taskData), filepath.Ext(taskData))
	}
	return nil
}

func runLedger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand(args, "ledger",
		verb{"balance", "show ledger balances"},
		verb{"history", "show the transfers touching an account"},
		verb{"deposit", "deposit into a funder's account (operator keys)"})
	if err != nil {
		return err
	}
	if verb == "deposit" {
		return ledgerDeposit(ctx, args, stdout, stderr)
	}
	fs := newFlags("ledger "+verb, "Show ledger balances (derived from entries) or the transfers touching an account.\n"+
		"Accounts: external, funder:<key>, escrow:<pool>, participant:<key>, fee.",
		"crucible ledger "+verb+" --account escrow:c-abc", stderr)
	cf := addClientFlags(fs)
	account := fs.String("account", "", "one account (default: all)")
	o := addOutputFlags(fs, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := cf.client(false)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if verb == "balance" {
		bals, err := c.Balances(ctx, *account)
		if err != nil {
			return err
		}
		return o.emit(stdout, bals, func() error {
			fmt.Fprintln(tw, "ACCOUNT\tASSET\tBALANCE")
			for _, b := range bals {
				fmt.Fprintf(tw, "%s\t%s\t%d\n", b.Account, b.Asset, b.Amount)
			}
			return tw.Flush()
		})
	}
	hist, err := c.History(ctx, *account)
	if err != nil {
		return err
	}
	return o.emit(stdout, hist, func() error {
		fmt.Fprintln(tw, "TIME\tKIND\tASSET\tENTRIES\tKEY")
		for _, p := range hist {
			var legs []string
			for _, e := range p.Transfer.Legs {
				legs = append(legs, fmt.Sprintf("%s %+d", e.Account, e.Amount))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.At.Format(time.RFC3339), p.Transfer.Kind, p.Transfer.Asset, strings.Join(legs, ", "), p.Transfer.Key)
		}
		return tw.Flush()
	})
}

func ledgerDeposit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ledger deposit", "Credit a funder's account with money received outside Crucible, so the funder can fund pools.\n"+
		"Signed by an operator key (one the server was started with as --admin-key). Retrying with the same\n"+
		"--idempotency-key moves nothing; the money in the ledger is capped at 2^62 base units per asset.",
		"crucible ledger deposit --to ed25519:... --amount 1000000 --asset USDC --idempotency-key wire-2026-12-06 --key operator.key", stderr)
	cf := addClientFlags(fs)
	to := fs.String("to", "", "the funder: a `KEYID` (as crucible keys new prints it), a key file or the account funder:<key id>")
	amount := fs.Int64("amount", 0, "integer base units")
	asset := fs.String("asset", "", "asset name, e.g. USDC")
	idem := fs.String("idempotency-key", "", "names this deposit, so a retry is not paid twice (default: a fresh random key)")
	o := addOutputFlags(fs, "print JSON (the posted transfer; replayed is true when nothing moved)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *to == "" || *amount == 0 || *asset == "" {
		return usagef("--to, --amount and --asset are required")
	}
	if !strings.HasPrefix(*to, "funder:") {
		id, err := keyID("to", *to)
		if err != nil {
			return err
		}
		*to = id
	}
	if *idem == "" {
		var b [12]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		*idem = hex.EncodeToString(b[:])
	}
	c, err := cf.client(true)
	if err != nil {
		return err
	}
	posted, err := c.Deposit(ctx, apiv1.DepositRequest{To: *to, Amount: *amount, Asset: *asset, IdempotencyKey: *idem})
	if err != nil {
		return err
	}
	return o.emit(stdout, posted, func() error {
		verb := "deposited"
		if posted.Replayed {
			verb = "already deposited (nothing moved)"
		}
		for _, e := range posted.Transfer.Legs {
			if e.Amount > 0 {
				fmt.Fprintf(stdout, "%s %d %s to %s (idempotency key %s)\n", verb, e.Amount, posted.Transfer.Asset, e.Account, *idem)
			}
		}
		return nil
	})
}

func runAllocate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("allocate", "Preview how a rule splits an amount, with the same code as settlement. Scores ≤ 0 get nothing;\n"+
		"ties share their ranks' total (+ties=earliest: commit order; a preview has no commit times, so names order\n"+
		"them); rounding is largest-remainder and payouts sum exactly (what a rule leaves unassigned is refunded).\n"+
		"Rules: arithmetic-decrease[:top=N] (the AO POC: top=10), proportional, winner-take-all, top-k:P1,P2,...,\n"+
		"table:P1,P2,...[+flat:X] (percent by rank, then X percent per further rank while it fits), softmax:T;\n"+
		"modifiers +progress (score × share of items evaluated, see --progress) and +ties=split|earliest.",
		"crucible allocate --rule arithmetic-decrease:top=10+progress --amount 1000 --scores alice=0.9,bob=0.8 --progress alice=0.5", stderr)
	rule := fs.String("rule", "", "an allocation rule, e.g. table:35,20,10,5,5,5,5,5,5,5 or arithmetic-decrease:top=10+ties=earliest")
	amount := fs.Int64("amount", 0, "integer base units")
	scores := fs.String("scores", "", "name=score,...")
	progress := fs.String("progress", "", "name=fraction,... of items evaluated, for +progress (an entrant not named: 1)")
	o := addOutputFlags(fs, "print an object name → units")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *rule == "" || *amount == 0 || *scores == "" {
		return usagef("--rule, --amount and --scores are required")
	}
	req := apiv1.AllocateRequest{Rule: *rule, Amount: *amount, Scores: map[string]float64{}}
	for _, kv := range strings.Split(*scores, ",") {
		name, v, ok := strings.Cut(kv, "=")
		score, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || name == "" {
			return usagef("--scores: %q is not name=score", kv)
		}
		if _, dup := req.Scores[name]; dup {
			return usagef("--scores: %s appears twice", name)
		}
		req.Scores[name] = score
	}
	if *progress != "" {
		req.Progress = map[string]float64{}
		for _, kv := range strings.Split(*progress, ",") {
			name, v, ok := strings.Cut(kv, "=")
			frac, err := strconv.ParseFloat(v, 64)
			if !ok || err != nil || name == "" {
				return usagef("--progress: %q is not name=fraction", kv)
			}
			req.Progress[name] = frac
		}
	}
	payouts, err := req.Allocate()
	if err != nil {
		return err
	}
	return o.emit(stdout, payouts, func() error {
		names := make([]string, 0, len(payouts))
		var total int64
		for n, u := range payouts {
			names = append(names, n)
			total += u
		}
		sort.Slice(names, func(i, j int) bool {
			return payouts[names[i]] > payouts[names[j]] || payouts[names[i]] == payouts[names[j]] && names[i] < names[j]
		})
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSCORE\tUNITS")
		for _, n := range names {
			fmt.Fprintf(tw, "%s\t%g\t%d\n", n, req.Scores[n], payouts[n])
		}
		tw.Flush()
		fmt.Fprintf(stdout, "paid %d, unassigned (refunded) %d\n", total, *amount-total)
		return nil
	})
}
