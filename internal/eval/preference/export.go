package preference

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
)

// Export formats: ExportDPO and ExportRankings as JSONL, or WriteCSV (the
// format parameter of the hub's export and of crucible preference export).
const (
	FormatDPO      = "dpo"
	FormatRankings = "rankings"
	FormatCSV      = "csv"
)

// PairMode chooses which pairs ExportDPO emits.
type PairMode string

const (
	// AllPairs (the default) emits every pair whose consensus ranks
	// differ: n(n−1)/2 pairs for n responses without ties.
	AllPairs PairMode = "all"
	// AdjacentPairs emits only pairs adjacent in the consensus order
	// (skipping ties): n−1 pairs without ties.
	AdjacentPairs PairMode = "adjacent"
)

// DPOPair is one preference pair in the format TRL's DPOTrainer reads.
type DPOPair struct {
	Prompt   string `json:"prompt"`
	Chosen   string `json:"chosen"`
	Rejected string `json:"rejected"`
}

// ExportDPO turns consensus rankings into DPO pairs: for each task with a
// consensus, the instruction is the prompt, and a response ranked strictly
// better is chosen over one ranked worse. Texts are the canonical (never
// obfuscated) responses. Tasks without a consensus are skipped; a result
// naming an unknown task is an error. Pairs are ordered by task (in tasks
// order), then by the chosen response's rank, then the rejected one's.
func ExportDPO(tasks []Task, results []TaskResult, mode PairMode) ([]DPOPair, error) {
	if mode == "" {
		mode = AllPairs
	}
	if mode != AllPairs && mode != AdjacentPairs {
		return nil, fmt.Errorf("export dpo: unknown pair mode %q (want %q or %q)", mode, AllPairs, AdjacentPairs)
	}
	cons, err := consensusByTask(tasks, results)
	if err != nil {
		return nil, fmt.Errorf("export dpo: %w", err)
	}
	var pairs []DPOPair
	for _, t := range tasks {
		c := cons[t.ID]
		if c == nil {
			continue
		}
		order := orderOf(c)
		switch mode {
		case AllPairs:
			for a := range order {
				for b := a + 1; b < len(order); b++ {
					if c[order[a]] < c[order[b]] {
						pairs = append(pairs, pair(t, order[a], order[b]))
					}
				}
			}
		case AdjacentPairs:
			// Group by rank; pair each member of a group with each member
			// of the next group.
			var groups [][]int
			for i, ri := range order {
				if i == 0 || c[ri] != c[order[i-1]] {
					groups = append(groups, nil)
				}
				groups[len(groups)-1] = append(groups[len(groups)-1], ri)
			}
			for g := 0; g+1 < len(groups); g++ {
				for _, a := range groups[g] {
					for _, b := range groups[g+1] {
						pairs = append(pairs, pair(t, a, b))
					}
				}
			}
		}
	}
	return pairs, nil
}

func pair(t Task, chosen, rejected int) DPOPair {
	return DPOPair{Prompt: t.Instruction, Chosen: t.Responses[chosen].Text, Rejected: t.Responses[rejected].Text}
}

// orderOf returns canonical indexes sorted best first (stable on ties).
func orderOf(ranks []float64) []int {
	order := make([]int, len(ranks))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return ranks[order[a]] < ranks[order[b]] })
	return order
}

func consensusByTask(tasks []Task, results []TaskResult) (map[string][]float64, error) {
	n := map[string]int{}
	for _, t := range tasks {
		n[t.ID] = len(t.Responses)
	}
	out := map[string][]float64{}
	for _, r := range results {
		want, ok := n[r.TaskID]
		if !ok {
			return nil, fmt.Errorf("result names unknown task %s", r.TaskID)
		}
		if r.Consensus == nil {
			continue
		}
		if len(r.Consensus) != want {
			return nil, fmt.Errorf("task %s: consensus of %d ranks for %d responses", r.TaskID, len(r.Consensus), want)
		}
		out[r.TaskID] = r.Consensus
	}
	return out, nil
}

