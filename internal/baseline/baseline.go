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
//   - GET /v1/models/{id} returns that model's entry (404 model_not_found
//     for a model not served).
//   - POST /v1/chat/completions answers with the policy's Chat reply, cut to
//     max_tokens words (finish_reason "length"); with "stream": true it sends
//     server-sent events "data: {chunk}\n\n" (object
//     "chat.completion.chunk", a role delta, one content delta per word, a
//     final delta with finish_reason "stop") and then "data: [DONE]\n\n".
//     "logprobs": true gives every word -0.1, and "top_logprobs" (0 to 20)
//     lists the word and then the prompt's distinct words at -3, -4, ...
//   - POST /v1/completions generates the policy's Complete text, ended
//     before the first of the request's "stop" strings (at most 4) and cut
//     to max_tokens words (default 16), and supports "echo" and "logprobs"
//     (0 to 5) for log-likelihood scoring, described below. With "stream":
//     true it sends "text_completion" chunks, one per word (the echoed
//     prompt first), a final chunk with the finish reason, then
//     "data: [DONE]\n\n".
//   - Both completions take "n" (1 to MaxChoices; every choice is the same,
//     since policies are deterministic; for text completions n times the
//     tokens returned is at most MaxReturnedTokens) and, when streaming,
//     "stream_options": {"include_usage": true}, which adds a last chunk
//     with no choices and the usage. Streams are cut after 5 minutes of
//     writing, so a client that stops reading cannot hold the server.
//   - POST /v1/embeddings embeds each input for any served model as a
//     hashed bag of words (see embeddings.go).
//   - GET /healthz answers 200 "ok".
//
// An unknown model is a 404 with OpenAI's error JSON and code
// "model_not_found"; a malformed body is a 400 (code "invalid_json" or
// "invalid_request"), a body over 8 MiB a 413, an out-of-range parameter a
// 400 naming it in "param", and so is a request the policy refuses (an
// error from Chat or Complete). Config.Delay, when set, delays every answer
// (honouring the request's cancellation), which crash tests use to slow an
// evaluation.
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
	mux.HandleFunc("GET /v1/models/{id...}", s.handleModel)
	mux.HandleFunc("POST /v1/embeddings", s.handleEmbeddings)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
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

func (s *server) entry(name string) inference.Model {
	e := inference.Model{ID: name, Object: "model", OwnedBy: OwnedBy}
	if n, ok := s.params[name]; ok {
		e.Meta = &inference.ModelMeta{NParams: n}
	}
	return e
}

func (s *server) handleModels(w http.ResponseWriter, r *http.Request) {
	list := inference.ModelList{Object: "list", Data: []inference.Model{}}
	for _, m := range s.models {
		list.Data = append(list.Data, s.entry(m))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *server) handleModel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("id")
	if _, ok := s.model(w, name); ok {
		writeJSON(w, http.StatusOK, s.entry(name))
	}
}

func countTokens(s string) int { return len(strings.Fields(s)) }

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "body_too_large",
				fmt.Sprintf("baseline model server: request body exceeds %d bytes", maxBodyBytes))
			return false
		}
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

// writeParamError answers 400 for an out-of-range request parameter,
// naming it in "param" as OpenAI does.
func writeParamError(w http.ResponseWriter, param, msg string) {
	code := "invalid_request"
	writeJSON(w, http.StatusBadRequest, inference.ErrorResponse{Error: inference.ErrorDetail{
		Message: msg, Type: "invalid_request_error", Param: &param, Code: &code}})
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSON(w, status, inference.ErrorResponse{Error: inference.ErrorDetail{Message: msg, Type: typ, Code: &code}})
}
