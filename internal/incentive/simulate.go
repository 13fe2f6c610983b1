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
}

// Simulate runs one Yuma epoch on m with the given stakes (one per
// validator row, no extras). in supplies κ, α, the miner share and the
// emission; its Weights, Stakes and PrevBonds are ignored.
func Simulate(m Matrix, stakes map[string]float64, in YumaInput) (Simulation, error) {
	in.Weights, in.Stakes, in.PrevBonds = m.Weights, nil, nil
	var missing []string
	for _, v := range m.Validators {
		s, ok := stakes[v]
		if !ok {
			missing = append(missing, v)
		}
		in.Stakes = append(in.Stakes, s)
	}
	if len(missing) > 0 {
		return Simulation{}, fmt.Errorf("no stake for validators %s (give --stakes %s=S,...)", strings.Join(missing, ", "), missing[0])
	}
	if len(stakes) != len(m.Validators) {
		rows := map[string]bool{}
		for _, v := range m.Validators {
			rows[v] = true
		}
		for v := range stakes {
			if !rows[v] {
				return Simulation{}, fmt.Errorf("stake given for %s, which has no row in the weights CSV", v)
			}
		}
	}
	out, err := Yuma(in)
	if err != nil {
		return Simulation{}, err
	}
	sim := Simulation{Validators: m.Validators, Miners: m.Miners, Consensus: map[string]float64{}, Incentive: map[string]float64{},
		Trust: map[string]float64{}, MinerEmission: map[string]float64{}, ValidatorTrust: map[string]float64{},
		Dividends: map[string]float64{}, ValidatorEmission: map[string]float64{}}
	for j, name := range m.Miners {
		sim.Consensus[name], sim.Incentive[name], sim.Trust[name], sim.MinerEmission[name] =
			out.Consensus[j], out.Incentive[j], out.Trust[j], out.MinerEmission[j]
	}
	for i, name := range m.Validators {
		sim.ValidatorTrust[name], sim.Dividends[name], sim.ValidatorEmission[name] =
			out.ValidatorTrust[i], out.Dividends[i], out.ValidatorEmission[i]
	}
	return sim, nil
}
