package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"crucible/internal/incentive"
)

// maxConsensusFile bounds the weights and bonds files `crucible consensus`
// reads.
const maxConsensusFile = 16 << 20

// yumaFlags are the Yuma parameters shared by `crucible consensus` and the
// hub (serve and worker).
type yumaFlags struct {
	variant     *string
	kappa       *float64
	bondsAlpha  *float64
	penalty     *float64
	liquidAlpha *string
	steepness   *float64
	quantize    *bool
	minerShare  *float64
}

func addYumaFlags(fs *flag.FlagSet) yumaFlags {
	return yumaFlags{
		variant:     fs.String("variant", string(incentive.DefaultVariant), "Yuma variant: yuma1 (subtensor's default) or yuma3 (bonds as per-pair proportions, dividends weighted by stake)"),
		kappa:       fs.Float64("kappa", incentive.DefaultKappa, "consensus majority κ: the stake share the consensus weight needs (subtensor: 32767/65535)"),
		bondsAlpha:  fs.Float64("bonds-alpha", incentive.DefaultBondsAlpha, "weight α of this epoch's bonds in the bonds moving average (1 − bonds_moving_average)"),
		penalty:     fs.Float64("bonds-penalty", incentive.DefaultBondsPenalty, "bonds penalty β in [0, 1]: bonds grow on W + β·(clipped W − W); 1 bonds only what consensus backs"),
		liquidAlpha: fs.String("liquid-alpha", "", "LOW,HIGH: yuma3 only, α per (validator, miner) between LOW and HIGH from how far the weight sits from consensus (subtensor's alpha_low,alpha_high: 0.7,0.9)"),
		steepness:   fs.Float64("alpha-steepness", incentive.DefaultAlphaSteepness, "liquid-alpha sigmoid steepness in subtensor's units (the sigmoid uses steepness/100)"),
		quantize:    fs.Bool("quantize", false, "store weights and bonds as the chain does (u16), to reproduce subtensor's stored values"),
		minerShare:  fs.Float64("miner-share", incentive.DefaultMinerShare, "miners' fraction of each epoch's emission; the rest goes to validators"),
	}
}

// params checks the flags and returns them as Yuma parameters.
func (f yumaFlags) params() (incentive.YumaInput, error) {
	variant, err := incentive.ParseVariant(*f.variant)
	if err != nil {
		return incentive.YumaInput{}, usagef("--variant: %v", err)
	}
	for name, v := range map[string]float64{"kappa": *f.kappa, "bonds-alpha": *f.bondsAlpha, "miner-share": *f.minerShare} {
		if !(v > 0 && v <= 1) {
			return incentive.YumaInput{}, usagef("--%s %v must be in (0, 1]", name, v)
		}
	}
	if !(*f.penalty >= 0 && *f.penalty <= 1) {
		return incentive.YumaInput{}, usagef("--bonds-penalty %v must be in [0, 1]", *f.penalty)
	}
	if !(*f.steepness > 0 && *f.steepness <= incentive.MaxAlphaSteepness) {
		return incentive.YumaInput{}, usagef("--alpha-steepness %v must be in (0, %d]", *f.steepness, incentive.MaxAlphaSteepness)
	}
	penalty := *f.penalty
	in := incentive.YumaInput{Variant: variant, Kappa: *f.kappa, BondsAlpha: *f.bondsAlpha, BondsPenalty: &penalty,
		AlphaSteepness: *f.steepness, Quantize: *f.quantize, MinerShare: *f.minerShare}
	if *f.liquidAlpha != "" {
		if variant != incentive.Yuma3 {
			return incentive.YumaInput{}, usagef("--liquid-alpha needs --variant yuma3 (subtensor applies liquid alpha to Yuma 3 bonds only)")
		}
		lo, hi, ok := strings.Cut(*f.liquidAlpha, ",")
		low, err1 := strconv.ParseFloat(strings.TrimSpace(lo), 64)
		high, err2 := strconv.ParseFloat(strings.TrimSpace(hi), 64)
		if !ok || err1 != nil || err2 != nil || !(low > 0 && low <= high && high <= 1) {
			return incentive.YumaInput{}, usagef("--liquid-alpha %q: want LOW,HIGH with 0 < LOW ≤ HIGH ≤ 1, e.g. 0.7,0.9", *f.liquidAlpha)
		}
		in.LiquidAlpha, in.AlphaLow, in.AlphaHigh = true, low, high
	}
	return in, nil
}

