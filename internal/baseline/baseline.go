// Package baseline owns Crucible's deterministic baseline model server: an
// OpenAI-compatible HTTP handler whose models answer by fixed policies, so
// evaluations, benchmarks and crash tests run without a real model. The
// server is generic: each competition kind provides its policies in its own
// test package (internal/eval/mcq/mcqtest, internal/eval/roleplay/roleplaytest,
// internal/eval/task/tasktest, as net/http/httptest is beside net/http), and
// internal/app assembles them for `crucible model-server`. Everything it
// serves is labelled "baseline": model names are "baseline-<policy>" (or the
// name a launcher asks for, Named.Served) and /v1/models reports owned_by
// "crucible-baseline".
//
// # Endpoints
//
//   - GET /v1/models lists one model per configured policy, in order, with
//     "meta": {"n_params": N} for a policy configured with Named.Params.
//   - POST /v1/chat/completions answers with the policy's Chat reply, cut to
//     max_tokens words (finish_reason "length"); with "stream": true it sends
//     server-sent events "data: {chunk}\n\n" (object
//     "chat.completion.chunk", a role delta, one content delta per word, a
//     final delta with finish_reason "stop") and then "data: [DONE]\n\n".
//   - POST /v1/completions generates the policy's Complete text, ended
//     before the first of the request's "stop" strings (at most 4) and cut
//     to max_tokens words (default 16), and supports "echo" and "logprobs"
//     for log-likelihood scoring, described below.
//
// An unknown model is a 404 with OpenAI's error JSON and code
// "model_not_found"; a malformed body is a 400 (code "invalid_json" or
// "invalid_request"), and so is a request the policy refuses (an error from
// Chat or Complete). Config.Delay, when set, delays every answer (honouring
// the request's cancellation), which crash tests use to slow an evaluation.
//
// # Log likelihood
//
// Tokens are whitespace-delimited words; text_offset counts characters
// (code points) like Python servers do. With "echo": true the prompt's tokens
// are returned, the first with a null logprob as OpenAI does. Prompt tokens
// from the policy's Completion.ScoredFrom on get Completion.Logprob each,
// every other prompt token -1.0, and generated tokens -0.1. Usage counts
// whitespace tokens.
//
// This package may import internal/inference (wire types) only; it never
// imports a kind, and nothing in production serving imports it.
package baseline

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"crucible/internal/inference"
)

// ModelPrefix prefixes every served model name: "baseline-oracle".
const ModelPrefix = "baseline-"

// OwnedBy is the owned_by value of every model in /v1/models.
const OwnedBy = "crucible-baseline"

// maxBodyBytes bounds request bodies.
const maxBodyBytes = 8 << 20

// ErrNoMatch, returned (or wrapped) by Chat or Complete, says the policy
// has no answer for the prompt: the server answers 404, code "no_match".
var ErrNoMatch = errors.New("no answer for this prompt")

// Policy answers the requests of one served model. Its answers should be a
// pure function of the request, so that every run sees the same model.
type Policy interface {
	// Chat returns the reply to msgs (never empty); an error rejects the
	// request with a 400.
	Chat(msgs []inference.ChatMessage) (string, error)
	// Complete returns the continuation of prompt and how the policy scores
	// the prompt's own tokens; an error rejects the request with a 400.
	Complete(prompt string) (Completion, error)
}

// Completion is a policy's answer to a completion prompt.
type Completion struct {
	// Text is the generated continuation, e.g. " B".
	Text string
	// ScoredFrom is the offset, in code points, of the prompt's tail that
	// the policy scores (say, a choice appended to a question), or -1 for
	// none. Echoed prompt tokens starting there get Logprob each.
	ScoredFrom int
	Logprob    float64
}

// Named is a policy and the name it is served under ("baseline-<Name>").
type Named struct {
	Name   string
	Policy Policy
	// Params, when positive, is declared as the model's parameter count
	// in /v1/models ("meta": {"n_params": Params}, llama.cpp's shape).
	Params int64
	// Served, when set, is the model name served instead of
	// "baseline-<Name>": the name a launcher gives an artifact's model
	// (`crucible model-server --artifact DIR --name NAME`).
	Served string
}

// Config configures the baseline server.
type Config struct {
	// Policies lists the models to serve, in /v1/models order; a repeated
	// name is served once, by its first policy.
	Policies []Named
	// Delay, when positive, is waited before every answer.
	Delay time.Duration
}

type server struct {
	policies map[string]Policy // model name → policy
	params   map[string]int64  // model name → declared parameter count
	models   []string
	delay    time.Duration
	seq      atomic.Uint64
}

