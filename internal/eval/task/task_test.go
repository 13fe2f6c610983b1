package task

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"crucible/internal/inference"
)

func loadTask(t *testing.T, path string, numFewshot int) (*Config, []Item) {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.LoadData("", "", numFewshot)
	if err != nil {
		t.Fatal(err)
	}
	items, err := c.Items(d, numFewshot, 7)
	if err != nil {
		t.Fatal(err)
	}
	return c, items
}

func summaries(t *testing.T, c *Config, scores []map[string]float64) map[string]Summary {
	t.Helper()
	sums, err := c.Aggregate(scores, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Summary{}
	for _, s := range sums {
		out[s.Name] = s
	}
	return out
}

// The Social IQa task file in lm-eval's format over 20 real dev rows.
func TestSocialIQa(t *testing.T) {
	c, items := loadTask(t, "testdata/social_iqa.yaml", 0)
	rows, err := ReadFile("testdata/siqa/dev.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 20 || len(rows) != 20 {
		t.Fatalf("%d items, %d rows, want 20", len(items), len(rows))
	}
	var oracle, first []map[string]float64
	labelOne := 0
	for k, it := range items {
		d := rows[k].Doc
		if want := "Q: " + d["context"].(string) + " " + d["question"].(string) + "\nA:"; it.Prompt != want {
			t.Fatalf("item %d prompt %q, want %q", k, it.Prompt, want)
		}
		gold := int(d["label"].(string)[0] - '1')
		if it.Gold != gold || it.Target != it.Choices[gold] {
			t.Fatalf("item %d gold %d %q, want %d", k, it.Gold, it.Target, gold)
		}
		if gold == 0 {
			labelOne++
		}
		for j, key := range []string{"answerA", "answerB", "answerC"} {
			r := it.Requests[j]
			if r.Prompt != it.Prompt || r.Continuation != " "+d[key].(string) {
				t.Fatalf("item %d request %d = %+v", k, j, r)
			}
		}
		// Log-likelihoods favouring the gold choice, then the first.
		ll := []LL{{Sum: -9}, {Sum: -9}, {Sum: -9}}
		ll[gold].Sum = -1
		s, err := c.ScoreLL(it, ll)
		if err != nil {
			t.Fatal(err)
		}
		oracle = append(oracle, s)
		ll = []LL{{Sum: -1}, {Sum: -9}, {Sum: -9}}
		s, err = c.ScoreLL(it, ll)
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, s)
	}
	if pos := items[3].Pos; pos != "testdata/siqa/dev.jsonl:4" {
		t.Errorf("item 3 at %s", pos)
	}
	or := summaries(t, c, oracle)
	if or["acc,none"].Value != 1 || or["acc_norm,none"].Value != 1 || or["acc,none"].CILow != 1 {
		t.Errorf("oracle: %+v", or)
	}
	fs := summaries(t, c, first)
	share := float64(labelOne) / 20
	if share != 0.35 || fs["acc,none"].Value != share {
		t.Errorf("first: acc %v, label-1 share %v (want 0.35)", fs["acc,none"].Value, share)
	}
	if s := fs["acc,none"]; !(s.CILow < s.Value && s.Value < s.CIHigh) {
		t.Errorf("first: interval %+v does not bracket the mean", s)
	}
	if names := c.MetricNames(); strings.Join(names, " ") != "acc,none acc_norm,none" {
		t.Errorf("metric names %v", names)
	}
}

// acc_norm divides each sum by the choice's length in bytes.
func TestAccNorm(t *testing.T) {
	c, items := loadTask(t, "testdata/social_iqa.yaml", 0)
	it := items[0] // make a new plan (15) / Go home and see Riley (21) / Find somewhere to go (20)
	s, err := c.ScoreLL(it, []LL{{Sum: -3}, {Sum: -4.0}, {Sum: -3.5}})
	if err != nil {
		t.Fatal(err)
	}
	// acc: -3 wins (choice 0). Norm: -0.2, -0.190, -0.175: choice 2, the gold.
	if s["acc,none"] != 0 || s["acc_norm,none"] != 1 {
		t.Errorf("scores %v", s)
	}
	if _, err := c.ScoreLL(it, []LL{{Sum: -1}}); err == nil {
		t.Error("one log-likelihood for three choices accepted")
	}
}