func runConsensus(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("consensus", "Run one epoch of Yuma consensus on a weight matrix, as subtensor would, to simulate what\n"+
		"validators' weights give. The CSV's header is `validator,<miner>,...`, then one row per validator; a\n"+
		"validator named like a miner column is that miner (its self-weight is masked). The JSON output's\n"+
		"\"bonds\" feed the next epoch: pass the output file back with --bonds.",
		"crucible consensus --weights w1.csv --stakes v1=100,v2=50 --json > e1.json && crucible consensus --weights w2.csv --stakes v1=100,v2=50 --bonds e1.json --json", stderr)
	weights := fs.String("weights", "", "weight matrix CSV (header validator,<miner>,...)")
	stakes := fs.String("stakes", "", "stake per validator: V=S,V=S,...")
	bonds := fs.String("bonds", "", "last epoch's bonds: a previous --json output, its {validator: {miner: bond}} object, or a CSV shaped like --weights")
	yf := addYumaFlags(fs)
	maxValidators := fs.Int("max-validators", 0, "validator permits for the top-k stakes only (0: every validator with stake)")
	lastUpdate := fs.String("last-update", "", "V=BLOCK,...: each validator's last weight update, for --activity-cutoff")
	block := fs.Int64("block", 0, "the current block, for --activity-cutoff")
	cutoff := fs.Int64("activity-cutoff", 0, "a validator whose last update + cutoff < --block loses its vote (0: off; subtensor's default is 5000)")
	emission := fs.Float64("emission", 1, "emission to split")
	o := addOutputFlags(fs, "print JSON (consensus, incentive, trust, dividends, bonds, ... keyed by name)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *weights == "" || *stakes == "" {
		return usagef("--weights CSV and --stakes V=S,... are required")
	}
	in, err := yf.params()
	if err != nil {
		return err
	}
	if *maxValidators < 0 || *cutoff < 0 {
		return usagef("--max-validators and --activity-cutoff must be ≥ 0")
	}
	if !(*emission >= 0 && !math.IsInf(*emission, 0)) {
		return usagef("--emission %v must be finite and ≥ 0", *emission)
	}
	in.MaxValidators, in.Block, in.ActivityCutoff, in.Emission = *maxValidators, *block, *cutoff, *emission
	sim := incentive.SimInput{Params: in}
	data, err := readBounded(*weights, maxConsensusFile)
	if err != nil {
		return err
	}
	if sim.Matrix, err = incentive.ParseWeightsCSV(strings.NewReader(string(data))); err != nil {
		return fmt.Errorf("%s: %w", *weights, err)
	}
	if sim.Stakes, err = incentive.ParseStakes(*stakes); err != nil {
		return usagef("--stakes: %v", err)
	}
	if *lastUpdate != "" {
		if sim.LastUpdate, err = parseBlocks(*lastUpdate); err != nil {
			return usagef("--last-update: %v", err)
		}
	}
	if *bonds != "" {
		data, err := readBounded(*bonds, maxConsensusFile)
		if err != nil {
			return err
		}
		if sim.Bonds, err = incentive.ParseBonds(data); err != nil {
			return fmt.Errorf("%s: %w", *bonds, err)
		}
	}
	res, err := incentive.Simulate(sim)
	if err != nil {
		return err
	}
	return o.emit(stdout, res, func() error {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MINER\tCONSENSUS\tINCENTIVE\tTRUST\tEMISSION")
		for _, name := range res.Miners {
			fmt.Fprintf(tw, "%s\t%.6f\t%.6f\t%.6f\t%.6g\n", name, res.Consensus[name], res.Incentive[name], res.Trust[name], res.MinerEmission[name])
		}
		fmt.Fprintln(tw, "\nVALIDATOR\tSTAKE\tTRUST\tDIVIDENDS\tEMISSION")
		for _, name := range res.Validators {
			fmt.Fprintf(tw, "%s\t%g\t%.6f\t%.6f\t%.6g\n", name, sim.Stakes[name], res.ValidatorTrust[name], res.Dividends[name], res.ValidatorEmission[name])
		}
		return tw.Flush()
	})
}

// parseBlocks reads `V=BLOCK,...`.
func parseBlocks(spec string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, part := range strings.Split(spec, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		name = strings.TrimSpace(name)
		b, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if !ok || name == "" || err != nil || b < 0 {
			return nil, fmt.Errorf("%q: want VALIDATOR=BLOCK with a block ≥ 0", part)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("the last update of %s is given twice", name)
		}
		out[name] = b
	}
	return out, nil
}
