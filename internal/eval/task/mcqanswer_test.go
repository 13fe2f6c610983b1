package task

import (
	"strings"
	"testing"
)

// mcqGenTask is Social IQa asked generatively, answers read by mcq_answer.
const mcqGenTask = `task: siqa_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: rows.jsonl
output_type: generate_until
test_split: test
doc_to_text: "{{context}} {{question}}\nA) {{answerA}}\nB) {{answerB}}\nC) {{answerC}}\nAnswer:"
doc_to_choice: "{{[answerA, answerB, answerC]}}"
doc_to_target: "{{ (label|int) - 1 }}"
filter_list:
  - name: mcq
    filter:
      - function: mcq_answer
      - function: take_first
`

// TestMCQAnswerReadsAnswersAsTheMCQKind: the mcq_answer filter turns a
// free-text answer into the choice ExtractChoice finds (the mcq kind's
// generative reading), so exact_match against the gold choice scores 1
// exactly when the mcq kind counts the answer correct.
func TestMCQAnswerReadsAnswersAsTheMCQKind(t *testing.T) {
	cfg, err := Parse("siqa_gen.yaml", []byte(mcqGenTask))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ReadJSONL("rows.jsonl", strings.NewReader(`{"context": "Tracy resisted.", "question": "What next?", "answerA": "make a new plan", "answerB": "Go home and see Riley", "answerC": "Find somewhere to go", "label": "3"}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	items, err := cfg.Items(&Data{Eval: rows}, 0, Seed)
	if err != nil {
		t.Fatal(err)
	}
	it := items[0]
	for _, tc := range []struct {
		resp, answer string
		score        float64
	}{
		{"C", "Find somewhere to go", 1},
		{"The answer is (c).", "Find somewhere to go", 1},
		{"<think>A or C?</think> Answer: 3", "Find somewhere to go", 1},
		{"I'd go home and see Riley.", "Go home and see Riley", 0},
		{"B) Go home and see Riley", "Go home and see Riley", 0},
		{"no idea", DefaultFallback, 0},
	} {
		idx, ok := ExtractChoice(tc.resp, it.Choices)
		if got := cfg.Answer(it, []string{tc.resp}); got != tc.answer {
			t.Errorf("%q: answer %q, want %q", tc.resp, got, tc.answer)
		}
		score := cfg.ScoreGen(it, []string{tc.resp})["exact_match,mcq"]
		if score != tc.score || (score == 1) != (ok && it.Choices[idx] == it.Target) {
			t.Errorf("%q: exact_match %v, want %v (ExtractChoice %d, %v; target %q)", tc.resp, score, tc.score, idx, ok, it.Target)
		}
	}
	noChoices := strings.Replace(mcqGenTask, "doc_to_choice: \"{{[answerA, answerB, answerC]}}\"\n", "", 1)
	if _, err := Parse("siqa_gen.yaml", []byte(noChoices)); err == nil || !strings.Contains(err.Error(), "siqa_gen.yaml:11: filter mcq: mcq_answer reads answers against the choices") {
		t.Errorf("mcq_answer without doc_to_choice: %v", err)
	}
}
