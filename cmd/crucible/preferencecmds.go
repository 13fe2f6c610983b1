package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/client"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/preference"
)

// Human-preference commands: `competition create --kind preference`, `keys
// contributor new|list|revoke`, `preference copies|score` and `export
// preferences`; runCompetition, runKeys and runExport dispatch to them.

// kindFlag returns the value of --kind in args, or "".
func kindFlag(args []string) string {
	for i, a := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "kind" {
			continue
		}
		if hasValue {
			return value
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func runPreferenceCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("competition create --kind preference", "Create a human-preference competition: contributors rank or score 3–6 responses per task\n"+
		"on the /label pages; miners are paid for agreeing with each other and with the ground truth.\n"+
		"--dataset is JSONL of organic tasks ({\"id\", \"instruction\", \"responses\": [...], \"criteria\"?, \"deadline\"?})\n"+
		"or of seed instructions ({\"id\", \"instruction\", \"requirements\"?, \"reference\"?, \"kind\"?}); without it the\n"+
		"shipped seeds are degraded into ranked responses (answer mode needs no model).",
		`crucible competition create --kind preference --dataset tasks.jsonl --title "Helpful answers" --ttl 48h --key me.key`, stderr)
	cf := addClientFlags(fs)
	fs.String("kind", "preference", "task kind (preference here)")
	dataset := fs.String("dataset", "", "organic tasks or seed instructions (JSONL); empty: the shipped seeds")
	title := fs.String("title", "", "title shown on leaderboards")
	criteria := fs.String("criteria", "rank", "rank (order every response) or score (1–10 each) for generated tasks")
	ttl := fs.String("ttl", "24h", "how long tasks stay open after creation, unless a task sets its deadline")
	mode := fs.String("mode", "", "degradation of seeds: answer (default without a generator), instruction or both")
	genURL := fs.String("generator-url", "", "OpenAI-compatible generator for seeds; empty with --generator-model: the hub's own generator (the only one that gets the hub's key)")
	genModel := fs.String("generator-model", "", "the generator model's name")
	threshold := fs.Float64("kappa-threshold", preference.DefaultConfig().KappaThreshold, "miners whose pooled epoch kappa is below this get no trust")
	minTasks := fs.Int("min-tasks", preference.DefaultConfig().MinTasks, "tasks a miner must rate in an epoch to be trusted")
	reward := fs.Int64("reward", 0, "base units of --asset paid to the miners when the epoch closes (by their preference rewards), escrowed from your funder account now")
	asset := fs.String("asset", "", "the reward's asset")
	o := addOutputFlags(fs, "print the competition as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *title == "" {
		return usagef("--title T is required")
	}
	scoring := preference.DefaultConfig()
	scoring.KappaThreshold, scoring.MinTasks = *threshold, *minTasks
	req := apiv1.CreatePreferenceCompetitionRequest{Title: *title, Preference: kinds.PreferenceSpec{
		Criteria: preference.Criteria(*criteria), TTL: *ttl, Mode: preference.Mode(*mode),
		GeneratorURL: *genURL, GeneratorModel: *genModel, Scoring: &scoring}, Reward: *reward, Asset: *asset}
	if *dataset != "" {
		data, err := os.ReadFile(*dataset)
		if err != nil {
			return err
		}
		req.Dataset, req.DatasetName = string(data), strings.TrimSuffix(filepath.Base(*dataset), filepath.Ext(*dataset))
	}
	c, err := cf.client(true)
	if err != nil {
		return err
	}
	comp, err := c.CreatePreferenceCompetition(ctx, req)
	if err != nil {
		return err
	}
	return o.emit(stdout, comp, func() error {
		fmt.Fprintf(stdout, "created competition %s (preference, %d tasks, dataset %s)\n", comp.ID, comp.Items, comp.DatasetName)
		fmt.Fprintf(stdout, "miners: crucible preference copies --competition %s --key MINER.key, then hand out contributor keys\n", comp.ID)
		return nil
	})
}

// runContributorKeys is `crucible keys contributor new|list|revoke`.
func runContributorKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand(args, "keys contributor",
		verb{"new", "make a contributor key for a labeller"},
		verb{"list", "list your miner's contributor keys"},
		verb{"revoke", "revoke a contributor key"})
	if err != nil {
		return err
	}
	summary := map[string]string{
		"new":    "Make a key for a person who labels for your miner on the /label pages. The key is printed once\nand stored only as a hash; hand it over privately.",
		"list":   "List your miner's contributor keys (never the keys themselves).",
		"revoke": "Revoke a contributor key: its holder is logged out and can no longer submit.",
	}[verb]
	example := map[string]string{
		"new":    "crucible keys contributor new --key miner.key --label alice",
		"list":   "crucible keys contributor list --key miner.key",
		"revoke": "crucible keys contributor revoke --key miner.key --id ck-abc123",
	}[verb]
	fs := newFlags("keys contributor "+verb, summary, example, stderr)
	cf := addClientFlags(fs)
	// --miner-key was this flag's name before --key meant the signing key everywhere.
	addAlias(fs, "miner-key", "key", stderr)
	label := fs.String("label", "", "new: a name for the key (who holds it)")
	id := fs.String("id", "", "revoke: the contributor key id (ck-...)")
	o := addOutputFlags(fs, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *cf.key == "" {
		return usagef("--key KEYFILE (the miner's) is required: contributor keys belong to a miner")
	}
	c, err := cf.client(true)
	if err != nil {
		return err
	}
	switch verb {
	case "new":
		nk, err := c.NewContributorKey(ctx, *label)
		if err != nil {
			return err
		}
		return o.emit(stdout, nk, func() error {
			fmt.Fprintf(stdout, "contributor key %s for miner %s\n\n  %s\n\nThis key is shown once. The contributor logs in at %s/label.\n",
				nk.ID, nk.Miner, nk.Secret, strings.TrimRight(*cf.server, "/"))
			return nil
		})
	case "list":
		keys, err := c.ContributorKeys(ctx)
		if err != nil {
			return err
		}
		return o.emit(stdout, keys, func() error {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tLABEL\tCREATED\tREVOKED")
			for _, k := range keys {
				revoked := "-"
				if k.RevokedAt != nil {
					revoked = k.RevokedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Label, k.CreatedAt.Format(time.RFC3339), revoked)
			}
			return tw.Flush()
		})
	default:
		if *id == "" {
			return usagef("--id ck-... is required (see crucible keys contributor list)")
		}
		rk, err := c.RevokeContributorKey(ctx, *id)
		if err != nil {
			return err
		}
		return o.emit(stdout, rk, func() error {
			fmt.Fprintf(stdout, "revoked contributor key %s at %s\n", rk.ID, rk.RevokedAt.Format(time.RFC3339))
			return nil
		})
	}
}

// runPreference is `crucible preference copies|score|close`.
func runPreference(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand(args, "preference",
		verb{"copies", "request your miner's copies of the open tasks"},
		verb{"score", "score the epoch's closed tasks"},
		verb{"close", "close the epoch and pay the reward"})
	if err != nil {
		return err
	}
	if verb == "close" {
		return runShow(ctx, args, stdout, stderr, showSpec{name: "preference close", idFlag: "competition", needKey: true,
			summary: "Close a preference competition's epoch once every task's deadline has passed: score it,\n" +
				"record it once and pay the reward to the miners (the hub also does this within a minute of\n" +
				"the last deadline). Closing again prints the stored record and pays nothing more.",
			example: "crucible preference close --competition c-abc123 --key creator.key"},
			func(c *client.Client, id string) (apiv1.PreferenceClose, error) { return c.ClosePreference(ctx, id) },
			func(w io.Writer, rec apiv1.PreferenceClose) error { printPreferenceClose(w, rec); return nil })
	}
	if verb == "copies" {
		return runShow(ctx, args, stdout, stderr, showSpec{name: "preference copies", idFlag: "competition", needKey: true,
			summary: "Ask for your miner's obfuscated copies of a preference competition's open tasks, so that\n" +
				"your contributors see them on /label. Copies are kept: asking again returns the same ones.",
			example:  "crucible preference copies --competition c-abc123 --key miner.key",
			jsonHelp: "print the tasks as JSON (what your contributors will see)"},
			func(c *client.Client, id string) (apiv1.PreferenceCopies, error) { return c.PreferenceCopies(ctx, id) },
			func(w io.Writer, cp apiv1.PreferenceCopies) error {
				fmt.Fprintf(w, "%d open tasks of %s for miner %s\n", len(cp.Tasks), cp.CompetitionID, cp.Miner)
				for _, v := range cp.Tasks {
					fmt.Fprintf(w, "  %s  %s, %d responses, until %s\n", v.TaskID, v.Criteria, len(v.Responses), v.Deadline.Format(time.RFC3339))
				}
				return nil
			})
	}
	var preview *bool
	return runShow(ctx, args, stdout, stderr, showSpec{name: "preference score", idFlag: "competition",
		summary: "Score the epoch of a preference competition: every task whose deadline has passed, with\n" +
			"the stored scoring configuration. Miners whose pooled kappa is under the threshold get no trust.",
		example: "crucible preference score --competition c-abc123",
		flags: func(fs *flag.FlagSet) {
			preview = fs.Bool("preview", false, "score open tasks too (a preview; rewards may change): the creator's or an operator's --key only, since open tasks' ground truth is sealed")
		}},
		func(c *client.Client, id string) (apiv1.PreferenceEpoch, error) {
			return c.PreferenceEpoch(ctx, id, *preview)
		},
		func(w io.Writer, rep apiv1.PreferenceEpoch) error { printPreferenceEpoch(w, rep); return nil })
}

func printPreferenceClose(w io.Writer, rec apiv1.PreferenceClose) {
	fmt.Fprintf(w, "epoch of %s closed at %s: %d %s paid out, %d refunded to the funder\n\n", rec.CompetitionID,
		rec.ClosedAt.Format(time.RFC3339), rec.Amount-rec.Refunded, rec.Asset, rec.Refunded)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MINER\tTRUSTED\tKAPPA\tSCORE\tREWARD\tUNITS")
	for _, p := range rec.Payouts {
		fmt.Fprintf(tw, "%s\t%v\t%.3f\t%.3f\t%.4f\t%d\n", p.Miner, p.Trusted, p.Kappa, p.Score, p.Reward, p.Units)
	}
	_ = tw.Flush()
}

func printPreferenceEpoch(w io.Writer, rep apiv1.PreferenceEpoch) {
	what := "closed tasks"
	if rep.Preview {
		what = "all tasks (preview)"
	}
	fmt.Fprintf(w, "epoch of %s at %s: %s — %d closed, %d open\n\n", rep.CompetitionID, rep.At.Format(time.RFC3339), what, rep.Closed, rep.Open)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MINER\tTASKS\tLATE\tKAPPA\tTRUSTED\tSCORE\tREWARD")
	for _, m := range rep.Epoch.Miners {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.3f\t%v\t%.3f\t%.4f\n", m.Miner, m.Tasks, m.Late, m.Kappa, m.Trusted, m.Score, m.Reward)
	}
	_ = tw.Flush()
	if len(rep.Epoch.Miners) == 0 {
		fmt.Fprintln(w, "(no ratings yet)")
	}
	fmt.Fprintf(w, "\n%s", rep.Rules)
}

// runExportPreferences is `crucible export preferences`.
func runExportPreferences(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("export preferences", "Export a preference competition's consensus over its closed tasks: DPO pairs\n"+
		"{prompt, chosen, rejected} (JSONL, TRL's DPOTrainer format), full rankings with agreement figures (JSONL), or CSV.",
		"crucible export preferences --competition c-abc123 --format dpo --pairs adjacent --out pairs.jsonl", stderr)
	cf := addClientFlags(fs)
	id := fs.String("competition", "", "competition id")
	format := fs.String("format", "dpo", "dpo, rankings or csv")
	pairs := fs.String("pairs", "all", "dpo: all (every ordered pair) or adjacent (neighbours in the consensus)")
	preview := fs.Bool("preview", false, "include open tasks (a preview): the creator's or an operator's --key only")
	out := fs.String("out", "", "output file (default: standard output)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *id == "" {
		return usagef("--competition ID is required")
	}
	switch *format {
	case preference.FormatDPO, preference.FormatRankings, preference.FormatCSV:
	default:
		return usagef("--format %q: want dpo, rankings or csv", *format)
	}
	if *pairs != string(preference.AllPairs) && *pairs != string(preference.AdjacentPairs) {
		return usagef("--pairs %q: want all or adjacent", *pairs)
	}
	c, err := cf.client(false)
	if err != nil {
		return err
	}
	return writeOutput(*out, stdout, func(w io.Writer) error {
		lines := &lineCounter{w: w}
		if err := c.ExportPreferences(ctx, lines, *id, *format, *pairs, *preview); err != nil {
			return err
		}
		records := lines.n
		if *format == preference.FormatCSV {
			records-- // the header row
		}
		if records <= 0 {
			// An empty file and exit 0 read as "exported"; say why there is nothing.
			return fmt.Errorf("nothing to export: %s has no closed task with a consensus yet (tasks close at their deadline; "+
				"crucible preference close closes the epoch; --preview with the creator's --key includes open tasks)", *id)
		}
		return nil
	})
}

// lineCounter counts the lines written through it.
type lineCounter struct {
	w io.Writer
	n int
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.n += bytes.Count(p, []byte{'\n'})
	return l.w.Write(p)
}
