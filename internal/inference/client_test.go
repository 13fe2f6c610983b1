package inference_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/inference"
)

func TestNormalizeBaseURL(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{name: "a v1 root is kept", in: "http://host:8000/v1", want: "http://host:8000/v1"},
		{name: "a trailing slash is dropped", in: "http://host:8000/v1/", want: "http://host:8000/v1"},
		{name: "a bare host gets /v1", in: "http://host:8000", want: "http://host:8000/v1"},
		{name: "a bare host with slash gets /v1", in: "https://api.example.com/", want: "https://api.example.com/v1"},
		{name: "a custom path is kept", in: "https://gw.example.com/openai/v1", want: "https://gw.example.com/openai/v1"},
		{name: "surrounding spaces are ignored", in: "  http://h:1/v1 ", want: "http://h:1/v1"},
		{name: "an empty URL is rejected", in: "", wantErr: "empty"},
		{name: "a non-http scheme is rejected", in: "ftp://host/v1", wantErr: "scheme must be http or https"},
		{name: "a missing scheme is rejected", in: "host:8000/v1", wantErr: "scheme"},
		{name: "a missing host is rejected", in: "http:///v1", wantErr: "no host"},
		{name: "a query is rejected", in: "http://h/v1?x=1", wantErr: "query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inference.NormalizeBaseURL(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NormalizeBaseURL(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeBaseURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"a 400 bad request is permanent", &inference.StatusError{StatusCode: 400}, true},
		{"a 404 unknown model is permanent", &inference.StatusError{StatusCode: 404}, true},
		{"a 401 unauthorised is permanent", &inference.StatusError{StatusCode: 401}, true},
		{"a wrapped 422 is permanent", fmt.Errorf("item 3: %w", &inference.StatusError{StatusCode: 422}), true},
		{"a 408 timeout is transient", &inference.StatusError{StatusCode: 408}, false},
		{"a 429 rate limit is transient", &inference.StatusError{StatusCode: 429}, false},
		{"a 500 is transient", &inference.StatusError{StatusCode: 500}, false},
		{"a 503 is transient", &inference.StatusError{StatusCode: 503}, false},
		{"a connection error is transient", errors.New("dial tcp: connection refused"), false},
		{"a deadline is transient", context.DeadlineExceeded, false},
		{"nil is not permanent", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inference.IsPermanent(tt.err); got != tt.want {
				t.Fatalf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func baselineClient(t *testing.T) (*inference.Client, *mcq.Dataset) {
	t.Helper()
	ds, err := mcq.Parse(strings.NewReader(`{"context":"Tracy didn't go home that evening.","question":"What does Tracy need to do before this?","answerA":"make a new plan","answerB":"Go home and see Riley","answerC":"Find somewhere to go","label":"2"}`), "t")
	if err != nil {
		t.Fatal(err)
	}
	h, err := mcqtest.New(mcqtest.Config{Key: ds})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := inference.New(inference.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c, ds
}

func TestClientTalksToTheBaselineServer(t *testing.T) {
	c, ds := baselineClient(t)
	ctx := context.Background()
	models, err := c.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(models.Data) != 4 || models.Data[0].OwnedBy != "crucible-baseline" {
		t.Fatalf("Models = %+v, want 4 baseline models", models)
	}
	prompt, err := mcq.Render(mcq.MustDefaultTemplate(), ds.Items[0])
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Chat(ctx, inference.ChatRequest{Model: "baseline-oracle", Messages: []inference.ChatMessage{{Role: "user", Content: prompt}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "B) Go home and see Riley" {
		t.Fatalf("chat answer = %q", got)
	}
	one := 1
	cr, err := c.Completion(ctx, inference.CompletionRequest{Model: "baseline-oracle", Prompt: prompt + " make a new plan", Echo: true, Logprobs: &one})
	if err != nil {
		t.Fatal(err)
	}
	if cr.Choices[0].Logprobs == nil || cr.Choices[0].Logprobs.TokenLogprobs[0] != nil {
		t.Fatalf("completion logprobs = %+v, want first token null", cr.Choices[0].Logprobs)
	}
}

func TestClientReportsAnUnknownModelAsAPermanentStatusError(t *testing.T) {
	c, _ := baselineClient(t)
	_, err := c.Chat(context.Background(), inference.ChatRequest{Model: "gpt-nope", Messages: []inference.ChatMessage{{Role: "user", Content: "hi"}}})
	var se *inference.StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 || !strings.Contains(se.Message, "gpt-nope") {
		t.Fatalf("err = %v, want a 404 StatusError naming the model", err)
	}
	if !inference.IsPermanent(err) {
		t.Fatalf("IsPermanent(%v) = false, want true", err)
	}
}

func TestClientSendsBearerAuthAndReadsErrorShapes(t *testing.T) {
	tests := []struct {
		name, body, wantMsg string
		status              int
		permanent           bool
	}{
		{"an OpenAI error body gives its message", `{"error":{"message":"bad thing","type":"x","code":null}}`, "bad thing", 400, true},
		{"a vLLM error with a numeric code gives its message", `{"object":"error","message":"oops","type":"BadRequestError","code":400}`, "oops", 400, true},
		{"a detail body gives its detail", `{"detail":"Not Found"}`, "Not Found", 404, true},
		{"a plain text body is quoted", `upstream overloaded`, "upstream overloaded", 503, false},
		{"a rate limit is transient", `{"error":{"message":"slow down"}}`, "slow down", 429, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer sk-test" {
					w.WriteHeader(401)
					return
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			c, err := inference.New(inference.Config{BaseURL: srv.URL + "/v1/", APIKey: "sk-test"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Models(context.Background())
			var se *inference.StatusError
			if !errors.As(err, &se) || se.StatusCode != tt.status || se.Message != tt.wantMsg {
				t.Fatalf("err = %#v, want status %d message %q", err, tt.status, tt.wantMsg)
			}
			if inference.IsPermanent(err) != tt.permanent {
				t.Fatalf("IsPermanent = %v, want %v", !tt.permanent, tt.permanent)
			}
		})
	}
}

func TestClientRefusesAnOversizedResponse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"object":"list","data":[],"pad":"`))
		w.Write([]byte(strings.Repeat("x", inference.MaxResponseBytes)))
		w.Write([]byte(`"}`))
	}))
	defer srv.Close()
	c, err := inference.New(inference.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Models(context.Background()); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("err = %v, want a body-size error", err)
	}
}

func TestClientHonoursCancellation(t *testing.T) {
	c, _ := baselineClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Models(ctx)
	if !errors.Is(err, context.Canceled) || inference.IsPermanent(err) {
		t.Fatalf("err = %v, want a transient context.Canceled", err)
	}
}
