package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
)

// runRoleplay is `crucible roleplay epochs|contamination|verify-epoch`.
func runRoleplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand(args, "roleplay",
		verb{"epochs", "list a fresh-items competition's epochs and seed commitments"},
		verb{"contamination", "show an epoch's contamination report"},
		verb{"verify-epoch", "regenerate an epoch's items from its revealed seed and compare"})
	if err != nil {
		return err
	}
	switch verb {
	case "epochs":
		return runShow(ctx, args, stdout, stderr, showSpec{name: "roleplay epochs", idFlag: "competition",
			summary: "List a fresh-items roleplay competition's epochs, newest first: the sha256 of each epoch's secret\n" +
				"seed, published when it opens, and once it has ended the seed and the items digest.",
			example: "crucible roleplay epochs --competition c-abc123"},
			func(c *client.Client, id string) ([]apiv1.RoleplayEpoch, error) { return c.RoleplayEpochs(ctx, id) },
			func(w io.Writer, list []apiv1.RoleplayEpoch) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "EPOCH\tENDS\tSHA256(SEED)\tSEED\tITEMS DIGEST")
				for _, e := range list {
					seed := "sealed"
					if e.Seed != nil {
						seed = fmt.Sprint(*e.Seed)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.Epoch, e.End.Format(time.RFC3339), e.SeedSHA256, seed, e.ItemsDigest)
				}
				return tw.Flush()
			})
	case "contamination":
		return runShow(ctx, args, stdout, stderr, showSpec{name: "roleplay contamination", idFlag: "competition",
			summary: "Show each model's score on the public practice items beside its score on the latest ended\n" +
				"epoch's fresh items; a gap above the competition's threshold is flagged (overfitting the public set).",
			example: "crucible roleplay contamination --competition c-abc123"},
			func(c *client.Client, id string) ([]apiv1.Contamination, error) { return c.Contamination(ctx, id) },
			func(w io.Writer, rows []apiv1.Contamination) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SUBMISSION\tNAME\tPRACTICE\tFRESH\tEPOCH\tGAP\tFLAG")
				for _, r := range rows {
					fresh, epoch, gap, flag := "pending", "", "", ""
					if r.FreshScore != nil {
						fresh, epoch, gap = fmt.Sprintf("%.4f", *r.FreshScore), fmt.Sprint(*r.Epoch), fmt.Sprintf("%.4f", *r.ContaminationGap)
					}
					if r.Flagged {
						flag = fmt.Sprintf("contaminated (gap > %.2f)", r.Threshold)
					}
					fmt.Fprintf(tw, "%s\t%s\t%.4f\t%s\t%s\t%s\t%s\n", r.SubmissionID, r.Name, r.PracticeScore, fresh, epoch, gap, flag)
				}
				return tw.Flush()
			})
	}
	fs := newFlags("roleplay verify-epoch", "Check an ended epoch of a fresh-items roleplay competition: its revealed seed hashes to the\n"+
		"commitment published when the epoch opened, and planning the items again from the seed (with the\n"+
		"competition's generator) gives exactly the published items digest. Exits non-zero on a mismatch.",
		"crucible roleplay verify-epoch --competition c-abc123 --epoch 412345", stderr)
	cf := addClientFlags(fs)
	id := fs.String("competition", "", "competition id")
	n := fs.Int64("epoch", -1, "epoch number (see crucible roleplay epochs)")
	personas := fs.String("personas", "", "the competition's persona JSONL, when it has its own set")
	generator := fs.String("generator-url", "", "generator server to use instead of the competition's (needed when it is the hub's own;\n"+
		"key from CRUCIBLE_GENERATOR_API_KEY)")
	o := addOutputFlags(fs, "print the checks as JSON")
	c, err := parseWithID(fs, args, cf, "competition", id, false)
	if err != nil {
		return err
	}
	if *n < 0 {
		return usagef("--epoch N is required")
	}
	comp, err := c.Competition(ctx, *id)
	if err != nil {
		return err
	}
	view, err := c.RoleplayEpoch(ctx, *id, *n)
	if err != nil {
		return err
	}
	check, err := app.VerifyRoleplayEpoch(ctx, app.VerifyEpochConfig{Competition: comp, Epoch: view, Personas: *personas, GeneratorURL: *generator})
	if err != nil {
		return err
	}
	err = o.emit(stdout, check, func() error {
		fmt.Fprintf(stdout, "epoch %d: seed %d hashes to the commitment: %v\n", check.Epoch, *view.Seed, check.CommitmentOK)
		fmt.Fprintf(stdout, "published items digest %s, served items match it: %v\n", check.Published, check.ServedOK)
		fmt.Fprintf(stdout, "items planned again from the seed:   %s\n", check.Replanned)
		return nil
	})
	if err != nil {
		return err
	}
	if !check.OK() {
		return fmt.Errorf("epoch %d does not verify", check.Epoch)
	}
	if !o.isJSON() {
		fmt.Fprintln(stdout, "verified: the items were fixed by the committed seed")
	}
	return nil
}
