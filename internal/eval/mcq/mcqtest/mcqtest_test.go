package mcqtest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/inference"
)

const keyJSONL = `{"id":"tracy","context":"Tracy didn't go home that evening and resisted Riley's attacks.","question":"What does Tracy need to do before this?","answerA":"make a new plan","answerB":"Go home and see Riley","answerC":"Find somewhere to go","label":"3"}
{"id":"sydney","context":"Sydney walked past a homeless woman asking for change but did not have any money they could give to her.","question":"How would you describe Sydney?","answerA":"sympathetic","answerB":"like a person who was unable to help","answerC":"incredulous","label":"1"}
{"id":"apples","question":"Which fruit is red and grows on apple trees?","choices":["banana","a red apple from trees","grape","kiwi"],"answer":1}
`

func setup(t *testing.T, cfg mcqtest.Config) (*inference.Client, *mcq.Dataset, string) {
	t.Helper()
	ds, err := mcq.Parse(strings.NewReader(keyJSONL), "key")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Key == nil {
		cfg.Key = ds
	}
	h, err := mcqtest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := inference.New(inference.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c, ds, srv.URL
}

func render(t *testing.T, it mcq.Item) string {
	t.Helper()
	p, err := mcq.Render(mcq.MustDefaultTemplate(), it)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func chat(t *testing.T, c *inference.Client, model, prompt string) string {
	t.Helper()
	resp, err := c.Chat(context.Background(), inference.ChatRequest{Model: model, Messages: []inference.ChatMessage{{Role: "user", Content: prompt}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Choices[0].Message.Content
}

func TestNewRejectsBadConfigs(t *testing.T) {
	tests := []struct {
		name string
		cfg  mcqtest.Config
		want string
	}{
		{"an unknown policy is rejected", mcqtest.Config{Policies: []string{"clever"}}, "unknown policy"},
		{"oracle without a key is rejected", mcqtest.Config{Policies: []string{"oracle"}}, "needs Config.Key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := mcqtest.New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestModelsListsOneBaselineModelPerPolicy(t *testing.T) {
	c, _, _ := setup(t, mcqtest.Config{Policies: []string{"oracle", "first"}})
	list, err := c.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range list.Data {
		if m.OwnedBy != "crucible-baseline" || m.Object != "model" {
			t.Errorf("model %+v is not labelled baseline", m)
		}
		got = append(got, m.ID)
	}
	if strings.Join(got, ",") != "baseline-oracle,baseline-first" {
		t.Fatalf("models = %v", got)
	}
}

func TestDefaultPoliciesAreTheMultipleChoiceFour(t *testing.T) {
	c, _, _ := setup(t, mcqtest.Config{})
	list, err := c.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range list.Data {
		got = append(got, m.ID)
	}
	if strings.Join(got, ",") != "baseline-random,baseline-first,baseline-oracle,baseline-overlap" {
		t.Fatalf("the default policies must stay the multiple-choice four, got %v", got)
	}
}

func TestChatAnswersByPolicy(t *testing.T) {
	c, ds, _ := setup(t, mcqtest.Config{Seed: 7})
	tracy, apples := render(t, ds.Items[0]), render(t, ds.Items[2])
	tests := []struct {
		name, model, prompt, want string
	}{
		{"oracle answers the key with letter and text", "baseline-oracle", tracy, "C) Find somewhere to go"},
		{"first answers the first choice", "baseline-first", tracy, "A) make a new plan"},
		{"overlap picks the choice sharing most words", "baseline-overlap", apples, "B) a red apple from trees"},
		{"overlap counts shared words of context and question", "baseline-overlap", tracy, "B) Go home and see Riley"},
		{"an unknown prompt gets the fallback", "baseline-oracle", "What is 2+2?", "A"},
		{"a prompt with the question but not the choices is unknown", "baseline-oracle", ds.Items[0].Question, "A"},
		{"labelled lines are recognised", "baseline-oracle", "Question: " + ds.Items[2].Question + "\n1. banana\n2. a red apple from trees\n3. grape\n4. kiwi", "B) a red apple from trees"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := chat(t, c, tt.model, tt.prompt); got != tt.want {
				t.Fatalf("answer = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRandomPolicyIsStableAcrossServersAndSeedsMatter(t *testing.T) {
	c1, ds, _ := setup(t, mcqtest.Config{Seed: 42})
	c2, _, _ := setup(t, mcqtest.Config{Seed: 42})
	for _, it := range ds.Items {
		p := render(t, it)
		a, b := chat(t, c1, "baseline-random", p), chat(t, c2, "baseline-random", p)
		if a != b {
			t.Fatalf("item %s: %q then %q from an identical server", it.ID, a, b)
		}
		if again := chat(t, c1, "baseline-random", p); again != a {
			t.Fatalf("item %s: %q then %q from the same server", it.ID, a, again)
		}
	}
}

func TestStreamingChatSendsChunksThenDone(t *testing.T) {
	_, ds, url := setup(t, mcqtest.Config{})
	body, _ := json.Marshal(inference.ChatRequest{Model: "baseline-oracle", Stream: true,
		Messages: []inference.ChatMessage{{Role: "user", Content: render(t, ds.Items[0])}}})
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var text strings.Builder
	var finish string
	sawDone := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line %q is not an SSE data line", line)
		}
		if data == "[DONE]" {
			sawDone = true
			continue
		}
		var chunk inference.ChatChunk
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			t.Fatal(err)
		}
		if chunk.Object != "chat.completion.chunk" {
			t.Fatalf("object = %q", chunk.Object)
		}
		text.WriteString(chunk.Choices[0].Delta.Content)
		if fr := chunk.Choices[0].FinishReason; fr != nil {
			finish = *fr
		}
	}
	if !sawDone || finish != "stop" || text.String() != "C) Find somewhere to go" {
		t.Fatalf("stream gave %q finish %q done %v", text.String(), finish, sawDone)
	}
}

func TestCompletionsScoreTheChoiceContinuation(t *testing.T) {
	c, ds, _ := setup(t, mcqtest.Config{})
	prompt := render(t, ds.Items[0])
	one := 1
	tests := []struct {
		name, model, choice string
		want                float64
	}{
		{"the policy's choice scores -0.1 per token", "baseline-oracle", "Find somewhere to go", -0.4},
		{"another choice scores -3 per token", "baseline-oracle", "make a new plan", -12},
		{"first prefers the first choice", "baseline-first", "make a new plan", -0.4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			full := prompt + " " + tt.choice
			resp, err := c.Completion(context.Background(), inference.CompletionRequest{Model: tt.model, Prompt: full, Echo: true, Logprobs: &one})
			if err != nil {
				t.Fatal(err)
			}
			ch := resp.Choices[0]
			if ch.Text != full {
				t.Fatalf("echo text = %q", ch.Text)
			}
			lp := ch.Logprobs
			if lp.TokenLogprobs[0] != nil {
				t.Fatal("first token logprob is not null")
			}
			start := len([]rune(prompt))
			sum, other := 0.0, 0
			for k, off := range lp.TextOffset {
				if lp.Tokens[k] != string([]rune(full)[off:off+len([]rune(lp.Tokens[k]))]) {
					t.Fatalf("token %d %q does not sit at offset %d", k, lp.Tokens[k], off)
				}
				if off >= start {
					sum += *lp.TokenLogprobs[k]
				} else if k > 0 && *lp.TokenLogprobs[k] == -1 {
					other++
				}
			}
			if diff := sum - tt.want; diff > 1e-9 || diff < -1e-9 {
				t.Fatalf("continuation logprob = %v, want %v", sum, tt.want)
			}
			if other != len(lp.Tokens)-1-len(strings.Fields(tt.choice)) {
				t.Fatalf("%d prompt tokens at -1, want all but the first", other)
			}
			if resp.Usage.PromptTokens != len(strings.Fields(full)) || resp.Usage.CompletionTokens != 0 {
				t.Fatalf("usage = %+v", resp.Usage)
			}
		})
	}
}

func TestCompletionsWithoutEchoGenerateTheLetter(t *testing.T) {
	c, ds, _ := setup(t, mcqtest.Config{})
	resp, err := c.Completion(context.Background(), inference.CompletionRequest{Model: "baseline-oracle", Prompt: render(t, ds.Items[1]), MaxTokens: 1})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Text != " A" || resp.Usage.CompletionTokens != 1 {
		t.Fatalf("completion = %+v", resp)
	}
}

func TestBadRequestsGetOpenAIErrors(t *testing.T) {
	_, _, url := setup(t, mcqtest.Config{})
	tests := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"an unknown chat model is a 404 model_not_found", "/v1/chat/completions", `{"model":"gpt-4","messages":[{"role":"user","content":"x"}]}`, 404, "model_not_found"},
		{"an unknown completion model is a 404 model_not_found", "/v1/completions", `{"model":"gpt-4","prompt":"x"}`, 404, "model_not_found"},
		{"bad JSON is a 400", "/v1/chat/completions", `{"model":`, 400, "invalid_json"},
		{"no messages is a 400", "/v1/chat/completions", `{"model":"baseline-first","messages":[]}`, 400, "invalid_request"},
		{"a numeric prompt is a 400", "/v1/completions", `{"model":"baseline-first","prompt":5}`, 400, "invalid_request"},
		{"an unknown path is a 404", "/v1/images/generations", `{}`, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(url+tt.path, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e inference.ErrorResponse
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || e.Error.Code == nil || *e.Error.Code != tt.code || e.Error.Message == "" {
				t.Fatalf("got %d %+v, want %d code %q", resp.StatusCode, e.Error, tt.status, tt.code)
			}
		})
	}
}

func TestDelayHonoursCancellation(t *testing.T) {
	c, _, _ := setup(t, mcqtest.Config{Delay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Chat(ctx, inference.ChatRequest{Model: "baseline-first", Messages: []inference.ChatMessage{{Role: "user", Content: "x"}}})
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
