package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/client"
)

func runWeights(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var n *int64
	return runShow(ctx, args, stdout, stderr, showSpec{name: "weights", idFlag: "competition",
		summary: "Show the weight vector a model competition recorded for an epoch: pairwise win rates on the same\n" +
			"items, where a later submission must beat an earlier one by more than ε to win an item; copies (same\n" +
			"digest, or the same answer on every item as an earlier submission) earn 0; weights are\n" +
			"softmax(win_rate / T), by the competition's win-rate preset (crucible, dippy or pretraining: see crucible\n" +
			"winrate --help). Epochs are 72 minutes (360 blocks of 12 s) unless the server says otherwise.",
		example: "crucible weights --competition c-abc123 --epoch 412345 --json",
		flags:   func(fs *flag.FlagSet) { n = fs.Int64("epoch", -1, "epoch number (default: the latest closed)") }},
		func(c *client.Client, id string) (apiv1.WeightsRecord, error) { return c.Weights(ctx, id, *n) },
		func(w io.Writer, rec apiv1.WeightsRecord) error { printEpochRecord(w, rec); return nil })
}

func printEpochRecord(w io.Writer, rec apiv1.WeightsRecord) {
	rule, eps := "crucible", fmt.Sprintf("%.3g", rec.Epsilon)
	if rec.WinRate != nil {
		rule, eps = rec.WinRate.Preset, describeEpsilon(*rec.WinRate)
	}
	fmt.Fprintf(w, "epoch %d (%s → %s), win rates %s, ε %s, T %.3g\n", rec.Epoch, rec.Start.Format(time.RFC3339), rec.End.Format(time.RFC3339),
		rule, eps, rec.Temperature)
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
