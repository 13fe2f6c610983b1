// Command crucible is the one binary of Crucible: server, worker, CLI client,
// local evaluator, baseline model server and demo. Subcommands only parse
// flags and call into internal/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand (or group of subcommands).
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"demo":         {"run everything in-process on SQLite and print a leaderboard", runDemo},
		"serve":        {"serve the API and run evaluation workers", runServe},
		"worker":       {"run evaluation workers only (share a PostgreSQL queue)", runWorker},
		"keys":         {"make signing keys (keys new --out KEYFILE); contributor keys (keys contributor new|list|revoke)", runKeys},
		"competition":  {"create, list and show competitions", runCompetition},
		"preference":   {"preference competitions: request copies, score or close the epoch (preference copies|score|close)", runPreference},
		"submit":       {"submit a model, patch or predictions file to a competition (submit model|patch|predictions ...)", runSubmit},
		"status":       {"show each submission's state and progress", runStatus},
		"leaderboard":  {"show a competition's leaderboard", runLeaderboard},
		"results":      {"show a submission's per-item results", runResults},
		"eval":         {"evaluate a model locally, exactly as the server would", runEval},
		"task":         {"lm-eval tasks: list the presets, render an item of a preset or task file, fetch a predictions competition's prompts (task list|render|prompts ...)", runTask},
		"model-server": {"serve deterministic baseline models over the OpenAI API", runModelServer},
		"pool":         {"fund a benchmark pool; join, status, leaderboard, settle", runPool},
		"ledger":       {"show ledger balances and history", runLedger},
		"allocate":     {"preview how an allocation rule splits an amount", runAllocate},
		"patch":        {"code-fix tasks: mine them from a git repository, list a competition's, check one out (patch mine|tasks|checkout ...)", runPatch},
		"router":       {"route OpenAI API requests to the least-loaded model server", runRouter},
		"stats":        {"agreement statistics on a ratings CSV (stats kappa|icc|spearman --file CSV)", runStats},
		"weights":      {"show a model competition's epoch weights (win rates, copies)", runWeights},
		"roleplay":     {"fresh-items roleplay epochs: commitments, contamination, verify a revealed seed (roleplay epochs|contamination|verify-epoch)", runRoleplay},
		"artifact":     {"model artifacts: digest a file tree, read its facts, fetch and verify into the model cache (artifact hash|facts|fetch)", runArtifact},
		"export":       {"export results as JSONL, or preferences as DPO/rankings/CSV (export results|preferences)", runExport},
		"winrate":      {"win rates and weights from a scores CSV, as crucible, Dippy or pretraining compute them", runWinRate},
		"consensus":    {"simulate one epoch of Yuma consensus on a weight matrix CSV", runConsensus},
		"register":     {"register your key as a miner (a UID)", runRegister},
		"validator":    {"run a validator; set stakes; list validators and UIDs", runValidator},
		"epoch":        {"show, current or close consensus epochs (epoch show --epoch N)", runEpoch},
		"version":      {"print the module version and the commit this binary was built from (also --version)", runVersion},
	}
}

const usageHead = `crucible referees AI competitions: it evaluates submissions reproducibly,
ranks them and resists gaming.

Usage: crucible <command> [flags]     (crucible <command> --help for its flags)

Commands:
`

const usageTail = `
Start here:
  crucible demo                         the whole flow in one process, on SQLite
  crucible serve                        ./crucible.db, http://127.0.0.1:8080
  crucible keys new --out me.key        a key to sign your requests
  crucible competition create --kind mcq --dataset internal/app/demodata/siqa-sample.jsonl --title "Social IQa" --key me.key

Configuration: flags win over CRUCIBLE_* environment variables (CRUCIBLE_DATABASE,
CRUCIBLE_SERVER, CRUCIBLE_KEY, ...), which win over a YAML file given with --config
or CRUCIBLE_CONFIG (keys are flag names: "database: postgres://...").
`

func usage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, cmds[n].summary)
	}
	fmt.Fprint(w, usageTail)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = []string{"version"}
	}
	cmds := commands()
	cmd, ok := cmds[args[0]]
	if !ok {
		names := make([]string, 0, len(cmds))
		for n := range cmds {
			names = append(names, n)
		}
		fmt.Fprintf(stderr, "crucible: unknown command %q%s; crucible --help lists them\n", args[0], didYouMean(args[0], names))
		return 2
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	var group *groupHelp
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &group) && group.asked:
		group.print(stdout)
		return 0
	case errors.As(err, &group):
		group.print(stderr)
		return 2
	case errors.As(err, new(*usageError)):
		fmt.Fprintf(stderr, "crucible %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "crucible %s: %v\n", args[0], err)
		return 1
	}
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "Print the module version and the VCS commit this binary was built from.", "crucible --version", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, versionString())
	return err
}
