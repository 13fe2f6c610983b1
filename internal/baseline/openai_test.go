package baseline_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"crucible/internal/baseline"
	"crucible/internal/inference"
)

func server(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(baseline.New(baseline.Config{Policies: []baseline.Named{
		{Name: "echo", Policy: echo{}}, {Name: "x", Served: "org/echo-7b", Policy: echo{}, Params: 7e9},
	}}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// call sends method path with body and returns the status and body.
func call(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// sseEvents splits a server-sent event body into its data payloads, and
// fails unless the last one is [DONE] (which it drops).
func sseEvents(t *testing.T, body []byte) []json.RawMessage {
	t.Helper()
	var out []json.RawMessage
	for _, ev := range strings.Split(strings.TrimSpace(string(body)), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok {
			t.Fatalf("event %q is not a data line", ev)
		}
		out = append(out, json.RawMessage(data))
	}
	if len(out) == 0 || string(out[len(out)-1]) != "[DONE]" {
		t.Fatalf("stream does not end with data: [DONE]:\n%s", body)
	}
	return out[:len(out)-1]
}

func wantParamError(t *testing.T, status int, body []byte, wantStatus int, param string) {
	t.Helper()
	var e inference.ErrorResponse
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if status != wantStatus || (param != "" && (e.Error.Param == nil || *e.Error.Param != param)) || e.Error.Message == "" {
		t.Fatalf("got %d %s, want %d with param %q", status, body, wantStatus, param)
	}
}

func TestModelRetrieveAndHealthz(t *testing.T) {
	url := server(t)
	t.Run("a served model is retrieved, slashes and all", func(t *testing.T) {
		st, b := call(t, "GET", url+"/v1/models/org/echo-7b", "")
		var m inference.Model
		if err := json.Unmarshal(b, &m); st != 200 || err != nil || m.ID != "org/echo-7b" || m.Object != "model" || m.OwnedBy != baseline.OwnedBy || m.Meta == nil || m.Meta.NParams != 7e9 {
			t.Fatalf("got %d %s", st, b)
		}
	})
	t.Run("an unknown model is a 404 model_not_found", func(t *testing.T) {
		st, b := call(t, "GET", url+"/v1/models/gpt-4", "")
		var e inference.ErrorResponse
		if err := json.Unmarshal(b, &e); st != 404 || err != nil || e.Error.Code == nil || *e.Error.Code != "model_not_found" {
			t.Fatalf("got %d %s", st, b)
		}
	})
	t.Run("healthz answers ok", func(t *testing.T) {
		if st, b := call(t, "GET", url+"/healthz", ""); st != 200 || string(b) != "ok\n" {
			t.Fatalf("got %d %q", st, b)
		}
	})
}

func TestStreamedCompletionsMatchTheWholeResponse(t *testing.T) {
	url := server(t)
	for _, body := range []string{
		`{"model":"baseline-echo","prompt":"a b c","max_tokens":2,"n":2,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"baseline-echo","prompt":"a b c","echo":true,"logprobs":1,"n":2,"stream":true,"stream_options":{"include_usage":true}}`,
	} {
		t.Run(body, func(t *testing.T) {
			var whole inference.CompletionResponse
			plain := strings.Replace(body, `"stream":true,"stream_options":{"include_usage":true}`, `"stream":false`, 1)
			st, b := call(t, "POST", url+"/v1/completions", plain)
			if err := json.Unmarshal(b, &whole); st != 200 || err != nil || len(whole.Choices) != 2 {
				t.Fatalf("whole: %d %s", st, b)
			}
			st, b = call(t, "POST", url+"/v1/completions", body)
			if st != 200 {
				t.Fatalf("stream: %d %s", st, b)
			}
			evs := sseEvents(t, b)
			texts, finishes, tokens := make([]string, 2), make([]string, 2), make([][]string, 2)
			var usage *inference.Usage
			for k, ev := range evs {
				var c inference.CompletionChunk
				if err := json.Unmarshal(ev, &c); err != nil || c.Object != "text_completion" {
					t.Fatalf("chunk %s: %v", ev, err)
				}
				if c.Usage != nil {
					if k != len(evs)-1 || len(c.Choices) != 0 {
						t.Fatalf("usage chunk %s is not the last or has choices", ev)
					}
					usage = c.Usage
				}
				for _, ch := range c.Choices {
					texts[ch.Index] += ch.Text
					if ch.FinishReason != nil {
						finishes[ch.Index] = *ch.FinishReason
					}
					if ch.Logprobs != nil {
						tokens[ch.Index] = append(tokens[ch.Index], ch.Logprobs.Tokens...)
					}
				}
			}
			for i := range 2 {
				w := whole.Choices[i]
				if texts[i] != w.Text || finishes[i] != w.FinishReason {
					t.Errorf("choice %d streamed %q (%s), whole %q (%s)", i, texts[i], finishes[i], w.Text, w.FinishReason)
				}
				if w.Logprobs != nil && strings.Join(tokens[i], "|") != strings.Join(w.Logprobs.Tokens, "|") {
					t.Errorf("choice %d streamed tokens %q, whole %q", i, tokens[i], w.Logprobs.Tokens)
				}
			}
			if usage == nil || *usage != whole.Usage {
				t.Errorf("usage chunk %+v, whole usage %+v", usage, whole.Usage)
			}
		})
	}
	t.Run("without include_usage no chunk carries usage", func(t *testing.T) {
		_, b := call(t, "POST", url+"/v1/completions", `{"model":"baseline-echo","prompt":"a","stream":true}`)
		for _, ev := range sseEvents(t, b) {
			if bytes.Contains(ev, []byte(`"usage"`)) {
				t.Fatalf("chunk %s has usage", ev)
			}
		}
	})
}

func TestChatChoicesAndLogprobs(t *testing.T) {
	url := server(t)
	msgs := `"messages":[{"role":"user","content":"red green blue"}]`
	t.Run("n gives n choices", func(t *testing.T) {
		st, b := call(t, "POST", url+"/v1/chat/completions", `{"model":"baseline-echo",`+msgs+`,"n":3}`)
		var r inference.ChatResponse
		if err := json.Unmarshal(b, &r); st != 200 || err != nil || len(r.Choices) != 3 {
			t.Fatalf("got %d %s", st, b)
		}
		for i, c := range r.Choices {
			if c.Index != i || c.Message.Content != "red green blue" {
				t.Fatalf("choice %d = %+v", i, c)
			}
		}
		if r.Usage.CompletionTokens != 9 {
			t.Fatalf("usage %+v, want 9 completion tokens for 3 choices of 3 words", r.Usage)
		}
	})
	t.Run("logprobs cover every token with top_logprobs alternatives", func(t *testing.T) {
		st, b := call(t, "POST", url+"/v1/chat/completions", `{"model":"baseline-echo",`+msgs+`,"logprobs":true,"top_logprobs":2}`)
		var r inference.ChatResponse
		if err := json.Unmarshal(b, &r); st != 200 || err != nil || r.Choices[0].Logprobs == nil {
			t.Fatalf("got %d %s", st, b)
		}
		var toks []string
		for _, tl := range r.Choices[0].Logprobs.Content {
			toks = append(toks, tl.Token)
			if len(tl.TopLogprobs) != 2 || tl.TopLogprobs[0].Token != tl.Token || tl.TopLogprobs[1].Logprob >= tl.Logprob || string(intsToBytes(tl.Bytes)) != tl.Token {
				t.Fatalf("token %+v", tl)
			}
		}
		if strings.Join(toks, "") != "red green blue" {
			t.Fatalf("tokens %q", toks)
		}
	})
	t.Run("streamed logprobs and usage for n choices", func(t *testing.T) {
		st, b := call(t, "POST", url+"/v1/chat/completions", `{"model":"baseline-echo",`+msgs+`,"n":2,"logprobs":true,"stream":true,"stream_options":{"include_usage":true}}`)
		if st != 200 {
			t.Fatalf("got %d %s", st, b)
		}
		content, lpToks := make([]string, 2), make([]string, 2)
		var usage *inference.Usage
		for _, ev := range sseEvents(t, b) {
			var c inference.ChatChunk
			if err := json.Unmarshal(ev, &c); err != nil {
				t.Fatal(err)
			}
			if c.Usage != nil {
				usage = c.Usage
			}
			for _, ch := range c.Choices {
				content[ch.Index] += ch.Delta.Content
				if ch.Logprobs != nil {
					for _, tl := range ch.Logprobs.Content {
						lpToks[ch.Index] += tl.Token
					}
				}
			}
		}
		for i := range 2 {
			if content[i] != "red green blue" || lpToks[i] != content[i] {
				t.Errorf("choice %d: content %q, logprob tokens %q", i, content[i], lpToks[i])
			}
		}
		if usage == nil || usage.CompletionTokens != 6 || usage.PromptTokens != 3 {
			t.Errorf("usage %+v", usage)
		}
	})
}

func intsToBytes(v []int) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}

func TestOutOfRangeParametersAreRejectedBeforeWork(t *testing.T) {
	url := server(t)
	msgs := `"model":"baseline-echo","messages":[{"role":"user","content":"x"}]`
	tests := []struct{ name, path, body, param string }{
		{"n above the bound", "/v1/chat/completions", fmt.Sprintf(`{%s,"n":%d}`, msgs, baseline.MaxChoices+1), "n"},
		{"n of zero", "/v1/chat/completions", `{` + msgs + `,"n":0}`, "n"},
		{"completions n above the bound", "/v1/completions", `{"model":"baseline-echo","prompt":"x","n":1000000}`, "n"},
		{"stream_options without stream", "/v1/chat/completions", `{` + msgs + `,"stream_options":{"include_usage":true}}`, "stream_options"},
		{"top_logprobs above 20", "/v1/chat/completions", `{` + msgs + `,"logprobs":true,"top_logprobs":21}`, "top_logprobs"},
		{"negative top_logprobs", "/v1/chat/completions", `{` + msgs + `,"logprobs":true,"top_logprobs":-1}`, "top_logprobs"},
		{"top_logprobs without logprobs", "/v1/chat/completions", `{` + msgs + `,"top_logprobs":2}`, "top_logprobs"},
		{"completion logprobs above 5", "/v1/completions", `{"model":"baseline-echo","prompt":"x","logprobs":6}`, "logprobs"},
		{"too many embedding inputs", "/v1/embeddings", `{"model":"baseline-echo","input":[` + strings.TrimSuffix(strings.Repeat(`"a",`, baseline.MaxEmbeddingInputs+1), ",") + `]}`, "input"},
		{"token-array embedding input", "/v1/embeddings", `{"model":"baseline-echo","input":[[1,2]]}`, "input"},
		{"empty embedding input", "/v1/embeddings", `{"model":"baseline-echo","input":""}`, "input"},
		{"embedding dimensions above the bound", "/v1/embeddings", fmt.Sprintf(`{"model":"baseline-echo","input":"a","dimensions":%d}`, baseline.MaxEmbeddingDims+1), "dimensions"},
		{"unknown encoding_format", "/v1/embeddings", `{"model":"baseline-echo","input":"a","encoding_format":"int8"}`, "encoding_format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, b := call(t, "POST", url+tt.path, tt.body)
			wantParamError(t, st, b, 400, tt.param)
		})
	}
	t.Run("n times an echoed prompt over MaxReturnedTokens", func(t *testing.T) {
		words := baseline.MaxReturnedTokens/baseline.MaxChoices + 1
		prompt := strings.Repeat("a ", words)
		st, b := call(t, "POST", url+"/v1/completions", fmt.Sprintf(`{"model":"baseline-echo","prompt":%q,"echo":true,"logprobs":1,"max_tokens":0,"n":%d}`, prompt, baseline.MaxChoices))
		wantParamError(t, st, b, 400, "n")
		// The same prompt once is served.
		if st, b := call(t, "POST", url+"/v1/completions", fmt.Sprintf(`{"model":"baseline-echo","prompt":%q,"echo":true,"logprobs":1,"max_tokens":0}`, prompt)); st != 200 {
			t.Fatalf("n=1: %d %.200s", st, b)
		}
	})
	t.Run("a body over 8 MiB is a 413", func(t *testing.T) {
		st, b := call(t, "POST", url+"/v1/embeddings", `{"model":"baseline-echo","input":"`+strings.Repeat("a", 9<<20)+`"}`)
		wantParamError(t, st, b, 413, "")
	})
}

func TestEmbeddingsAreDeterministicUnitBagsOfWords(t *testing.T) {
	url := server(t)
	embed := func(body string) inference.EmbeddingList {
		t.Helper()
		st, b := call(t, "POST", url+"/v1/embeddings", body)
		var l inference.EmbeddingList
		if err := json.Unmarshal(b, &l); st != 200 || err != nil {
			t.Fatalf("got %d %s", st, b)
		}
		return l
	}
	fl := embed(`{"model":"baseline-echo","input":["the cat sat","The cat sat!","stock prices fell"],"dimensions":32}`)
	if fl.Object != "list" || fl.Model != "baseline-echo" || len(fl.Data) != 3 || fl.Usage.PromptTokens != 9 {
		t.Fatalf("list %+v", fl)
	}
	vecs := make([][]float64, 3)
	for i, d := range fl.Data {
		if d.Index != i || d.Object != "embedding" || json.Unmarshal(d.Embedding, &vecs[i]) != nil || len(vecs[i]) != 32 {
			t.Fatalf("embedding %d: %+v", i, d)
		}
	}
	dot := func(a, b []float64) (s float64) {
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	if n := dot(vecs[0], vecs[0]); math.Abs(n-1) > 1e-6 {
		t.Errorf("|v|² = %v, want 1", n)
	}
	if c := dot(vecs[0], vecs[1]); math.Abs(c-1) > 1e-6 {
		t.Errorf("case and punctuation changed the vector: cosine %v", c)
	}
	if dot(vecs[0], vecs[2]) >= dot(vecs[0], vecs[1]) {
		t.Errorf("an unrelated text is as close as the same words")
	}
	b64 := embed(`{"model":"org/echo-7b","input":"the cat sat","dimensions":32,"encoding_format":"base64"}`)
	var s string
	if err := json.Unmarshal(b64.Data[0].Embedding, &s); err != nil {
		t.Fatalf("base64 embedding %s: %v", b64.Data[0].Embedding, err)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != 4*32 {
		t.Fatalf("base64 decodes to %d bytes: %v", len(raw), err)
	}
	for i := range 32 {
		if got := float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))); got != float64(float32(vecs[0][i])) {
			t.Fatalf("base64 coordinate %d = %v, float %v", i, got, vecs[0][i])
		}
	}
}
