package tasktest_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"crucible/internal/baseline"
	"crucible/internal/eval/task"
	"crucible/internal/eval/task/tasktest"
	"crucible/internal/inference"
)

func load(t *testing.T, path string) (*task.Config, *task.Data) {
	t.Helper()
	c, err := task.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.LoadData("", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return c, d
}

func serve(t *testing.T, cfg tasktest.Config) *inference.Client {
	t.Helper()
	ps, err := tasktest.Policies(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(baseline.New(baseline.Config{Policies: ps}))
	t.Cleanup(srv.Close)
	cl, err := inference.New(inference.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// scoreLL scores every item over HTTP as the task evaluator does: one echoed
// completion per choice, ContinuationLL, ScoreLL; it returns each metric's
// mean.
func scoreLL(t *testing.T, cl *inference.Client, model string, c *task.Config, items []task.Item) map[string]float64 {
	t.Helper()
	sum := map[string]float64{}
	for _, it := range items {
		var lls []task.LL
		for _, r := range it.Requests {
			resp, err := cl.Completion(context.Background(), r.LLRequest(model))
			if err != nil {
				t.Fatal(err)
			}
			ll, err := task.ContinuationLL(r.Prompt, *resp)
			if err != nil {
				t.Fatalf("item %d: %v", it.Index, err)
			}
			lls = append(lls, ll)
		}
		s, err := c.ScoreLL(it, lls)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range s {
			sum[k] += v
		}
	}
	for k := range sum {
		sum[k] /= float64(len(items))
	}
	return sum
}

func TestOracleAndFirstScoreSocialIQaAsExpected(t *testing.T) {
	c, d := load(t, "../testdata/social_iqa.yaml")
	cl := serve(t, tasktest.Config{Policies: []string{"oracle", "first", "random"}, Task: c, Data: d})
	// Few-shot prompts drawn with a seed the server never saw: items are
	// recognised by the end of the prompt.
	for _, shots := range []int{0, 2} {
		items, err := c.Items(&task.Data{Eval: d.Eval, Fewshot: d.Eval, SameSplit: true}, shots, 99)
		if err != nil {
			t.Fatal(err)
		}
		// Labels "1" in the sample: 7 of 20 (testdata/README.md).
		for model, want := range map[string]float64{"baseline-oracle": 1, "baseline-first": 7.0 / 20} {
			got := scoreLL(t, cl, model, c, items)
			if got["acc,none"] != want || got["acc_norm,none"] != want {
				t.Errorf("%d-shot %s: %v, want acc and acc_norm %v", shots, model, got, want)
			}
		}
	}
}

func TestRandomIsFixedBySeedAndItem(t *testing.T) {
	c, d := load(t, "../testdata/social_iqa.yaml")
	items, err := c.Items(d, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	picks := func(seed uint64) string {
		ps, err := tasktest.Policies(tasktest.Config{Policies: []string{"random"}, Task: c, Data: d, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, it := range items {
			reply, err := ps[0].Policy.Chat([]inference.ChatMessage{{Role: "user", Content: it.Prompt + "\n"}})
			if err != nil {
				t.Fatal(err)
			}
			for k, ch := range it.Choices {
				if ch == reply {
					b.WriteByte(byte('0' + k))
				}
			}
		}
		return b.String()
	}
	a := picks(1)
	if len(a) != len(items) || a != picks(1) || a == picks(2) || strings.Count(a, "0") == len(a) {
		t.Fatalf("random picks %q (seed 2: %q): want one fixed, varied choice per item, changing with the seed", a, picks(2))
	}
}

func TestOracleAnswersGSM8KInTheFormItsFiltersExtract(t *testing.T) {
	c, d := load(t, "../testdata/gsm8k.yaml")
	cl := serve(t, tasktest.Config{Policies: []string{"oracle", "first"}, Task: c, Data: d})
	items, err := c.Items(d, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		for model, want := range map[string]float64{"baseline-oracle": 1, "baseline-first": 0} {
			resp, err := cl.Chat(context.Background(), inference.ChatRequest{Model: model,
				Messages: []inference.ChatMessage{{Role: "user", Content: it.Prompt}}})
			if err != nil {
				t.Fatal(err)
			}
			s := c.ScoreGen(it, []string{resp.Choices[0].Message.Content})
			// The first item's own answer is right under first.
			if it.Index == 0 && model == "baseline-first" {
				want = 1
			}
			if s["exact_match,strict-match"] != want || s["exact_match,flexible-extract"] != want {
				t.Errorf("item %d %s: %v, want %v", it.Index, model, s, want)
			}
		}
	}
	_, err = cl.Chat(context.Background(), inference.ChatRequest{Model: "baseline-oracle",
		Messages: []inference.ChatMessage{{Role: "user", Content: "Question: what is 2+2?\nAnswer:"}}})
	var se *inference.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown prompt: %v, want a 404", err)
	}
}

func TestReplayAnswersTheLongestMatchAndScoresThroughTheFilters(t *testing.T) {
	f, err := os.Open("testdata/gsm8k_responses.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	resps, err := tasktest.ReadResponses(f)
	if err != nil {
		t.Fatal(err)
	}
	c, d := load(t, "../testdata/gsm8k.yaml")
	items, err := c.Items(d, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	cl := serve(t, tasktest.Config{Policies: []string{"replay"}, Responses: resps})
	// Verdicts worked by hand (strict, flexible):
	//  0 "#### 18": both extract 18.
	//  1 no "####": strict gives "[invalid]"; flexible's last match is "3.",
	//    whose final "." regexes_to_ignore removes: 3.
	//  2 "70,000" both ways; "," is ignored: 70000.
	//  3 the longer match wins; cut at "Question:", so 450 both ways (540 is
	//    after the cut).
	want := [][2]float64{{1, 1}, {0, 1}, {1, 1}, {0, 0}}
	for k, w := range want {
		it := items[k]
		resp, err := cl.Completion(context.Background(), inference.CompletionRequest{Model: "baseline-replay", Prompt: it.Prompt, MaxTokens: 256})
		if err != nil {
			t.Fatal(err)
		}
		s := c.ScoreGen(it, []string{resp.Choices[0].Text})
		if got := [2]float64{s["exact_match,strict-match"], s["exact_match,flexible-extract"]}; got != w {
			t.Errorf("item %d: (strict, flexible) = %v, want %v (response %q)", k, got, w, resp.Choices[0].Text)
		}
	}
	_, err = cl.Completion(context.Background(), inference.CompletionRequest{Model: "baseline-replay", Prompt: items[4].Prompt})
	var se *inference.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound || !strings.Contains(se.Message, "no recorded response") {
		t.Fatalf("unmatched prompt: %v, want a 404", err)
	}
}

func TestReadResponsesRefusesBadFiles(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"match": "", "response": "x"}`, "line 1: match must not be empty"},
		{"{\"match\": \"a\", \"response\": \"x\"}\n{\"match\": \"a\", \"response\": \"y\"}", `line 2: match "a" repeats line 1`},
		{`{"match": "a", "reply": "x"}`, "unknown field"},
	} {
		if _, err := tasktest.ReadResponses(strings.NewReader(tt.in)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestPoliciesNeedTheirInputs(t *testing.T) {
	for _, tt := range []struct {
		cfg  tasktest.Config
		want string
	}{
		{tasktest.Config{Policies: []string{"oracle"}}, "needs a task"},
		{tasktest.Config{Policies: []string{"replay"}}, "needs responses"},
		{tasktest.Config{Policies: []string{"overlap"}}, `unknown task policy "overlap"`},
	} {
		if _, err := tasktest.Policies(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want %q", tt.cfg.Policies, err, tt.want)
		}
	}
}