// New returns the baseline server's handler.
func New(cfg Config) http.Handler {
	s := &server{policies: map[string]Policy{}, params: map[string]int64{}, delay: cfg.Delay}
	for _, p := range cfg.Policies {
		name := ModelPrefix + p.Name
		if p.Served != "" {
			name = p.Served
		}
		if _, dup := s.policies[name]; dup {
			continue
		}
		s.policies[name] = p.Policy
		if p.Params > 0 {
			s.params[name] = p.Params
		}
		s.models = append(s.models, name)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", s.handleModels)
	mux.HandleFunc("POST /v1/chat/completions", s.handleChat)
	mux.HandleFunc("POST /v1/completions", s.handleCompletions)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "not_found",
			fmt.Sprintf("baseline model server: no route for %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func (s *server) model(w http.ResponseWriter, name string) (Policy, bool) {
	p, ok := s.policies[name]
	if !ok {
		writeError(w, http.StatusNotFound, "invalid_request_error", "model_not_found",
			fmt.Sprintf("The model `%s` does not exist; this baseline server serves %s.", name, strings.Join(s.models, ", ")))
	}
	return p, ok
}

func (s *server) wait(r *http.Request) bool {
	if s.delay <= 0 {
		return true
	}
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *server) id(prefix string) string {
	return fmt.Sprintf("%s-baseline-%d", prefix, s.seq.Add(1))
}

func (s *server) handleModels(w http.ResponseWriter, r *http.Request) {
	list := inference.ModelList{Object: "list", Data: []inference.Model{}}
	for _, m := range s.models {
		e := inference.Model{ID: m, Object: "model", OwnedBy: OwnedBy}
		if n, ok := s.params[m]; ok {
			e.Meta = &inference.ModelMeta{NParams: n}
		}
		list.Data = append(list.Data, e)
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *server) handleChat(w http.ResponseWriter, r *http.Request) {
	var req inference.ChatRequest
	if !decode(w, r, &req) {
		return
	}
	policy, ok := s.model(w, req.Model)
	if !ok {
		return
	}
	if len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_request", "messages must not be empty")
		return
	}
	parts := make([]string, len(req.Messages))
	for i, m := range req.Messages {
		parts[i] = m.Content
	}
	prompt := strings.Join(parts, "\n")
	if !s.wait(r) {
		return
	}
	text, err := policy.Chat(req.Messages)
	if err != nil {
		writePolicyError(w, err)
		return
	}
	finish := "stop"
	if req.MaxTokens > 0 {
		if f := strings.Fields(text); len(f) > req.MaxTokens {
			text, finish = strings.Join(f[:req.MaxTokens], " "), "length"
		}
	}
	created := time.Now().Unix()
	id := s.id("chatcmpl")
	if req.Stream {
		s.stream(w, id, created, req.Model, text, finish)
		return
	}
	pt, ct := countTokens(prompt), countTokens(text)
	writeJSON(w, http.StatusOK, inference.ChatResponse{
		ID: id, Object: "chat.completion", Created: created, Model: req.Model,
		Choices: []inference.ChatChoice{{Index: 0, Message: inference.ChatMessage{Role: "assistant", Content: text}, FinishReason: finish}},
		Usage:   inference.Usage{PromptTokens: pt, CompletionTokens: ct, TotalTokens: pt + ct},
	})
}

func (s *server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if !decode(w, r, &req) {
		return
	}
	policy, ok := s.model(w, req.Model)
	if !ok {
		return
	}
	var prompt string
	if err := json.Unmarshal(req.Prompt, &prompt); err != nil {
		var list []string
		if err := json.Unmarshal(req.Prompt, &list); err != nil || len(list) != 1 {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_request",
				"prompt must be a string or an array of one string")
			return
		}
		prompt = list[0]
	}
	maxTokens := 16
	if req.MaxTokens != nil {
		maxTokens = *req.MaxTokens
	}
	if maxTokens < 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_request", "max_tokens must not be negative")
		return
	}
	stop, err := stops(req.Stop)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_request", err.Error())
		return
	}
	if !s.wait(r) {
		return
	}
	c, err := policy.Complete(prompt)
	if err != nil {
		writePolicyError(w, err)
		return
	}
	promptRunes := len([]rune(prompt))
	promptToks := tokenize(prompt, 0)
	gen, finish := c.Text, "stop"
	for _, st := range stop {
		if k := strings.Index(gen, st); st != "" && k >= 0 {
			gen = gen[:k]
		}
	}
	genToks := tokenize(gen, promptRunes)
	if len(genToks) > maxTokens {
		// Keep the text up to the end of the last token allowed.
		end := 0
		if maxTokens > 0 {
			last := genToks[maxTokens-1]
			end = last.offset - promptRunes + len([]rune(last.text))
		}
		gen, genToks, finish = string([]rune(gen)[:end]), genToks[:maxTokens], "length"
	}

	text := gen
	if req.Echo {
		text = prompt + gen
	}
	choiceOut := inference.CompletionChoice{Text: text, Index: 0, FinishReason: finish}
	if req.Logprobs != nil {
		lp := &inference.Logprobs{}
		addTok := func(t token, v *float64) {
			lp.Tokens = append(lp.Tokens, t.text)
			lp.TokenLogprobs = append(lp.TokenLogprobs, v)
			lp.TextOffset = append(lp.TextOffset, t.offset)
			if v == nil {
				lp.TopLogprobs = append(lp.TopLogprobs, nil)
			} else {
				lp.TopLogprobs = append(lp.TopLogprobs, map[string]float64{t.text: *v})
			}
		}
		if req.Echo {
			for k, t := range promptToks {
				if k == 0 {
					addTok(t, nil)
					continue
				}
				v := -1.0
				if c.ScoredFrom >= 0 && t.offset >= c.ScoredFrom {
					v = c.Logprob
				}
				addTok(t, &v)
			}
		}
		for _, t := range genToks {
			v := -0.1
			addTok(t, &v)
		}
		if lp.Tokens == nil {
			lp.Tokens, lp.TokenLogprobs, lp.TextOffset = []string{}, []*float64{}, []int{}
		}
		choiceOut.Logprobs = lp
	}
	pt, ct := len(promptToks), len(genToks)
	writeJSON(w, http.StatusOK, inference.CompletionResponse{
		ID: s.id("cmpl"), Object: "text_completion", Created: time.Now().Unix(), Model: req.Model,
		Choices: []inference.CompletionChoice{choiceOut},
		Usage:   inference.Usage{PromptTokens: pt, CompletionTokens: ct, TotalTokens: pt + ct},
	})
}