// Recorded-style GSM8K solutions against hand-checked verdicts for lm-eval's
// two filter pipelines.
func TestGSM8K(t *testing.T) {
	c, items := loadTask(t, "testdata/gsm8k.yaml", 0)
	cases := []struct {
		resp             string
		strict, flexible float64
	}{
		{"Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day.\n#### 18", 1, 1},
		{"It takes 2/2=1 bolt of white fiber.\nSo the total is 2+1=3 bolts.\n#### 3", 1, 1},
		// A dollar sign after ####: strict finds no number; flexible takes "$70,000".
		{"The house is worth 80,000+50,000=$130,000.\nHe made a profit of $70,000.\n#### $70,000", 0, 1},
		// No ####: strict is [invalid]; flexible's "540." loses its final dot.
		{"He runs 3*3=9 sprints a week, so 9*60=540.", 0, 1},
		{"She needs 20 cups in the final meal.\n#### 20.00", 0, 0},
		// No number at all: [invalid] for both.
		{"I am not sure how to solve this problem.", 0, 0},
		{"20 + 160 + 80 = 260\n#### 260", 1, 1},
		// Cut at the first until string: the next "Question:" is not the answer.
		{"160 minutes in all.\n#### 160\n\nQuestion: And 20 more?\nAnswer: #### 180", 1, 1},
		// Commas: the reference is "#### 2,125".
		{"500 + 1500 + 125 = 2,125 blocks.\n#### 2,125", 1, 1},
		{"He makes $114,200 that year.\n#### 114,200", 1, 1},
	}
	if len(items) != len(cases) {
		t.Fatalf("%d items", len(items))
	}
	var scores []map[string]float64
	for k, it := range items {
		if !strings.HasPrefix(it.Prompt, "Question: ") || !strings.HasSuffix(it.Prompt, "\nAnswer:") {
			t.Fatalf("item %d prompt %q", k, it.Prompt)
		}
		r := it.Requests[0]
		if len(it.Requests) != 1 || r.MaxGenToks != 256 || strings.Join(r.Until, "|") != "Question:|</s>|<|im_end|>" || r.Temperature != 0 {
			t.Fatalf("item %d requests %+v", k, it.Requests)
		}
		s := c.ScoreGen(it, []string{cases[k].resp})
		if s["exact_match,strict-match"] != cases[k].strict || s["exact_match,flexible-extract"] != cases[k].flexible {
			t.Errorf("item %d %q: %v, want strict %v flexible %v", k, cases[k].resp, s, cases[k].strict, cases[k].flexible)
		}
		scores = append(scores, s)
	}
	sm := summaries(t, c, scores)
	if sm["exact_match,strict-match"].Value != 0.6 || sm["exact_match,flexible-extract"].Value != 0.8 {
		t.Errorf("summaries %+v", sm)
	}
	if c.MetricNames()[0] != "exact_match,strict-match" {
		t.Errorf("score metric %s", c.MetricNames()[0])
	}
}

// The log-likelihood of " Go home" after "Q: Café?\nA:" in a recorded
// echo response: the prompt is 11 code points (12 bytes), so the tokens at
// offsets 11 (" Go", -1.2527) and 14 (" home", -0.4981) are the
// continuation: -1.2527 + -0.4981 = -1.7508, and both are their
// position's top token.
func TestContinuationLL(t *testing.T) {
	b, err := os.ReadFile("testdata/completion_echo.json")
	if err != nil {
		t.Fatal(err)
	}
	var resp inference.CompletionResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	req := Request{Prompt: "Q: Café?\nA:", Continuation: " Go home"}.LLRequest("m")
	if req.Prompt != resp.Choices[0].Text || !req.Echo || req.MaxTokens != 0 || *req.Logprobs != 1 || *req.Temperature != 0 {
		t.Errorf("request %+v does not echo the recorded prompt", req)
	}
	ll, err := ContinuationLL("Q: Café?\nA:", resp)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(ll.Sum-(-1.7508)) > 1e-9 || ll.Tokens != 2 || !ll.Greedy {
		t.Errorf("got %+v, want sum -1.7508 over 2 greedy tokens", ll)
	}
	// A shorter prompt moves the boundary: from offset 6 ("é") on, the
	// sum adds -0.0312-1.8906-0.7344-3.2188-0.0156, and "A" is not greedy.
	ll, err = ContinuationLL("Q: Caf", resp)
	if err != nil {
		t.Fatal(err)
	}
	if want := -1.7508 - 0.0312 - 1.8906 - 0.7344 - 3.2188 - 0.0156; math.Abs(ll.Sum-want) > 1e-9 || ll.Greedy {
		t.Errorf("from offset 6: %+v, want %v and not greedy (\"A\" is not the top token)", ll, want)
	}
	resp.Choices[0].Logprobs.TopLogprobs[9] = map[string]float64{" home": -0.4981, " away": -0.2}
	if ll, _ := ContinuationLL("Q: Café?\nA:", resp); ll.Greedy {
		t.Error("greedy although \" away\" is more likely than \" home\"")
	}
	if _, err := ContinuationLL(strings.Repeat("x", 40), resp); err == nil {
		t.Error("no continuation tokens accepted")
	}
	resp.Choices[0].Logprobs.TextOffset = resp.Choices[0].Logprobs.TextOffset[1:]
	if _, err := ContinuationLL("Q: Café?\nA:", resp); err == nil {
		t.Error("offsets and logprobs of different lengths accepted")
	}
	resp.Choices[0].Logprobs = nil
	if _, err := ContinuationLL("Q: Café?\nA:", resp); err == nil {
		t.Error("response without logprobs accepted")
	}
}

