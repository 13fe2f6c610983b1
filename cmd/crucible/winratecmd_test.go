package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

func winrateRun(t *testing.T, csv string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runWinRate(context.Background(), append([]string{"--scores", writeCSV(t, csv)}, args...), &out, &errb)
	return out.String(), err
}

type winrateJSON struct {
	WinRate map[string]float64 `json:"win_rate"`
	Weights map[string]float64 `json:"weights"`
}

func TestWinRateCLI(t *testing.T) {
	// The three models (Dippy's utilities/compete.py rule gives each
	// a third; Crucible's gives B everything).
	three := "model,committed,score\nA,100,0.80\nB,200,0.82\nC,50,0.79\n"
	threeTimes := "model,committed,score\nA,2025-01-01T00:20:00Z,0.80\nB,2025-01-01T00:40:00Z,0.82\nC,2025-01-01T00:10:00Z,0.79\n"
	tests := []struct {
		name    string
		csv     string
		args    []string
		weights map[string]float64
	}{
		{"dippy gives each of the three models a third", three, []string{"--preset", "dippy"},
			map[string]float64{"A": 1.0 / 3, "B": 1.0 / 3, "C": 1.0 / 3}},
		{"commit times work as block numbers do", threeTimes, []string{"--preset", "dippy"},
			map[string]float64{"A": 1.0 / 3, "B": 1.0 / 3, "C": 1.0 / 3}},
		{"the crucible preset gives B everything", three, nil,
			map[string]float64{"A": 1.9287498479639178e-22, "B": 1, "C": 3.720075976020836e-44}},
		{"an explicit epsilon of 0.03 under crucible's boost makes A beat B", three, []string{"--epsilon", "0.03"},
			// A·1.03 = 0.824 > 0.82; C·1.03 = 0.8137 > 0.80: A 1 of 2, B 1 of 2 (beats C), C 1 of 2.
			map[string]float64{"A": 1.0 / 3, "B": 1.0 / 3, "C": 1.0 / 3}},
		{"a failed model weighs exactly 0 under dippy", "model,committed,score\nA,1,0.5\nF,0,\n", []string{"--preset", "dippy"},
			map[string]float64{"A": 1, "F": 0}},
		{"pretraining on losses filters a later clone", "model,committed,score\n100,1000,0.5\n50,2000,0.5\n75,2001,0.499\n",
			[]string{"--preset", "pretraining", "--lower-is-better", "--temperature", "1e9"},
			// 100 and 75 are competitive: win rates 1 and 0 at a huge T split nearly evenly; 50 weighs 0.
			map[string]float64{"100": 0.5, "75": 0.5, "50": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := winrateRun(t, tt.csv, append(tt.args, "--json")...)
			if err != nil {
				t.Fatal(err)
			}
			var got winrateJSON
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v in %s", err, out)
			}
			if len(got.Weights) != len(tt.weights) || len(got.WinRate) != len(tt.weights) {
				t.Fatalf("got %+v, want weights %v", got, tt.weights)
			}
			for id, w := range tt.weights {
				if math.Abs(got.Weights[id]-w) > 1e-9 {
					t.Errorf("weight[%s] = %v, want %v", id, got.Weights[id], w)
				}
				if w == 0 && got.Weights[id] != 0 {
					t.Errorf("weight[%s] = %v, want exactly 0", id, got.Weights[id])
				}
			}
		})
	}
	out, err := winrateRun(t, three, "--preset", "dippy")
	if err != nil || !strings.Contains(out, "WIN RATE") || !strings.Contains(out, "preset dippy, ε 0.03, T 0.075") {
		t.Errorf("text output %q, %v", out, err)
	}
}

func TestWinRateCLIRejectsBadInput(t *testing.T) {
	var many strings.Builder
	many.WriteString("model,committed,score\n")
	for i := range maxScoresModels + 1 {
		fmt.Fprintf(&many, "m%d,%d,0.5\n", i, i)
	}
	tests := []struct {
		name, csv string
		args      []string
		errPart   string
	}{
		{"a wrong header", "name,block,score\na,1,0.5\n", nil, "line 1: header"},
		{"a bad score names its line", "model,committed,score\na,1,0.5\nb,2,high\n", nil, "line 3: score \"high\""},
		{"a NaN score", "model,committed,score\na,1,NaN\n", nil, "not a finite number"},
		{"a bad commit", "model,committed,score\na,yesterday,0.5\n", nil, "neither a block number nor an RFC 3339 time"},
		{"mixed commit forms", "model,committed,score\na,1,0.5\nb,2025-01-01T00:00:00Z,0.4\n", nil, "mixes times and block numbers"},
		{"a repeated model", "model,committed,score\na,1,0.5\na,2,0.4\n", nil, "appears twice"},
		{"no models", "model,committed,score\n", nil, "no models"},
		{"too many models", many.String(), nil, fmt.Sprintf("more than %d models", maxScoresModels)},
		{"an unknown preset", "model,committed,score\na,1,0.5\n", []string{"--preset", "yuma"}, "unknown win-rate preset"},
		{"a zero temperature", "model,committed,score\na,1,0.5\n", []string{"--temperature", "0"}, "temperature"},
		{"an epsilon of 1", "model,committed,score\na,1,0.5\n", []string{"--epsilon", "1"}, "epsilon"},
		{"--at in the wrong form", "model,committed,score\na,1,0.5\n", []string{"--at", "2025-01-01T00:00:00Z"}, "must be one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := winrateRun(t, tt.csv, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.errPart) {
				t.Fatalf("err = %v, want one containing %q", err, tt.errPart)
			}
		})
	}
}
