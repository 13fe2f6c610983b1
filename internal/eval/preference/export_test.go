package preference

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func scoredSimulation(t *testing.T) ([]Task, Epoch) {
	t.Helper()
	tasks, ratings := simulate(t, 10, 3, 0.25)
	ep, err := Score(DefaultConfig(), tasks, ratings)
	if err != nil {
		t.Fatal(err)
	}
	return tasks, ep
}

func TestDPOExportHasTheExpectedPairsAndRoundTripsThroughJSON(t *testing.T) {
	tasks, ep := scoredSimulation(t)
	// Count the pairs from the consensus: all mode pairs every two
	// responses whose ranks differ; adjacent mode pairs each rank group
	// with the next one (n−1 pairs for a task without ties).
	wantAll, wantAdjacent := 0, 0
	for _, tr := range ep.Tasks {
		n := len(tr.Consensus)
		sizes := map[float64]int{}
		for _, r := range tr.Consensus {
			sizes[r]++
		}
		ranks := make([]float64, 0, len(sizes))
		for r := range sizes {
			ranks = append(ranks, r)
		}
		slices.Sort(ranks)
		wantAll += n * (n - 1) / 2
		for i, r := range ranks {
			wantAll -= sizes[r] * (sizes[r] - 1) / 2
			if i+1 < len(ranks) {
				wantAdjacent += sizes[r] * sizes[ranks[i+1]]
			}
		}
	}
	tests := []struct {
		name string
		mode PairMode
		want int
	}{
		{name: "all pairs gives n(n-1)/2 per task", mode: AllPairs, want: wantAll},
		{name: "adjacent pairs gives n-1 per task", mode: AdjacentPairs, want: wantAdjacent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pairs, err := ExportDPO(tasks, ep.Tasks, tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := WriteJSONL(&buf, pairs); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(&buf)
			sc.Buffer(nil, 1<<20)
			lines := 0
			for sc.Scan() {
				var back map[string]any
				if err := json.Unmarshal(sc.Bytes(), &back); err != nil {
					t.Fatalf("line %d: %v", lines+1, err)
				}
				if len(back) != 3 || back["prompt"] != pairs[lines].Prompt || back["chosen"] != pairs[lines].Chosen || back["rejected"] != pairs[lines].Rejected {
					t.Fatalf("line %d round-tripped to %v", lines+1, back)
				}
				lines++
			}
			if lines != tc.want || len(pairs) != tc.want {
				t.Errorf("%d lines, %d pairs; want %d", lines, len(pairs), tc.want)
			}
		})
	}
}

func TestDPOPairsPreferTheConsensusAndUseCanonicalText(t *testing.T) {
	task, _ := NewOrganic(OrganicConfig{ID: "t", Instruction: "Q", Responses: []string{"worst", "best", "middle"}})
	res := []TaskResult{{TaskID: "t", Consensus: []float64{3, 1, 2}}}
	pairs, err := ExportDPO([]Task{task}, res, AllPairs)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, p := range pairs {
		got += p.Chosen + ">" + p.Rejected + " "
	}
	if got != "best>middle best>worst middle>worst " {
		t.Errorf("pairs %q", got)
	}
	tied := []TaskResult{{TaskID: "t", Consensus: []float64{3, 1.5, 1.5}}}
	adj, _ := ExportDPO([]Task{task}, tied, AdjacentPairs)
	all, _ := ExportDPO([]Task{task}, tied, AllPairs)
	if len(adj) != 2 || len(all) != 2 {
		t.Errorf("a tie at the top: %d adjacent and %d pairs, want 2 and 2 (tied responses are never paired)", len(adj), len(all))
	}
	if _, err := ExportDPO([]Task{task}, []TaskResult{{TaskID: "x", Consensus: []float64{1, 2, 3}}}, AllPairs); err == nil {
		t.Error("a result for an unknown task was accepted")
	}
	if _, err := ExportDPO(nil, nil, "some"); err == nil {
		t.Error("an unknown pair mode was accepted")
	}
}

func TestRankingsAndCSVCarryTheAgreementFigures(t *testing.T) {
	tasks, ep := scoredSimulation(t)
	recs, err := ExportRankings(tasks, ep.Tasks)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 50 {
		t.Fatalf("%d records, want 50", len(recs))
	}
	r := recs[0]
	if r.Raters != 13 || r.Trusted != 10 || r.ICC2 == nil || r.MeanAgreement == nil || r.ConsensusCloseness == nil || len(r.Responses) != 5 {
		t.Fatalf("record %+v", r)
	}
	for i := 1; i < len(r.Responses); i++ {
		if r.Responses[i].Rank < r.Responses[i-1].Rank {
			t.Errorf("responses not best first: %+v", r.Responses)
		}
	}
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, recs); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 50 {
		t.Errorf("%d JSONL lines, want 50", n)
	}
	buf.Reset()
	if err := WriteCSV(&buf, tasks, ep.Tasks); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+50*5 || strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	if rows[1][0] != tasks[0].ID || rows[1][5] != "13" || rows[1][6] != "10" {
		t.Errorf("first row %v", rows[1])
	}
}
