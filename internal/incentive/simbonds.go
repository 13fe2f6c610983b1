package incentive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// ParseBonds reads previous bonds in either form `crucible consensus` deals
// in: the JSON it prints (the whole output, whose "bonds" it takes, or just
// the {validator: {miner: bond}} object), or a CSV shaped like the weights
// (`validator,<miner>,...`, one row per validator). Bonds must be finite
// and in [0, 1]; errors name the validator and miner.
func ParseBonds(data []byte) (map[string]map[string]float64, error) {
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		return parseBondsJSON(trimmed)
	}
	m, err := ParseWeightsCSV(bytes.NewReader(data))
	if err != nil {
		return nil, errors.New("bonds " + strings.TrimPrefix(err.Error(), "weights "))
	}
	out := make(map[string]map[string]float64, len(m.Validators))
	for i, v := range m.Validators {
		out[v] = map[string]float64{}
		for j, miner := range m.Miners {
			out[v][miner] = m.Weights[i][j]
		}
	}
	return out, checkBondValues(out)
}

func parseBondsJSON(data []byte) (map[string]map[string]float64, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("bonds JSON: %w", err)
	}
	raw := json.RawMessage(data)
	if b, ok := top["bonds"]; ok {
		if _, isOutput := top["validators"]; isOutput {
			raw = b // a whole `crucible consensus --json` output
		}
	}
	var bonds map[string]map[string]float64
	if err := json.Unmarshal(raw, &bonds); err != nil {
		return nil, fmt.Errorf("bonds JSON: want {validator: {miner: bond}} or a `crucible consensus --json` output: %w", err)
	}
	return bonds, checkBondValues(bonds)
}

// checkBondValues refuses a bond that is not a proportion.
func checkBondValues(bonds map[string]map[string]float64) error {
	for v, row := range bonds {
		for miner, b := range row {
			if math.IsNaN(b) || math.IsInf(b, 0) || b < 0 || b > 1 {
				return fmt.Errorf("bonds: bond of %s on %s is %v, want a proportion in [0, 1]", v, miner, b)
			}
		}
	}
	return nil
}

// alignBonds lays named bonds out as a validators × miners matrix. A key
// that names no row or column is an error: bonds cannot follow a
// validator or miner this epoch does not have.
func alignBonds(bonds map[string]map[string]float64, rows, cols map[string]int) ([][]float64, error) {
	var unknownV, unknownM []string
	prev := newMatrix(len(rows), len(cols))
	for v, row := range bonds {
		i, ok := rows[v]
		if !ok {
			unknownV = append(unknownV, v)
			continue
		}
		for miner, b := range row {
			j, ok := cols[miner]
			if !ok {
				unknownM = append(unknownM, v+"→"+miner)
				continue
			}
			prev[i][j] = b
		}
	}
	slices.Sort(unknownV)
	slices.Sort(unknownM)
	if len(unknownV) > 0 {
		return nil, fmt.Errorf("bonds name validators %s, which have no row in the weights CSV (drop them from the bonds or add their rows)", strings.Join(unknownV, ", "))
	}
	if len(unknownM) > 0 {
		return nil, fmt.Errorf("bonds name miners that are no column of the weights CSV: %s", strings.Join(unknownM, ", "))
	}
	return prev, nil
}
