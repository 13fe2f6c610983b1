package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

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

// gsm8kTask is the GSM8K task file of the task package's tests, over its
// 10 rows.
const gsm8kTask = "../../internal/eval/task/testdata/gsm8k.yaml"

// gsm8kResponses writes, for the 10 GSM8K test rows, a predictions file
// and the same responses as a replay file for `crucible model-server
// --policy replay` (each matched by its whole question), and returns the
// rows' targets. Even rows are answered right, odd rows wrong; row 2's
// right answer is followed by a "Question:" the live cut removes.
func gsm8kResponses(t *testing.T, dir string) (preds, replay string, targets []string) {
	t.Helper()
	f, err := os.Open("../../internal/eval/task/testdata/gsm8k/test.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var p, r strings.Builder
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		var row struct{ Question, Answer string }
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		targets = append(targets, row.Answer)
		_, final, _ := strings.Cut(row.Answer, "#### ")
		resp := " The answer follows.\n#### " + final
		if i%2 == 1 {
			resp = " I think it is\n#### 12345"
		}
		if i == 2 {
			resp += "\n\nQuestion: And then?\nAnswer: #### 1"
		}
		line, _ := json.Marshal(map[string]any{"doc_id": i, "response": resp})
		p.Write(append(line, '\n'))
		line, _ = json.Marshal(map[string]any{"match": row.Question, "response": resp})
		r.Write(append(line, '\n'))
	}
	preds, replay = dir+"/preds.jsonl", dir+"/replay.jsonl"
	if err := os.WriteFile(preds, []byte(p.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(replay, []byte(r.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return preds, replay, targets
}

// TestEvalPredictionsEqualsTheLiveScore: GSM8K scored from a predictions
// file gives the very report a live evaluation gives when
// `crucible model-server --policy replay` serves the same responses.
func TestEvalPredictionsEqualsTheLiveScore(t *testing.T) {
	dir := t.TempDir()
	preds, replay, _ := gsm8kResponses(t, dir)
	addr := startModelServer(t, "--task", gsm8kTask, "--policy", "replay", "--responses", replay)
	live, stderr, code := crucible(t, "eval", "--task", gsm8kTask, "--num-fewshot", "0", "--base-url", "http://"+addr+"/v1",
		"--model", "baseline-replay", "--json")
	if code != 0 {
		t.Fatalf("live eval exited %d: %s", code, stderr)
	}
	fromFile, stderr, code := crucible(t, "eval", "--task", gsm8kTask, "--num-fewshot", "0", "--predictions", preds, "--json")
	if code != 0 {
		t.Fatalf("eval --predictions exited %d: %s", code, stderr)
	}
	var rep struct {
		Score   float64 `json:"score"`
		Items   int     `json:"items"`
		Missing int     `json:"missing"`
	}
	if err := json.Unmarshal([]byte(fromFile), &rep); err != nil {
		t.Fatal(err)
	}
	if fromFile != live || rep.Score != 0.5 || rep.Items != 10 || rep.Missing != 0 {
		t.Errorf("from the file:\n%s\nlive:\n%s\nwant the same report, score 0.5 of 10 items", fromFile, live)
	}

	// A missing doc scores 0 and is counted; --limit scores the first N.
	lines := strings.SplitAfter(readFile(t, preds), "\n")
	short := dir + "/short.jsonl"
	if err := os.WriteFile(short, []byte(strings.Join(lines[2:], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := crucible(t, "eval", "--task", gsm8kTask, "--num-fewshot", "0", "--predictions", short, "--limit", "4", "--json")
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || rep.Score != 0.25 || rep.Items != 4 || rep.Missing != 2 {
		t.Errorf("without docs 0 and 1, limit 4: exit %d %s %s; want 0.25 with 2 missing", code, out, stderr)
	}

	dup := dir + "/dup.jsonl"
	if err := os.WriteFile(dup, []byte(lines[0]+lines[1]+lines[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--task", gsm8kTask, "--predictions", dup}, "dup.jsonl:3: doc_id 0 again (first on line 1)"},
		{[]string{"--task", "social_iqa", "--predictions", preds}, "a predictions file scores generate_until tasks only"},
		{[]string{"--task", gsm8kTask, "--predictions", preds, "--model", "m"}, "without --base-url and --model"},
	} {
		if _, stderr, code := crucible(t, append([]string{"eval"}, tc.args...)...); code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("eval %v: exit %d, %q; want %q", tc.args, code, stderr, tc.want)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startModelServer runs `crucible model-server` with args in-process until
// the test ends and returns its address once it lists its models.
func startModelServer(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := freeAddr(t)
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		var out bytes.Buffer
		done <- run(ctx, append([]string{"model-server", "--listen", addr}, args...), &out, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("model-server exited %d: %s", code, stderr.String())
		}
	})
	cl, err := inference.New(inference.Config{BaseURL: "http://" + addr + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := cl.Models(context.Background()); err == nil {
			return addr
		}
		select {
		case code := <-done:
			t.Fatalf("model-server exited %d: %s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
