package mcq_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"crucible/internal/eval/mcq"
	"crucible/internal/inference"
)

// cannedChat answers every request with one chat completion, so
// BenchmarkEvaluateGenerative measures the client side of an item (render,
// encode, HTTP client, decode, extract, Detail) without a server or socket.
type cannedChat struct{}

const cannedBody = `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"B"},"finish_reason":"stop"}],"usage":{"prompt_tokens":57,"completion_tokens":1,"total_tokens":58}}`

func (cannedChat) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, ContentLength: int64(len(cannedBody)),
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   io.NopCloser(strings.NewReader(cannedBody)), Request: req,
	}, nil
}

func BenchmarkEvaluateGenerative(b *testing.B) {
	c, err := inference.New(inference.Config{BaseURL: "http://model.invalid/v1", HTTPClient: &http.Client{Transport: cannedChat{}}})
	if err != nil {
		b.Fatal(err)
	}
	ds := &mcq.Dataset{Items: []mcq.Item{{
		ID: "q1", Context: "Tracy didn't go home that evening and resisted Riley's attacks.",
		Question: "What does Tracy need to do before this?",
		Choices:  []string{"make a new plan", "Go home and see Riley", "Find somewhere to go"}, Answer: 1,
	}}}
	ev, err := mcq.NewEvaluator(mcq.Config{Client: c, Model: "m", Dataset: ds})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background()) // as runner.Run's
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		r, err := ev.Evaluate(ctx, 0)
		if err != nil || !r.Correct {
			b.Fatalf("%+v, %v", r, err)
		}
	}
}

// BenchmarkPlainRequest is what bench/eval-throughput's plain phase does per
// request over the same canned transport (post pre-encoded bytes, drain the
// body): BenchmarkEvaluateGenerative minus this is the client CPU an item
// costs beyond a bare load generator.
func BenchmarkPlainRequest(b *testing.B) {
	hc := &http.Client{Transport: cannedChat{}}
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"Tracy didn't go home that evening and resisted Riley's attacks.\nWhat does Tracy need to do before this?\nA) make a new plan\nB) Go home and see Riley\nC) Find somewhere to go\nAnswer with the letter of the correct choice.\nAnswer:"}],"max_tokens":32,"temperature":0}`)
	b.ReportAllocs()
	for b.Loop() {
		req, err := http.NewRequest(http.MethodPost, "http://model.invalid/v1/chat/completions", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatal(err, resp.StatusCode)
		}
	}
}
