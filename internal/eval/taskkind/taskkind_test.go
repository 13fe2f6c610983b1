package taskkind

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/task"
	"crucible/internal/kind"
)

func taskSpec(t *testing.T, src competition.TaskSource, dataset string) kind.Spec {
	t.Helper()
	raw, err := json.Marshal(src)
	if err != nil {
		t.Fatal(err)
	}
	return kind.Spec{Title: "t", DatasetName: "rows", Dataset: []byte(dataset), Options: map[string]json.RawMessage{"task": raw}}
}

// TestPrepareTaskReadsAPresetOrAFileWithItsRows: a preset brings its rows,
// sent rows replace them, and a task file's rows must be sent; the stored
// configuration parses back into the same task, which Components reads.
func TestPrepareTaskReadsAPresetOrAFileWithItsRows(t *testing.T) {
	ctx := context.Background()
	p, err := Task{}.Prepare(ctx, taskSpec(t, competition.TaskSource{Preset: "social_iqa"}, ""))
	if err != nil || len(p.Items) != 300 {
		t.Fatalf("preset: %d items, %v; want its 300 rows", len(p.Items), err)
	}
	row := `{"context": "c", "question": "q?", "answerA": "a", "answerB": "b", "answerC": "x", "label": "2"}` + "\n"
	text, err := os.ReadFile("../task/presets/social_iqa.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := competition.TaskSource{File: "siqa.yaml", YAML: string(text)}
	if _, err := (Task{}).Prepare(ctx, taskSpec(t, file, "")); err == nil || !strings.Contains(err.Error(), "send the evaluation rows") {
		t.Fatalf("a task file without rows: %v; want it refused", err)
	}
	k := MaxFewshot + 1
	if _, err := (Task{}).Prepare(ctx, taskSpec(t, competition.TaskSource{Preset: "social_iqa", NumFewshot: &k}, row)); err == nil ||
		!strings.Contains(err.Error(), "num_fewshot 65 is outside") {
		t.Fatalf("num_fewshot %d: %v; want it refused", k, err)
	}
	for _, src := range []competition.TaskSource{file, {Preset: "social_iqa"}} {
		p, err := Task{}.Prepare(ctx, taskSpec(t, src, row+row))
		if err != nil || len(p.Items) != 2 {
			t.Fatalf("%+v with 2 rows: %d items, %v", src, len(p.Items), err)
		}
		var it task.Item
		if err := json.Unmarshal(p.Items[1], &it); err != nil || it.Gold != 1 || it.Target != "b" || len(it.Requests) != 3 ||
			it.Prompt != "Q: c q?\nA:" {
			t.Fatalf("item %+v, %v; want the rendered item, gold b", it, err)
		}
		c := competition.Competition{ID: "c-1", Kind: TaskName, Config: p.Config}
		var results []eval.Result
		for _, m := range []map[string]float64{{"acc,none": 1, "acc_norm,none": 0}, {"acc,none": 0, "acc_norm,none": 0}} {
			d, _ := json.Marshal(task.Detail{Metrics: m})
			results = append(results, eval.Result{Score: m["acc,none"], Correct: m["acc,none"] == 1, Detail: d})
		}
		card, _, err := Task{}.Score(c, results)
		if err != nil || card.Score != 0.5 || card.Correct != 1 {
			t.Fatalf("card %+v, %v; want 0.5 with 1 correct", card, err)
		}
		comps, err := Task{}.Components(c, results)
		if err != nil || comps["acc,none"] != 0.5 || comps["acc_norm,none"] != 0 || len(comps) != 2 {
			t.Fatalf("components %v, %v; want acc 0.5, acc_norm 0", comps, err)
		}
	}
}

// TestRenderGivesTheStoredItemsAgain: a validator rendering a stored task
// competition from its configuration gets the items and digest the hub
// stored — from the preset's own rows, or from the rows it was sent — and
// other rows give another digest.
func TestRenderGivesTheStoredItemsAgain(t *testing.T) {
	ctx := context.Background()
	row := `{"context": "c", "question": "q?", "answerA": "a", "answerB": "b", "answerC": "x", "label": "2"}` + "\n"
	one := 1
	for _, rows := range []string{"", row + row + row} {
		p, err := Task{}.Prepare(ctx, taskSpec(t, competition.TaskSource{Preset: "social_iqa", NumFewshot: &one}, rows))
		if err != nil {
			t.Fatal(err)
		}
		c := competition.Competition{ID: "c-1", Kind: TaskName, DatasetName: "rows", Config: p.Config, DatasetDigest: p.DatasetDigest}
		r, err := Task{}.Render(ctx, c, []byte(rows))
		if err != nil || r.DatasetDigest != p.DatasetDigest || len(r.Items) != len(p.Items) || string(r.Items[1]) != string(p.Items[1]) {
			t.Fatalf("rows %q: rendered digest %s (%v), stored %s", rows, r.DatasetDigest, err, p.DatasetDigest)
		}
		other, err := Task{}.Render(ctx, c, []byte(strings.Replace(rows+row, `"label": "2"`, `"label": "1"`, 1)))
		if err != nil || other.DatasetDigest == p.DatasetDigest {
			t.Fatalf("other rows: digest %s, %v; want another digest", other.DatasetDigest, err)
		}
	}
}

// A predictions competition: its entry shape, prompts without targets,
// and a file scored by Plan from the secret with no model; an unknown
// submissions value is refused.
func TestPredictionsCompetition(t *testing.T) {
	ctx := context.Background()
	k := 0
	rows := `{"question": "2+2?", "answer": "#### 4"}` + "\n" + `{"question": "3+3?", "answer": "#### 6"}` + "\n"
	gsm := competition.TaskSource{Preset: "gsm8k", NumFewshot: &k, Entries: competition.Entries{Submissions: "guesses"}}
	if _, err := (Task{}).Prepare(ctx, taskSpec(t, gsm, rows)); err == nil || !strings.Contains(err.Error(), `submissions "guesses": want "models"`) {
		t.Fatalf("submissions guesses: %v; want it refused", err)
	}
	gsm.Submissions = competition.SubmitPredictions
	p, err := Task{}.Prepare(ctx, taskSpec(t, gsm, rows))
	if err != nil {
		t.Fatal(err)
	}
	c := competition.Competition{ID: "c-1", Kind: TaskName, Config: p.Config}
	if (Task{}).EntryOf(c) != kind.EntryPredictions || (Task{}).EntryOf(competition.Competition{Config: []byte(`{"preset":"gsm8k"}`)}) != kind.EntryModel {
		t.Fatal("entry shapes")
	}
	prompts, err := Task{}.Prompts(c, p.Items)
	if err != nil || len(prompts) != 2 || prompts[1].DocID != 1 || prompts[1].Prompt != "Question: 3+3?\nAnswer:" || len(prompts[1].Until) == 0 {
		t.Fatalf("prompts %+v, %v", prompts, err)
	}
	file := `{"doc_id": 1, "response": "#### 6"}`
	sub := competition.Submission{Predictions: &competition.PredictionsSpec{Body: file + "\n" + file}}
	if err := (Task{}).ValidateEntry(c, p.Items, sub); err == nil || !strings.Contains(err.Error(), "predictions.jsonl:2: doc_id 1 again") {
		t.Fatalf("a duplicate: %v", err)
	}
	ev, err := Task{}.Plan(ctx, c, competition.Submission{Predictions: &competition.PredictionsSpec{}}, file, p.Items)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{0, 1} {
		if r, err := ev.Evaluate(ctx, i); err != nil || r.Score != want {
			t.Errorf("item %d: %+v, %v; want %v", i, r, err, want)
		}
	}
}
