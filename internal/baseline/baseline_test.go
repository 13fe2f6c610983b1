package baseline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"crucible/internal/baseline"
	"crucible/internal/inference"
)

// echo is a toy policy: chat repeats the last message, completion generates
// three words and scores the prompt's last word.
type echo struct{}

func (echo) Chat(msgs []inference.ChatMessage) (string, error) {
	switch msgs[len(msgs)-1].Content {
	case "refuse":
		return "", errors.New("echo refuses")
	case "unknown":
		return "", fmt.Errorf("echo: %w", baseline.ErrNoMatch)
	}
	return msgs[len(msgs)-1].Content, nil
}

func (echo) Complete(prompt string) (baseline.Completion, error) {
	if prompt == "unknown" {
		return baseline.Completion{}, baseline.ErrNoMatch
	}
	last := strings.LastIndex(prompt, " ") + 1
	return baseline.Completion{Text: " one two three", ScoredFrom: len([]rune(prompt[:last])), Logprob: -2}, nil
}

func client(t *testing.T, cfg baseline.Config) *inference.Client {
	t.Helper()
	srv := httptest.NewServer(baseline.New(cfg))
	t.Cleanup(srv.Close)
	c, err := inference.New(inference.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestModelsAreServedInOrderOncePerName(t *testing.T) {
	c := client(t, baseline.Config{Policies: []baseline.Named{{Name: "b", Policy: echo{}}, {Name: "a", Policy: echo{}}, {Name: "b", Policy: echo{}}}})
	list, err := c.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range list.Data {
		got = append(got, m.ID)
	}
	if strings.Join(got, ",") != "baseline-b,baseline-a" {
		t.Fatalf("models = %v", got)
	}
}

func TestChatServesThePolicyAndItsRefusals(t *testing.T) {
	c := client(t, baseline.Config{Policies: []baseline.Named{{Name: "echo", Policy: echo{}}}})
	ask := func(content string, maxTokens int) (*inference.ChatResponse, error) {
		return c.Chat(context.Background(), inference.ChatRequest{Model: "baseline-echo", MaxTokens: maxTokens,
			Messages: []inference.ChatMessage{{Role: "user", Content: content}}})
	}
	resp, err := ask("hello there world", 2)
	if err != nil {
		t.Fatal(err)
	}
	if ch := resp.Choices[0]; ch.Message.Content != "hello there" || ch.FinishReason != "length" {
		t.Fatalf("choice = %+v, want the reply cut to two words", ch)
	}
	_, err = ask("refuse", 0)
	var se *inference.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
		t.Fatalf("err = %v, want a 400", err)
	}
}

func TestCompletionsCutAtMaxTokensAndScoreThePolicysTail(t *testing.T) {
	c := client(t, baseline.Config{Policies: []baseline.Named{{Name: "echo", Policy: echo{}}}})
	one, two := 1, 2
	resp, err := c.Completion(context.Background(), inference.CompletionRequest{Model: "baseline-echo", Prompt: "é a b", MaxTokens: two, Echo: true, Logprobs: &one})
	if err != nil {
		t.Fatal(err)
	}
	ch := resp.Choices[0]
	if ch.Text != "é a b one two" || ch.FinishReason != "length" || resp.Usage.CompletionTokens != 2 {
		t.Fatalf("completion = %+v usage %+v", ch, resp.Usage)
	}
	var got []float64
	for _, v := range ch.Logprobs.TokenLogprobs[1:] {
		got = append(got, *v)
	}
	if want := []float64{-1, -2, -0.1, -0.1}; !slices.Equal(got, want) || ch.Logprobs.TextOffset[4] != 10 {
		t.Fatalf("logprobs %v offsets %v, want %v", got, ch.Logprobs.TextOffset, want)
	}
}

// A completion ends before the earliest stop string; more than four stop
// strings are refused, as OpenAI does.
func TestCompletionsEndBeforeTheFirstStop(t *testing.T) {
	c := client(t, baseline.Config{Policies: []baseline.Named{{Name: "echo", Policy: echo{}}}})
	complete := func(stop ...string) (*inference.CompletionResponse, error) {
		return c.Completion(context.Background(), inference.CompletionRequest{Model: "baseline-echo", Prompt: "a b", MaxTokens: 16, Stop: stop})
	}
	resp, err := complete("three", " two", "absent")
	if err != nil {
		t.Fatal(err)
	}
	if ch := resp.Choices[0]; ch.Text != " one" || ch.FinishReason != "stop" || resp.Usage.CompletionTokens != 1 {
		t.Fatalf("completion = %+v usage %+v, want \" one\"", ch, resp.Usage)
	}
	_, err = complete("1", "2", "3", "4", "5")
	var se *inference.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest || !strings.Contains(se.Message, "at most 4") {
		t.Fatalf("five stop strings: %v, want a 400", err)
	}
}

func TestNoMatchIsAnOpenAIStyle404(t *testing.T) {
	srv := httptest.NewServer(baseline.New(baseline.Config{Policies: []baseline.Named{{Name: "echo", Policy: echo{}}}}))
	t.Cleanup(srv.Close)
	for _, tt := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"baseline-echo","messages":[{"role":"user","content":"unknown"}]}`},
		{"/v1/completions", `{"model":"baseline-echo","prompt":"unknown"}`},
	} {
		resp, err := http.Post(srv.URL+tt.path, "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		var e inference.ErrorResponse
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusNotFound || e.Error.Code == nil || *e.Error.Code != "no_match" ||
			e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, "no answer") {
			t.Fatalf("%s: status %d error %+v (%v), want a 404 no_match", tt.path, resp.StatusCode, e.Error, err)
		}
	}
}
