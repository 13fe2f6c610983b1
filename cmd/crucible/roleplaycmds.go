package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/client"
	"crucible/internal/eval/roleplay"
)

// roleplayFlags are the planning and model flags of a roleplay evaluation,
// shared by `competition create --kind roleplay` and `eval --kind roleplay`.
type roleplayFlags struct {
	seed                                           *int64
	items, turns, maxTokens                        *int
	generatorURL, generatorModel, referenceURL     *string
	referenceModel, judgeURL, judgeModel, personas *string
}

func addRoleplayFlags(fs *flag.FlagSet) roleplayFlags {
	return roleplayFlags{
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
		personas:       fs.String("personas", "", "roleplay: persona JSONL (default: the shipped set)"),
	}
}

// config builds the competition configuration; empty endpoint URLs default to fallback.
func (f roleplayFlags) config(fallback string) roleplay.CompetitionConfig {
	or := func(s string) string {
		if s == "" {
			return fallback
		}
		return s
	}
	return roleplay.CompetitionConfig{Seed: *f.seed, Items: *f.items, Turns: *f.turns, MaxTokens: *f.maxTokens,
		Generator: roleplay.EndpointSpec{BaseURL: or(*f.generatorURL), Model: *f.generatorModel},
		Reference: roleplay.EndpointSpec{BaseURL: or(*f.referenceURL), Model: *f.referenceModel},
		Judge:     roleplay.EndpointSpec{BaseURL: or(*f.judgeURL), Model: *f.judgeModel}}
}

func runWeights(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var n *int64
	return runShow(ctx, args, stdout, stderr, showSpec{name: "weights", idFlag: "competition",
		summary: "Show the weight vector a model competition recorded for an epoch: pairwise win rates on the same\n" +
			"items, where a later submission must beat an earlier one by more than ε to win an item; copies (same\n" +
			"digest, or the same answer on every item as an earlier submission) earn 0; weights are\n" +
			"softmax(win_rate / T). Epochs are 72 minutes (360 blocks of 12 s) unless the server says otherwise.",
		example: "crucible weights --competition c-abc123 --epoch 412345 --json",
		flags:   func(fs *flag.FlagSet) { n = fs.Int64("epoch", -1, "epoch number (default: the latest closed)") }},
		func(c *client.Client, id string) (apiv1.WeightsRecord, error) { return c.Weights(ctx, id, *n) },
		func(w io.Writer, rec apiv1.WeightsRecord) error { printEpochRecord(w, rec); return nil })
}

func printEpochRecord(w io.Writer, rec apiv1.WeightsRecord) {
	fmt.Fprintf(w, "epoch %d (%s → %s), ε %.3g, T %.3g\n", rec.Epoch, rec.Start.Format(time.RFC3339), rec.End.Format(time.RFC3339), rec.Epsilon, rec.Temperature)
	ids := make([]string, 0, len(rec.Weights))
	for id := range rec.Weights {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		return rec.Weights[ids[i]] > rec.Weights[ids[j]] || rec.Weights[ids[i]] == rec.Weights[ids[j]] && ids[i] < ids[j]
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBMISSION\tNAME\tSCORE\tWIN RATE\tWEIGHT\tNOTE")
	for _, id := range ids {
		note := ""
		if of, ok := rec.Copies[id]; ok {
			note = "copy of " + of
		}
		fmt.Fprintf(tw, "%s\t%s\t%.4f\t%.4f\t%.4f\t%s\n", id, rec.Names[id], rec.Scores[id], rec.WinRates[id], rec.Weights[id], note)
	}
	tw.Flush()
}

// readPersonas returns the persona file's text for a competition ("" for the shipped set).
func readPersonas(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	return string(b), err
}
