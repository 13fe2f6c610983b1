package incentive

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Matrix is a weight matrix read from CSV: one row per validator, one column
// per miner.
type Matrix struct {
	Validators []string
	Miners     []string
	Weights    [][]float64
}

// ParseWeightsCSV reads a weight matrix whose header is
// `validator,<miner>,…` and whose rows are a validator name followed by its
// weight on each miner. Errors name the line and column.
func ParseWeightsCSV(r io.Reader) (Matrix, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return Matrix{}, errors.New("weights CSV is empty: want a header `validator,<miner>,...` and one row per validator")
	}
	if err != nil {
		return Matrix{}, fmt.Errorf("weights CSV: %w", err)
	}
	if len(header) < 2 || strings.TrimSpace(strings.ToLower(header[0])) != "validator" {
		return Matrix{}, fmt.Errorf("weights CSV line 1: header must be `validator,<miner>,...`, got %q", strings.Join(header, ","))
	}
	m := Matrix{}
	seen := map[string]bool{}
	for i, name := range header[1:] {
		name = strings.TrimSpace(name)
		if name == "" {
			return Matrix{}, fmt.Errorf("weights CSV line 1: miner column %d has no name", i+2)
		}
		if seen[name] {
			return Matrix{}, fmt.Errorf("weights CSV line 1: miner %q appears twice", name)
		}
		seen[name] = true
		m.Miners = append(m.Miners, name)
	}
	seen = map[string]bool{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Matrix{}, fmt.Errorf("weights CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			return Matrix{}, fmt.Errorf("weights CSV line %d: %d fields, want %d (a validator and %d miners)", line, len(rec), len(header), len(m.Miners))
		}
		v := strings.TrimSpace(rec[0])
		if v == "" {
			return Matrix{}, fmt.Errorf("weights CSV line %d: the validator name is empty", line)
		}
		if seen[v] {
			return Matrix{}, fmt.Errorf("weights CSV line %d: validator %q appears twice", line, v)
		}
		seen[v] = true
		row := make([]float64, len(m.Miners))
		for j, f := range rec[1:] {
			x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
				return Matrix{}, fmt.Errorf("weights CSV line %d: weight of %s on %s is %q, want a finite number ≥ 0", line, v, m.Miners[j], f)
			}
			row[j] = x
		}
		m.Validators = append(m.Validators, v)
		m.Weights = append(m.Weights, row)
	}
	if len(m.Validators) == 0 {
		return Matrix{}, errors.New("weights CSV has a header but no validator rows")
	}
	return m, nil
}

// ParseStakes reads `V=S,V=S,…` into stakes by validator name.
func ParseStakes(spec string) (map[string]float64, error) {
	out := map[string]float64{}
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("stakes are empty: want V=S,... with one stake per validator row")
	}
	for _, part := range strings.Split(spec, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("stake %q: want VALIDATOR=STAKE", part)
		}
		x, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			return nil, fmt.Errorf("stake of %s is %q, want a finite number ≥ 0", name, val)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("stake of %s is given twice", name)
		}
		out[name] = x
	}
	return out, nil
}

// Simulation is one epoch of Yuma consensus on a given matrix, keyed by the
// names in the CSV.
type Simulation struct {
	Variant    Variant  `json:"variant"`
	Validators []string `json:"validators"`
	Miners     []string `json:"miners"`
	// Consensus, Incentive, Trust and MinerEmission are per miner.
	Consensus     map[string]float64 `json:"consensus"`
	Incentive     map[string]float64 `json:"incentive"`
	Trust         map[string]float64 `json:"trust"`
	MinerEmission map[string]float64 `json:"miner_emission"`
	// ValidatorTrust, Dividends and ValidatorEmission are per validator.
	ValidatorTrust    map[string]float64 `json:"validator_trust"`
	Dividends         map[string]float64 `json:"dividends"`
	ValidatorEmission map[string]float64 `json:"validator_emission"`
	// Bonds are the bonds after this epoch, validator → miner → bond (zero
	// bonds left out), in the form ParseBonds reads back as the next
	// epoch's previous bonds.
	Bonds map[string]map[string]float64 `json:"bonds"`
}

