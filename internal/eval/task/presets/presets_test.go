package presets_test

import (
	"slices"
	"strings"
	"testing"

	"crucible/internal/eval/task"
	"crucible/internal/eval/task/presets"
)

func TestPresetsLoadWithTheirData(t *testing.T) {
	if got := presets.Names(); !slices.Equal(got, []string{"gsm8k", "social_iqa"}) {
		t.Fatalf("Names() = %v", got)
	}
	for name, want := range map[string]struct {
		out  string
		rows int
	}{"social_iqa": {task.MultipleChoice, 300}, "gsm8k": {task.GenerateUntil, 50}} {
		cfg, d, err := presets.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.OutputType != want.out || len(d.Eval) != want.rows {
			t.Errorf("%s: %s with %d rows, want %s with %d", name, cfg.OutputType, len(d.Eval), want.out, want.rows)
		}
		// Every row renders: the shipped files are valid for their task.
		items, err := cfg.Items(d, cfg.NumFewshot, 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(items) != want.rows {
			t.Errorf("%s: %d items", name, len(items))
		}
	}
	cfg, d, err := presets.Load("social_iqa")
	if err != nil {
		t.Fatal(err)
	}
	items, err := cfg.Items(d, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	doc := d.Eval[0].Doc
	if want := "Q: " + doc["context"].(string) + " " + doc["question"].(string) + "\nA:"; items[0].Prompt != want {
		t.Errorf("prompt %q, want %q", items[0].Prompt, want)
	}
}

func TestOpenReadsAFileOrAPresetAndRefusesUnknownNames(t *testing.T) {
	_, _, err := presets.Open("nosuch", "", "", 0)
	if err == nil || !strings.Contains(err.Error(), "gsm8k, social_iqa") {
		t.Errorf("unknown preset: %v, want the list of presets", err)
	}
	cfg, d, err := presets.Open("../testdata/social_iqa.yaml", "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Task != "social_iqa" || len(d.Eval) != 20 {
		t.Errorf("file: task %q, %d rows", cfg.Task, len(d.Eval))
	}
	// --data replaces a preset's rows, and the few-shot pool with them.
	rows := "../testdata/gsm8k/test.jsonl"
	_, d, err = presets.Open("gsm8k", rows, "", 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Eval) != 10 || len(d.Fewshot) != 10 || !d.SameSplit {
		t.Errorf("--data: %d eval rows, %d few-shot (same split %v)", len(d.Eval), len(d.Fewshot), d.SameSplit)
	}
	_, d, err = presets.Open("gsm8k", "", rows, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Eval) != 50 || len(d.Fewshot) != 10 || d.SameSplit {
		t.Errorf("--fewshot-data: %d eval rows, %d few-shot (same split %v)", len(d.Eval), len(d.Fewshot), d.SameSplit)
	}
}
