package incentive_test

import (
	"math"
	"strings"
	"testing"

	"crucible/internal/incentive"
)

func TestSimulateReproducesSubtensorsWeightedMedianVectors(t *testing.T) {
	// Two miners so that a row can put 0.5 on m1 after normalisation; the
	// vectors are subtensor's weighted-median tests (REFERENCE.md).
	tests := []struct {
		name   string
		csv    string
		stakes string
		kappa  float64
		want   float64 // consensus on m1
	}{
		{"a 51% majority at 1 makes the consensus 1", "validator,m1,m2\na,0.5,0.5\nb,1,0\n", "a=0.49,b=0.51", 0.51, 1},
		{"a 51% majority at 0.5 makes the consensus 0.5", "validator,m1,m2\na,0.5,0.5\nb,1,0\n", "a=0.51,b=0.49", 0.51, 0.5},
		{"the median of three scores is the one a majority reaches", "validator,m1,m2\na,0.5,0.5\nb,0.7,0.3\nc,1,0\n", "a=0.49,b=0.01,c=0.5", 0.51, 0.7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := incentive.ParseWeightsCSV(strings.NewReader(tt.csv))
			if err != nil {
				t.Fatal(err)
			}
			st, err := incentive.ParseStakes(tt.stakes)
			if err != nil {
				t.Fatal(err)
			}
			sim, err := incentive.Simulate(incentive.SimInput{Matrix: m, Stakes: st, Params: incentive.YumaInput{Kappa: tt.kappa, Emission: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(sim.Consensus["m1"]-tt.want) > 1e-9 {
				t.Fatalf("consensus on m1 = %v, want %v", sim.Consensus["m1"], tt.want)
			}
			var sum float64
			for _, v := range sim.Incentive {
				sum += v
			}
			if math.Abs(sum-1) > 1e-9 {
				t.Fatalf("incentive sums to %v, want 1", sum)
			}
		})
	}
}

func TestSimulateInputErrorsSayWhatIsWrong(t *testing.T) {
	tests := []struct {
		name, csv, stakes, want string
	}{
		{"an empty file", "", "a=1", "empty"},
		{"a header without the validator column", "name,m1\na,1\n", "a=1", "header must be"},
		{"a row with too few fields", "validator,m1,m2\na,1\n", "a=1", "line 2: 2 fields, want 3"},
		{"a weight that is not a number", "validator,m1\na,lots\n", "a=1", `line 2: weight of a on m1 is "lots"`},
		{"a negative weight", "validator,m1\na,-1\n", "a=1", "finite number ≥ 0"},
		{"a validator twice", "validator,m1\na,1\na,2\n", "a=1", `validator "a" appears twice`},
		{"a miner twice", "validator,m1,m1\na,1,1\n", "a=1", `miner "m1" appears twice`},
		{"a header and no rows", "validator,m1\n", "a=1", "no validator rows"},
		{"a stake missing", "validator,m1\na,1\nb,1\n", "a=1", "no stake for validators b"},
		{"a stake for nobody", "validator,m1\na,1\n", "a=1,z=2", "z, which has no row"},
		{"a malformed stake", "validator,m1\na,1\n", "a:1", "want VALIDATOR=STAKE"},
		{"a zero total stake", "validator,m1\na,1\n", "a=0", "total stake is zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := incentive.ParseWeightsCSV(strings.NewReader(tt.csv))
			if err == nil {
				var st map[string]float64
				if st, err = incentive.ParseStakes(tt.stakes); err == nil {
					_, err = incentive.Simulate(incentive.SimInput{Matrix: m, Stakes: st})
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseBondsReadsEveryFormTheCommandDealsIn(t *testing.T) {
	want := map[string]map[string]float64{"v1": {"m1": 0.25, "m2": 0}, "v2": {"m1": 0.75, "m2": 1}}
	sim := `{"variant":"yuma1","validators":["v1","v2"],"miners":["m1","m2"],"bonds":{"v1":{"m1":0.25,"m2":0},"v2":{"m1":0.75,"m2":1}}}`
	tests := []struct{ name, data string }{
		{"a whole --json output", sim},
		{"the bonds object alone", `{"v1":{"m1":0.25,"m2":0},"v2":{"m1":0.75,"m2":1}}`},
		{"a CSV shaped like the weights", "validator,m1,m2\nv1,0.25,0\nv2,0.75,1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := incentive.ParseBonds([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			for v, row := range want {
				for m, b := range row {
					if got[v][m] != b {
						t.Errorf("bond %s→%s = %v, want %v", v, m, got[v][m], b)
					}
				}
			}
		})
	}
}

// TestSimulateRefusesHostileBonds: a bonds file is input like any other; one
// that names validators or miners this epoch does not have, or holds values
// that are no proportion, is refused with the offending names.
func TestSimulateRefusesHostileBonds(t *testing.T) {
	m, err := incentive.ParseWeightsCSV(strings.NewReader("validator,m1,m2\nv1,1,0\nv2,0,1\n"))
	if err != nil {
		t.Fatal(err)
	}
	stakes := map[string]float64{"v1": 1, "v2": 1}
	tests := []struct{ name, bonds, want string }{
		{"an unknown validator", `{"v1":{"m1":0.5},"ghost":{"m1":1}}`, "validators ghost, which have no row"},
		{"an unknown miner", `{"v1":{"m9":0.5}}`, "v1→m9"},
		{"a bond above 1", `{"v1":{"m1":1e300}}`, "bond of v1 on m1 is 1e+300"},
		{"a negative bond", "validator,m1,m2\nv1,-1,0\n", "finite number ≥ 0"},
		{"not JSON", `{"v1":`, "bonds JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bonds, err := incentive.ParseBonds([]byte(tt.bonds))
			if err == nil {
				_, err = incentive.Simulate(incentive.SimInput{Matrix: m, Stakes: stakes, Bonds: bonds})
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