// SimInput is one epoch to simulate: a weight matrix, a stake per
// validator row, and optionally last epoch's bonds and each validator's
// last update, all keyed by the CSV's names.
type SimInput struct {
	Matrix Matrix
	Stakes map[string]float64
	// Bonds are the previous bonds (nil: none); every key must be a row or
	// a column of Matrix.
	Bonds map[string]map[string]float64
	// LastUpdate is each validator's last update block (nil: all active);
	// with Params.Block and Params.ActivityCutoff it masks inactive ones.
	LastUpdate map[string]int64
	// Params supplies the variant, κ, α, β, liquid alpha, quantisation,
	// masks' block, cutoff and permits, the miner share and the emission;
	// its Weights, Stakes, PrevBonds, LastUpdate and SelfMiner are set here.
	// A validator named like a miner column is that miner: its self-weight
	// is masked, as subtensor masks the diagonal.
	Params YumaInput
}

// Simulate runs one Yuma epoch on s.Matrix with the given stakes (one per
// validator row, no extras).
func Simulate(s SimInput) (Simulation, error) {
	m, in := s.Matrix, s.Params
	in.Weights, in.Stakes, in.PrevBonds, in.LastUpdate, in.SelfMiner = m.Weights, nil, nil, nil, nil
	var missing []string
	for _, v := range m.Validators {
		st, ok := s.Stakes[v]
		if !ok {
			missing = append(missing, v)
		}
		in.Stakes = append(in.Stakes, st)
	}
	if len(missing) > 0 {
		return Simulation{}, fmt.Errorf("no stake for validators %s (give --stakes %s=S,...)", strings.Join(missing, ", "), missing[0])
	}
	rows, cols := index(m.Validators), index(m.Miners)
	for v := range s.Stakes {
		if _, ok := rows[v]; !ok {
			return Simulation{}, fmt.Errorf("stake given for %s, which has no row in the weights CSV", v)
		}
	}
	for v := range s.LastUpdate {
		if _, ok := rows[v]; !ok {
			return Simulation{}, fmt.Errorf("last update given for %s, which has no row in the weights CSV", v)
		}
	}
	if s.LastUpdate != nil {
		in.LastUpdate = make([]int64, len(m.Validators))
		for i, v := range m.Validators {
			in.LastUpdate[i] = s.LastUpdate[v]
		}
	}
	in.SelfMiner = make([]int, len(m.Validators))
	for i, v := range m.Validators {
		in.SelfMiner[i] = -1
		if j, ok := cols[v]; ok {
			in.SelfMiner[i] = j
		}
	}
	if s.Bonds != nil {
		prev, err := alignBonds(s.Bonds, rows, cols)
		if err != nil {
			return Simulation{}, err
		}
		in.PrevBonds = prev
	}
	out, err := Yuma(in)
	if err != nil {
		return Simulation{}, err
	}
	variant, _ := ParseVariant(string(in.Variant))
	sim := Simulation{Variant: variant, Validators: m.Validators, Miners: m.Miners, Consensus: map[string]float64{},
		Incentive: map[string]float64{}, Trust: map[string]float64{}, MinerEmission: map[string]float64{},
		ValidatorTrust: map[string]float64{}, Dividends: map[string]float64{}, ValidatorEmission: map[string]float64{},
		Bonds: map[string]map[string]float64{}}
	for j, name := range m.Miners {
		sim.Consensus[name], sim.Incentive[name], sim.Trust[name], sim.MinerEmission[name] =
			out.Consensus[j], out.Incentive[j], out.Trust[j], out.MinerEmission[j]
	}
	for i, name := range m.Validators {
		sim.ValidatorTrust[name], sim.Dividends[name], sim.ValidatorEmission[name] =
			out.ValidatorTrust[i], out.Dividends[i], out.ValidatorEmission[i]
		row := map[string]float64{}
		for j, miner := range m.Miners {
			if b := out.Bonds[i][j]; b > 0 {
				row[miner] = b
			}
		}
		sim.Bonds[name] = row
	}
	return sim, nil
}

// index maps each name to its position.
func index(names []string) map[string]int {
	out := make(map[string]int, len(names))
	for i, n := range names {
		out[n] = i
	}
	return out
}
