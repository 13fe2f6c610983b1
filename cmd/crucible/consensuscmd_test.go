package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"crucible/internal/incentive"
)

// TestConsensusCommandChainsEpochsThroughBonds replays subtensor's
// test_yuma_3_kappa_moves_first (pallets/subtensor/src/tests/epoch.rs) from
// the command line: each epoch's --json output is the next epoch's --bonds,
// and the dividends follow subtensor's within its tolerance, 1e-3.
func TestConsensusCommandChainsEpochsThroughBonds(t *testing.T) {
	dir := t.TempDir()
	rows := map[string]string{"1": "65535,0", "2": "0,65535"}
	csv := func(a, b, c string) string {
		return "validator,s1,s2\nA," + rows[a] + "\nB," + rows[b] + "\nC," + rows[c] + "\n"
	}
	epochs := []struct {
		weights   string
		dividends [3]float64
	}{
		{csv("1", "1", "1"), [3]float64{0.8, 0.1, 0.1}},
		{csv("2", "1", "1"), [3]float64{1, 0, 0}},
		{csv("2", "2", "1"), [3]float64{0.9382, 0.0618, 0}},
		{csv("2", "2", "2"), [3]float64{0.8819, 0.0773, 0.0407}},
		{csv("2", "2", "2"), [3]float64{0.8564, 0.0844, 0.0592}},
		{csv("2", "2", "2"), [3]float64{0.8418, 0.0884, 0.0697}},
	}
	bonds := ""
	for k, e := range epochs {
		w := filepath.Join(dir, "w.csv")
		if err := os.WriteFile(w, []byte(e.weights), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"--weights", w, "--stakes", "A=8,B=1,C=1", "--variant", "yuma3", "--bonds-penalty", "0",
			"--bonds-alpha", "0.025", "--liquid-alpha", "0.1,0.3", "--alpha-steepness", "1000", "--quantize", "--json"}
		if bonds != "" {
			args = append(args, "--bonds", bonds)
		}
		var out, errb bytes.Buffer
		if err := runConsensus(context.Background(), args, &out, &errb); err != nil {
			t.Fatalf("epoch %d: %v", k, err)
		}
		var sim struct {
			Variant   string                        `json:"variant"`
			Dividends map[string]float64            `json:"dividends"`
			Bonds     map[string]map[string]float64 `json:"bonds"`
		}
		if err := json.Unmarshal(out.Bytes(), &sim); err != nil {
			t.Fatal(err)
		}
		if sim.Variant != "yuma3" || len(sim.Bonds) != 3 {
			t.Fatalf("epoch %d: variant %q, bonds %v", k, sim.Variant, sim.Bonds)
		}
		for i, v := range []string{"A", "B", "C"} {
			if math.Abs(sim.Dividends[v]-e.dividends[i]) > 1e-3 {
				t.Errorf("epoch %d: dividend of %s = %.4f, want %.4f", k, v, sim.Dividends[v], e.dividends[i])
			}
		}
		bonds = filepath.Join(dir, "bonds.json")
		if err := os.WriteFile(bonds, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConsensusCommandRefusesWhatSubtensorWouldNotRun(t *testing.T) {
	weights := writeCSV(t, "validator,alice,v2\nv1,1,0\nv2,0.5,0.5\n")
	bonds := writeCSV(t, `{"v1":{"alice":0.5},"v9":{"alice":0.5}}`)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"liquid alpha is a Yuma 3 setting", []string{"--liquid-alpha", "0.7,0.9"}, "needs --variant yuma3"},
		{"liquid alpha bounds must be ordered", []string{"--variant", "yuma3", "--liquid-alpha", "0.9,0.7"}, "0 < LOW ≤ HIGH ≤ 1"},
		{"an unknown variant", []string{"--variant", "yuma2"}, `unknown Yuma variant "yuma2"`},
		{"a bonds penalty above 1", []string{"--bonds-penalty", "1.5"}, "--bonds-penalty 1.5"},
		{"bonds for a validator that has no row", []string{"--bonds", bonds}, "validators v9, which have no row"},
		{"a malformed last update", []string{"--last-update", "v1=soon", "--activity-cutoff", "10"}, "VALIDATOR=BLOCK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"--weights", weights, "--stakes", "v1=1,v2=1"}, tt.args...)
			err := runConsensus(context.Background(), args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	t.Run("a validator named like a miner cannot weight itself", func(t *testing.T) {
		var out, errb bytes.Buffer
		if err := runConsensus(context.Background(), []string{"--weights", weights, "--stakes", "v1=1,v2=3", "--json"}, &out, &errb); err != nil {
			t.Fatal(err)
		}
		var sim struct {
			Incentive map[string]float64 `json:"incentive"`
		}
		if err := json.Unmarshal(out.Bytes(), &sim); err != nil {
			t.Fatal(err)
		}
		// v2 (75% stake) gives itself half; masked, only alice has incentive.
		if sim.Incentive["v2"] != 0 || math.Abs(sim.Incentive["alice"]-1) > 1e-12 {
			t.Fatalf("incentive = %v, want all of it on alice", sim.Incentive)
		}
	})
}

func TestServeFlagsConfigureTheHubsYuma(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cf := addConsensusFlags(fs)
	if err := fs.Parse([]string{"--variant", "yuma3", "--bonds-penalty", "0.5", "--liquid-alpha", "0.7,0.9", "--max-validators", "64", "--quantize"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := cf.config()
	if err != nil {
		t.Fatal(err)
	}
	y := cfg.Yuma
	if y.Variant != incentive.Yuma3 || *y.BondsPenalty != 0.5 || !y.LiquidAlpha || y.AlphaLow != 0.7 || y.AlphaHigh != 0.9 ||
		y.MaxValidators != 64 || !y.Quantize || y.Kappa != incentive.DefaultKappa {
		t.Fatalf("hub Yuma parameters = %+v", y)
	}
	fs = flag.NewFlagSet("serve", flag.ContinueOnError)
	cf = addConsensusFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if cfg, err = cf.config(); err != nil || cfg.Yuma.Variant != incentive.Yuma1 || *cfg.Yuma.BondsPenalty != 1 {
		t.Fatalf("defaults: %+v, %v; want yuma1 with β = 1", cfg.Yuma, err)
	}
}