// llTask is a loglikelihood task over the Social IQa test rows: one echo
// request per doc, for answerA after the question.
func llTask(t *testing.T) (*Config, []Item) {
	t.Helper()
	c, err := Parse("testdata/ll.yaml", []byte(`task: ll
dataset_path: json
dataset_kwargs: {data_files: {test: siqa/dev.jsonl}}
output_type: loglikelihood
test_split: test
doc_to_text: "Q: {{context}}\nA:"
doc_to_target: "{{answerA}}"
`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.LoadData("", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	items, err := c.Items(d, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	return c, items
}

// A loglikelihood task scores acc as is_greedy of the target.
func TestLogLikelihoodTask(t *testing.T) {
	c, items := llTask(t)
	if r := items[0].Requests; len(r) != 1 || r[0].Continuation != " make a new plan" {
		t.Fatalf("requests %+v", r)
	}
	s, err := c.ScoreLL(items[0], []LL{{Sum: -2, Greedy: true}})
	if err != nil || s["acc,none"] != 1 {
		t.Errorf("scores %v, %v", s, err)
	}
}

// Few-shot prompts: examples as text + target_delimiter + target +
// fewshot_delimiter, never the doc itself, reproducible for a seed.
func TestFewshot(t *testing.T) {
	c, err := Load("testdata/social_iqa.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.Description, _ = CompileTemplate("Answer the questions.\n\n")
	d, err := c.LoadData("", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if !d.SameSplit {
		t.Fatal("few-shot pool should be the evaluation split (no training rows)")
	}
	zero, err := c.Items(d, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	shot := func(k int) string {
		return zero[k].Prompt[len("Answer the questions.\n\n"):] + " " + zero[k].Target + "\n\n"
	}
	a, err := c.Items(d, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Items(d, 2, 1)
	other, _ := c.Items(d, 2, 2)
	differ := 0
	for k, it := range a {
		if it.Prompt != b[k].Prompt {
			t.Fatal("same seed, different prompts")
		}
		if it.Prompt != other[k].Prompt {
			differ++
		}
		if !strings.HasPrefix(it.Prompt, "Answer the questions.\n\n") || !strings.HasSuffix(it.Prompt, zero[k].Prompt[len("Answer the questions.\n\n"):]) {
			t.Fatalf("item %d prompt %q", k, it.Prompt)
		}
		if strings.Contains(it.Prompt, shot(k)) {
			t.Fatalf("item %d is its own example", k)
		}
		found := 0
		for j := range zero {
			if strings.Contains(it.Prompt, shot(j)) {
				found++
			}
		}
		if found != 2 {
			t.Fatalf("item %d has %d examples: %q", k, found, it.Prompt)
		}
	}
	if differ == 0 {
		t.Error("the seed does not change the examples")
	}
	c.FewshotFirstN = true
	fn, err := c.Items(d, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Answer the questions.\n\n" + shot(1) + shot(2) + zero[0].Prompt[len("Answer the questions.\n\n"):]; fn[0].Prompt != want {
		t.Errorf("first_n prompt %q, want %q", fn[0].Prompt, want)
	}
	if want := "Answer the questions.\n\n" + shot(0) + shot(1); !strings.HasPrefix(fn[5].Prompt, want) {
		t.Errorf("first_n prompt %q", fn[5].Prompt)
	}
}