// RankingRecord is one line of the rankings export: a task, its responses
// best first by consensus, and the agreement figures behind it.
type RankingRecord struct {
	TaskID      string         `json:"task_id"`
	Source      string         `json:"source"`
	Instruction string         `json:"instruction"`
	Criteria    Criteria       `json:"criteria"`
	Responses   []RankedAnswer `json:"responses"`
	Raters      int            `json:"raters"`
	Trusted     int            `json:"trusted"`
	// ICC2 is ICC(2,1) over the consensus raters.
	ICC2 *float64 `json:"icc2,omitempty"`
	// ConsensusCloseness is 1 − Kendall tau distance to the ground truth.
	ConsensusCloseness *float64 `json:"consensus_closeness,omitempty"`
	// MeanAgreement is the mean of the raters' agreement A.
	MeanAgreement *float64 `json:"mean_agreement,omitempty"`
}

// RankedAnswer is one response in a RankingRecord.
type RankedAnswer struct {
	ID   string `json:"id"`
	Text string `json:"text"`
	// Rank is the consensus rank (1 = best; ties averaged).
	Rank float64 `json:"rank"`
	// GroundTruthRank is the synthetic rank, 0 for organic tasks.
	GroundTruthRank int `json:"ground_truth_rank,omitempty"`
}

// ExportRankings returns one record per task with a consensus, in tasks
// order.
func ExportRankings(tasks []Task, results []TaskResult) ([]RankingRecord, error) {
	byTask := map[string]TaskResult{}
	if _, err := consensusByTask(tasks, results); err != nil {
		return nil, fmt.Errorf("export rankings: %w", err)
	}
	for _, r := range results {
		byTask[r.TaskID] = r
	}
	var out []RankingRecord
	for _, t := range tasks {
		r, ok := byTask[t.ID]
		if !ok || r.Consensus == nil {
			continue
		}
		rec := RankingRecord{
			TaskID: t.ID, Source: t.Source, Instruction: t.Instruction, Criteria: t.Criteria,
			Raters: r.Raters, Trusted: r.Trusted, ICC2: r.ICC2, ConsensusCloseness: r.ConsensusCloseness,
		}
		var sum float64
		var n int
		for _, m := range r.Miners {
			if m.Agreement != nil {
				sum += *m.Agreement
				n++
			}
		}
		if n > 0 {
			mean := sum / float64(n)
			rec.MeanAgreement = &mean
		}
		for _, i := range orderOf(r.Consensus) {
			a := RankedAnswer{ID: t.Responses[i].ID, Text: t.Responses[i].Text, Rank: r.Consensus[i]}
			if t.GroundTruth != nil {
				a.GroundTruthRank = t.GroundTruth[i]
			}
			rec.Responses = append(rec.Responses, a)
		}
		out = append(out, rec)
	}
	return out, nil
}

// WriteJSONL writes one JSON value per line.
func WriteJSONL[T any](w io.Writer, records []T) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i, r := range records {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write jsonl: record %d: %w", i, err)
		}
	}
	return nil
}

// CSVHeader is the header row of WriteCSV.
var CSVHeader = []string{"task_id", "source", "response_id", "consensus_rank", "ground_truth_rank", "raters", "trusted", "icc2", "instruction", "response"}

// WriteCSV writes one row per (task, response) of the tasks with a
// consensus, best first; empty cells mean "not available".
func WriteCSV(w io.Writer, tasks []Task, results []TaskResult) error {
	recs, err := ExportRankings(tasks, results)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, r := range recs {
		icc := ""
		if r.ICC2 != nil {
			icc = strconv.FormatFloat(*r.ICC2, 'g', -1, 64)
		}
		for _, a := range r.Responses {
			gt := ""
			if a.GroundTruthRank > 0 {
				gt = strconv.Itoa(a.GroundTruthRank)
			}
			row := []string{r.TaskID, r.Source, a.ID, strconv.FormatFloat(a.Rank, 'g', -1, 64), gt,
				strconv.Itoa(r.Raters), strconv.Itoa(r.Trusted), icc, r.Instruction, a.Text}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
