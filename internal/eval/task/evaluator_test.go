package task

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"crucible/internal/eval"
	"crucible/internal/eval/runner"
	"crucible/internal/inference"
)

// completionServer answers /v1/completions as an OpenAI-compatible server
// does. An echo request gets one token per code point, each with
// log-probability -1, or -0.001 when the whole text is in favoured; a
// generation request gets generation as its text. It records the requests.
type completionServer struct {
	favoured map[string]bool
	// base replaces -1 as the log-probability of a text not favoured.
	base       float64
	generation string
	mu         sync.Mutex
	reqs       []inference.CompletionRequest
}

func (s *completionServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req inference.CompletionRequest
	if r.URL.Path != "/v1/completions" || json.NewDecoder(r.Body).Decode(&req) != nil {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	ch := inference.CompletionChoice{Text: s.generation, FinishReason: "length"}
	if req.Echo {
		lp, v := &inference.Logprobs{}, -1.0
		if s.base != 0 {
			v = s.base
		}
		if s.favoured[req.Prompt] {
			v = -0.001
		}
		off := 0
		for k, r := range req.Prompt {
			lp.Tokens = append(lp.Tokens, string(r))
			lp.TextOffset = append(lp.TextOffset, off)
			var p *float64
			if k > 0 {
				p = &v
			}
			lp.TokenLogprobs = append(lp.TokenLogprobs, p)
			off++
		}
		ch = inference.CompletionChoice{Text: req.Prompt, Logprobs: lp, FinishReason: "length"}
	}
	_ = json.NewEncoder(w).Encode(inference.CompletionResponse{Object: "text_completion", Model: req.Model,
		Choices: []inference.CompletionChoice{ch}, Usage: inference.Usage{PromptTokens: utf8.RuneCountInString(req.Prompt)}})
}

func (s *completionServer) client(t *testing.T) *inference.Client {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := inference.New(inference.Config{BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func run(t *testing.T, cfg *Config, items []Item, c *inference.Client) *Report {
	t.Helper()
	return runEvaluator(t, cfg, NewEvaluator(cfg, items, c, "m"))
}

// runEvaluator runs ev over every item and summarizes the results.
func runEvaluator(t *testing.T, cfg *Config, ev eval.Evaluator) *Report {
	t.Helper()
	results := make([]eval.Result, ev.Len())
	err := runner.Run(context.Background(), ev, runner.Config{Concurrency: 4, Sink: func(r eval.Result) error {
		results[r.Index] = r
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := cfg.Summarize(results)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// A server that favours the second choice scores acc 1 exactly on the
// items whose gold is the second choice, and says so in Detail.
func TestEvaluatorScoresMultipleChoiceFromEchoedLogprobs(t *testing.T) {
	cfg, items := loadTask(t, "testdata/social_iqa.yaml", 0)
	s := &completionServer{favoured: map[string]bool{}}
	for _, it := range items {
		s.favoured[it.Requests[1].Prompt+it.Requests[1].Continuation] = true
	}
	rep := run(t, cfg, items, s.client(t))
	res := rep.Results
	correct := 0
	for k, r := range res {
		var d Detail
		if err := json.Unmarshal(r.Detail, &d); err != nil {
			t.Fatal(err)
		}
		want := items[k].Gold == 1
		if r.Correct != want || r.Score != b2f(want) || d.Metrics["acc,none"] != b2f(want) || d.Metrics["acc_norm,none"] != b2f(want) {
			t.Errorf("item %d: %+v %+v, want correct %v", k, r, d, want)
		}
		if d.Answer != items[k].Choices[1] || r.Prediction != d.Answer || len(d.LL) != 3 || r.Prompt != items[k].Prompt {
			t.Errorf("item %d: answer %q, loglik %v", k, d.Answer, d.LL)
		}
		if want {
			correct++
		}
	}
	if correct != 9 { // label shares 7 / 9 / 4 (testdata/README.md)
		t.Errorf("%d items with gold B, want 9", correct)
	}
	m := rep.Metrics["acc_norm,none"]
	if rep.Score != 9.0/20 || rep.Items != 20 || m.Value != 9.0/20 || !(rep.CILow < rep.Score && rep.Score < rep.CIHigh) || m.CILow != rep.CILow {
		t.Errorf("report %+v", rep)
	}
	for _, r := range s.reqs {
		if !r.Echo || r.MaxTokens != 0 || r.Logprobs == nil || *r.Logprobs != 1 || r.Model != "m" {
			t.Fatalf("request %+v is not a log-likelihood request", r)
		}
	}
	if len(s.reqs) != 3*len(items) {
		t.Errorf("%d requests for %d items", len(s.reqs), len(items))
	}
}

// Two models choosing the same answers with different log-likelihoods
// give different raw responses (copy detection compares them: same
// choices are no copy), and one model gives the same responses twice.
func TestMultipleChoiceResponsesAreTheLogLikelihoods(t *testing.T) {
	cfg, items := loadTask(t, "testdata/social_iqa.yaml", 0)
	a, b := &completionServer{favoured: map[string]bool{}}, &completionServer{favoured: map[string]bool{}, base: -2}
	for _, it := range items {
		a.favoured[it.Requests[1].Prompt+it.Requests[1].Continuation] = true
		b.favoured[it.Requests[1].Prompt+it.Requests[1].Continuation] = true
	}
	ca := a.client(t)
	first, again, other := run(t, cfg, items, ca).Results, run(t, cfg, items, ca).Results, run(t, cfg, items, b.client(t)).Results
	for k := range items {
		if first[k].Prediction != other[k].Prediction || first[k].Response == other[k].Response || first[k].Response != again[k].Response {
			t.Fatalf("item %d: responses %q, %q again and %q from another model choosing %q / %q; want the same choice, different responses",
				k, first[k].Response, again[k].Response, other[k].Response, first[k].Prediction, other[k].Prediction)
		}
	}
}

// A generation is cut at the first until string, then filtered: the
// strict-match answer is the number after "####".
func TestEvaluatorScoresGenerationsThroughFilters(t *testing.T) {
	cfg, items := loadTask(t, "testdata/gsm8k.yaml", 0)
	s := &completionServer{generation: " She sells 9 eggs: 9 * 2 = 18.\n#### 18\n\nQuestion: #### 5"}
	res := run(t, cfg, items[:2], s.client(t)).Results
	var d Detail
	if err := json.Unmarshal(res[0].Detail, &d); err != nil {
		t.Fatal(err)
	}
	if !res[0].Correct || d.Answer != "18" || d.Metrics["exact_match,strict-match"] != 1 || d.Metrics["exact_match,flexible-extract"] != 1 {
		t.Errorf("item 0 (gold 18): %+v %+v", res[0], d)
	}
	if res[1].Correct || res[1].Score != 0 || !strings.HasPrefix(res[1].Response, " She sells") {
		t.Errorf("item 1 (gold 3): %+v", res[1])
	}
	r := s.reqs[0]
	if r.Echo || r.MaxTokens != DefaultMaxGenToks || r.Temperature == nil || *r.Temperature != 0 || r.Prompt != items[0].Prompt && r.Prompt != items[1].Prompt {
		t.Errorf("request %+v", r)
	}
}

// A loglikelihood item is one echo request for the target; without
// top_logprobs every token counts as greedy (lm-eval's OpenAI backend).
func TestEvaluatorScoresLogLikelihood(t *testing.T) {
	cfg, items := llTask(t)
	s := &completionServer{}
	rep := run(t, cfg, items[:3], s.client(t))
	first := slices.ContainsFunc(s.reqs, func(r inference.CompletionRequest) bool {
		return r.Prompt == items[0].Prompt+" make a new plan"
	})
	if rep.Score != 1 || len(s.reqs) != 3 || !first {
		t.Errorf("report %+v, requests %+v", rep, s.reqs)
	}
}

// A server error is an infrastructure error, not a wrong answer.
func TestEvaluatorReturnsModelErrors(t *testing.T) {
	cfg, items := loadTask(t, "testdata/social_iqa.yaml", 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":{"message":"model not found"}}`, http.StatusNotFound)
	}))
	defer srv.Close()
	c, err := inference.New(inference.Config{BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewEvaluator(cfg, items, c, "m").Evaluate(context.Background(), 0); err == nil || !inference.IsPermanent(err) {
		t.Errorf("err = %v, want a permanent model error", err)
	}
}

// A generation request carries max_gen_toks as max_tokens, the temperature
// and the first four until strings as stop (OpenAI's limit); the answer is
// still cut at every until string, the fifth and sixth included.
func TestEvaluatorSendsStopMaxTokensAndTemperature(t *testing.T) {
	cfg, err := Load("testdata/gsm8k.yaml")
	if err != nil {
		t.Fatal(err)
	}
	until := []string{"Question:", "</s>", "<|im_end|>", "\n\n\n", "FIFTH", "SIXTH"}
	cfg.Generation.Until, cfg.Generation.MaxGenToks, cfg.Generation.Temperature = until, 50, 0.5
	d, err := cfg.LoadData("", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	items, err := cfg.Items(d, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	// flexible-extract takes the last number: 18 only when cut at SIXTH.
	s := &completionServer{generation: " 9 * 2 = 18.\n#### 18\nSIXTH 5"}
	res := run(t, cfg, items[:1], s.client(t)).Results
	var det Detail
	if err := json.Unmarshal(res[0].Detail, &det); err != nil {
		t.Fatal(err)
	}
	if det.Metrics["exact_match,flexible-extract"] != 1 {
		t.Errorf("the generation was not cut at the sixth until string: %+v", det)
	}
	r := s.reqs[0]
	if !slices.Equal(r.Stop, until[:inference.MaxStop]) || r.MaxTokens != 50 || r.Temperature == nil || *r.Temperature != 0.5 {
		t.Errorf("request stop %q, max_tokens %d, temperature %v; want %q, 50, 0.5", r.Stop, r.MaxTokens, r.Temperature, until[:4])
	}
}
