package node_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"crucible/internal/api/apiv1"
	"crucible/internal/baseline"
	"crucible/internal/competition"
	"crucible/internal/consensus"
	"crucible/internal/eval/task"
	"crucible/internal/eval/task/presets"
	"crucible/internal/eval/task/tasktest"
	"crucible/internal/validator/node"
)

// taskHub is a hub with a task competition (the social_iqa preset, 1-shot,
// over rows sent at creation) and a baseline server answering it as the
// oracle, first and random policies.
func taskHub(t *testing.T) (*roleplayHub, []byte) {
	t.Helper()
	sample, err := os.ReadFile("../../eval/task/presets/data/siqa-sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(sample, []byte("\n"))
	rows := bytes.Join(lines[:8], nil)
	cfg, _, err := presets.Load("social_iqa")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := task.ReadJSONL("rows", bytes.NewReader(rows))
	if err != nil {
		t.Fatal(err)
	}
	policies, err := tasktest.Policies(tasktest.Config{Policies: []string{tasktest.PolicyOracle, tasktest.PolicyFirst, tasktest.PolicyRandom},
		Task: cfg, Data: &task.Data{Eval: docs, Fewshot: docs, SameSplit: true}, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	models := httptest.NewServer(baseline.New(baseline.Config{Policies: policies}))
	t.Cleanup(models.Close)
	h := newClockHub(t, consensus.Config{})
	h.modelURL = models.URL + "/v1"
	one := 1
	h.comp, err = h.client(t, h.admin).CreateCompetition(context.Background(), apiv1.CreateCompetitionRequest{Kind: "task", Title: "siqa",
		DatasetName: "rows", Dataset: string(rows), Task: &competition.TaskSource{Preset: "social_iqa", NumFewshot: &one}})
	if err != nil {
		t.Fatal(err)
	}
	return h, rows
}

// TestAValidatorScoresATaskCompetitionAsTheHub: a validator renders a task
// competition's items itself from the stored task and its own copy of the
// rows, evaluates each miner's model on them and weighs the miners exactly
// as a validator reading the hub's results does.
func TestAValidatorScoresATaskCompetitionAsTheHub(t *testing.T) {
	ctx := context.Background()
	h, rows := taskHub(t)
	uids := map[string]int64{}
	for _, p := range []string{tasktest.PolicyOracle, tasktest.PolicyFirst, tasktest.PolicyRandom} {
		uid, s := h.miner(t, h.modelURL, baseline.ModelPrefix+p)
		uids[p] = uid
		h.store(t, s, h.hubResults(t, s))
	}
	own, _ := h.validator(t, 10, node.Config{Rows: rows})
	trusting, _ := h.validator(t, 10, node.Config{TrustHubResults: true})
	wOwn, err := own.Weights(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wHub, err := trusting.Weights(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(wOwn) != 3 || !maps.Equal(wOwn, wHub) {
		t.Fatalf("own weights %v, from the hub's results %v: want the same three", wOwn, wHub)
	}
	if !(wOwn[uids[tasktest.PolicyOracle]] > wOwn[uids[tasktest.PolicyFirst]]) {
		t.Fatalf("weights %v: the oracle should outweigh the first-choice model", wOwn)
	}
}

// TestATaskValidatorRefusesItemsThatAreNotTheCompetitions: rows that differ
// from the competition's in one choice, or no rows (the preset's own 300),
// render items whose digest is not the competition's: the validator
// refuses to start rather than evaluate other items.
func TestATaskValidatorRefusesItemsThatAreNotTheCompetitions(t *testing.T) {
	h, rows := taskHub(t)
	h.miner(t, h.modelURL, baseline.ModelPrefix+tasktest.PolicyOracle)
	first := bytes.IndexByte(rows, '\n')
	other := append(bytes.Replace(rows[:first], []byte(`"answerA": "`), []byte(`"answerA": "not `), 1), rows[first:]...)
	for name, own := range map[string][]byte{"changed rows": other, "no rows": nil} {
		n, _ := h.validator(t, 10, node.Config{Rows: own})
		if _, err := n.Weights(context.Background()); !errors.Is(err, node.ErrCannotEvaluate) || !strings.Contains(err.Error(), "not the same items") {
			t.Fatalf("%s: %v; want ErrCannotEvaluate, not the same items", name, err)
		}
	}
}