func (s *server) stream(w http.ResponseWriter, id string, created int64, model, text, finish string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(delta inference.ChatDelta, finishReason *string) {
		b, _ := json.Marshal(inference.ChatChunk{
			ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
			Choices: []inference.ChatChunkChoice{{Index: 0, Delta: delta, FinishReason: finishReason}},
		})
		fmt.Fprintf(w, "data: %s\n\n", b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	send(inference.ChatDelta{Role: "assistant"}, nil)
	for i, word := range strings.Fields(text) {
		if i > 0 {
			word = " " + word
		}
		send(inference.ChatDelta{Content: word}, nil)
	}
	send(inference.ChatDelta{}, &finish)
	fmt.Fprint(w, "data: [DONE]\n\n")
	if flusher != nil {
		flusher.Flush()
	}
}

type completionRequest struct {
	Model     string          `json:"model"`
	Prompt    json.RawMessage `json:"prompt"`
	MaxTokens *int            `json:"max_tokens"`
	Echo      bool            `json:"echo"`
	Logprobs  *int            `json:"logprobs"`
	Stop      json.RawMessage `json:"stop"`
}

// stops reads a completion request's stop: a string or up to
// inference.MaxStop strings, as OpenAI accepts.
func stops(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil || len(list) > inference.MaxStop {
		return nil, fmt.Errorf("stop must be a string or an array of at most %d strings", inference.MaxStop)
	}
	return list, nil
}

// token is one whitespace-delimited word and its offset in code points.
type token struct {
	text   string
	offset int
}

func tokenize(s string, base int) []token {
	var toks []token
	start, pos := -1, 0
	startPos := 0
	for i, r := range s {
		if unicode.IsSpace(r) {
			if start >= 0 {
				toks = append(toks, token{s[start:i], base + startPos})
				start = -1
			}
		} else if start < 0 {
			start, startPos = i, pos
		}
		pos++
	}
	if start >= 0 {
		toks = append(toks, token{s[start:], base + startPos})
	}
	return toks
}

func countTokens(s string) int { return len(strings.Fields(s)) }

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_json",
			"baseline model server: request body is not valid JSON: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// writePolicyError answers a policy's refusal: 404 "no_match" for
// ErrNoMatch, else 400.
func writePolicyError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrNoMatch) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "no_match", err.Error())
		return
	}
	writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_request", err.Error())
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSON(w, status, inference.ErrorResponse{Error: inference.ErrorDetail{Message: msg, Type: typ, Code: &code}})
}
