package presets_test

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"crucible/internal/eval/mcq"
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

// TestTheMCQVariantRendersTheMCQKindsPrompt: social_iqa:mcq is the Social
// IQa schema and the mcq kind's default prompt as a task file. Over every
// shipped row it renders the prompt, choices and gold answer that
// mcq.Parse and mcq.Render give, so a multiple_choice run of it asks what
// an mcq loglik competition asks (its requests: " <choice>" after the
// prompt).
func TestTheMCQVariantRendersTheMCQKindsPrompt(t *testing.T) {
	if got := presets.Variants("social_iqa"); !slices.Equal(got, []string{"social_iqa:mcq"}) {
		t.Fatalf("Variants(social_iqa) = %v", got)
	}
	cfg, d, err := presets.Load("social_iqa:mcq")
	if err != nil {
		t.Fatal(err)
	}
	items, err := cfg.Items(d, 0, task.Seed)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("data/siqa-sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := mcq.Parse(bytes.NewReader(src), "siqa")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != len(ds.Items) || len(items) != 300 {
		t.Fatalf("%d items, mcq parses %d", len(items), len(ds.Items))
	}
	tmpl := mcq.MustDefaultTemplate()
	for i, it := range items {
		m := ds.Items[i]
		prompt, err := mcq.Render(tmpl, m)
		if err != nil {
			t.Fatal(err)
		}
		if it.Prompt != prompt || !slices.Equal(it.Choices, m.Choices) || it.Gold != m.Answer {
			t.Fatalf("item %d: task renders %q %q gold %d; mcq %q %q gold %d", i, it.Prompt, it.Choices, it.Gold, prompt, m.Choices, m.Answer)
		}
		for k, r := range it.Requests {
			if r.Prompt != prompt || r.Continuation != " "+m.Choices[k] {
				t.Fatalf("item %d request %d: %q + %q", i, k, r.Prompt, r.Continuation)
			}
		}
	}
	if _, _, err := presets.Load("social_iqa:nosuch"); err == nil || !strings.Contains(err.Error(), "variants of social_iqa: social_iqa:mcq") {
		t.Errorf("unknown variant: %v", err)
	}
}
