package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"crucible/internal/inference"
)

const siqaPreset = "../../internal/eval/task/presets/data/siqa-sample.jsonl"

// siqaRows reads the first n rows of the social_iqa preset's data.
func siqaRows(t *testing.T, n int) []map[string]string {
	t.Helper()
	f, err := os.Open(siqaPreset)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(rows) < n {
		var r map[string]string
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	return rows
}

func TestTaskListShowsThePresets(t *testing.T) {
	out, stderr, code := crucible(t, "task", "list", "--json")
	if code != 0 {
		t.Fatalf("task list exited %d: %s", code, stderr)
	}
	var list []struct {
		Name       string `json:"name"`
		OutputType string `json:"output_type"`
		Rows       int    `json:"rows"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "gsm8k" || list[0].OutputType != "generate_until" || list[0].Rows != 50 ||
		list[1].Name != "social_iqa" || list[1].OutputType != "multiple_choice" || list[1].Rows != 300 {
		t.Errorf("task list: %+v", list)
	}
	if _, stderr, code := crucible(t, "task", "render", "--task", "nosuch"); code == 0 || !strings.Contains(stderr, "gsm8k, social_iqa") {
		t.Errorf("unknown task: exit %d, %s", code, stderr)
	}
}

func TestTaskRenderPrintsWhatTheModelIsSent(t *testing.T) {
	out, stderr, code := crucible(t, "task", "render", "--task", "social_iqa", "--index", "0", "--json")
	if code != 0 {
		t.Fatalf("task render exited %d: %s", code, stderr)
	}
	var got struct {
		Prompt  string   `json:"prompt"`
		Choices []string `json:"choices"`
		Target  string   `json:"target"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	r := siqaRows(t, 1)[0]
	gold := map[string]string{"1": r["answerA"], "2": r["answerB"], "3": r["answerC"]}[r["label"]]
	if got.Prompt != "Q: "+r["context"]+" "+r["question"]+"\nA:" || len(got.Choices) != 3 || got.Choices[1] != r["answerB"] || got.Target != gold {
		t.Errorf("render: %+v, row %v", got, r)
	}
	out, stderr, code = crucible(t, "task", "render", "--task", "gsm8k", "--index", "3", "--num-fewshot", "2", "--json")
	if code != 0 {
		t.Fatalf("task render gsm8k exited %d: %s", code, stderr)
	}
	var gen map[string]any
	if err := json.Unmarshal([]byte(out), &gen); err != nil {
		t.Fatal(err)
	}
	if p, _ := gen["prompt"].(string); strings.Count(p, "Question:") != 3 || gen["until"] == nil || gen["choices"] != nil {
		t.Errorf("gsm8k 2-shot render: %v", gen)
	}
}

// A completions server whose echoed log-probabilities favour answerB scores
// exactly the share of items whose gold is answerB.
func TestEvalTaskScoresAgainstACompletionsServer(t *testing.T) {
	const n = 40
	rows := siqaRows(t, n)
	favoured, gold := map[string]bool{}, 0
	for _, r := range rows {
		favoured["Q: "+r["context"]+" "+r["question"]+"\nA: "+r["answerB"]] = true
		if r["label"] == "2" {
			gold++
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req inference.CompletionRequest
		if r.URL.Path != "/v1/completions" || json.NewDecoder(r.Body).Decode(&req) != nil || !req.Echo {
			http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		// One token per code point, the first unscored, as an echo does.
		lp, v := &inference.Logprobs{}, -1.0
		if favoured[req.Prompt] {
			v = -0.001
		}
		k := 0
		for _, c := range req.Prompt {
			lp.Tokens = append(lp.Tokens, string(c))
			lp.TextOffset = append(lp.TextOffset, k)
			p := &v
			if k == 0 {
				p = nil
			}
			lp.TokenLogprobs = append(lp.TokenLogprobs, p)
			k++
		}
		_ = json.NewEncoder(w).Encode(inference.CompletionResponse{Object: "text_completion",
			Choices: []inference.CompletionChoice{{Text: req.Prompt, Logprobs: lp}}})
	}))
	defer srv.Close()
	out, stderr, code := crucible(t, "eval", "--task", "social_iqa", "--limit", "40", "--base-url", srv.URL+"/v1", "--model", "m", "--json")
	if code != 0 {
		t.Fatalf("eval --task exited %d: %s", code, stderr)
	}
	var rep struct {
		Score   float64 `json:"score"`
		CILow   float64 `json:"ci_low"`
		CIHigh  float64 `json:"ci_high"`
		Items   int     `json:"items"`
		Metrics map[string]struct {
			Value float64 `json:"value"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	want := float64(gold) / n
	if rep.Score != want || rep.Items != n || rep.Metrics["acc,none"].Value != want || rep.Metrics["acc_norm,none"].Value != want ||
		rep.CILow > want || rep.CIHigh < want {
		t.Errorf("eval --task: %s, want score %v", out, want)
	}
}

// --task with --kind patch is still the patch instance to judge.
func TestEvalKindPatchKeepsItsTaskFlag(t *testing.T) {
	_, stderr, code := crucible(t, "eval", "--kind", "patch", "--task", "repo__1")
	if code != 2 || !strings.Contains(stderr, "--kind patch needs --tasks FILE") {
		t.Errorf("eval --kind patch --task: exit %d, %s", code, stderr)
	}
	_, stderr, code = crucible(t, "eval", "--task=social_iqa", "--base-url", "http://127.0.0.1:1/v1")
	if code != 2 || !strings.Contains(stderr, "--base-url and --model are required") {
		t.Errorf("eval --task= without --model: exit %d, %s", code, stderr)
	}
}
