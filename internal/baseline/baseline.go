// Package baseline owns Crucible's deterministic baseline model server:
// an OpenAI-compatible HTTP handler that answers multiple-choice prompts by a
// fixed policy, so evaluations, benchmarks and crash tests run without a real
// model. Everything it serves is labelled "baseline": model names are
// "baseline-<policy>" and /v1/models reports owned_by "crucible-baseline".
//
// # Endpoints
//
//   - GET /v1/models lists one model per configured policy.
//   - POST /v1/chat/completions answers with "<letter>) <choice text>", e.g.
//     "B) Go home and see Riley"; with "stream": true it sends server-sent
//     events "data: {chunk}\n\n" (object "chat.completion.chunk", a role
//     delta, one content delta per word, a final delta with finish_reason
//     "stop") and then "data: [DONE]\n\n".
//   - POST /v1/completions generates " <letter>" (up to max_tokens words,
//     default 16) and supports "echo" and "logprobs" for log-likelihood
//     scoring, described below.
//
// An unknown model is a 404 with OpenAI's error JSON and code
// "model_not_found"; a malformed body is a 400 (code "invalid_json" or
// "invalid_request"). Config.Delay, when set, delays every answer (honouring
// the request's cancellation), which crash tests use to slow an evaluation.
//
// # Policies
//
//   - random: a pseudo-random choice fixed by (Config.Seed, item ID) through
//     FNV-1a, so the same item gets the same answer in every process;
//   - first: always the first choice;
//   - oracle: the answer key (requires Config.Key);
//   - overlap: the choice sharing the most distinct words (lowercased,
//     punctuation stripped) with the context and question, ties to the
//     lowest index.
//
// # Recognising items
//
// The server indexes Config.Key by each item's context and question text. A
// prompt (for chat, all message contents joined by newlines) is split into
// lines; each trimmed line, and the line without a short "Label:" prefix, is
// looked up. Items whose every choice text also appears in the prompt are
// candidates; the one with the most matching lines wins, ties to the lowest
// index. A prompt matching no item gets the fallback answer "A" (chat) or
// " A" (completions), never an error. Items whose prompts are identical
// (Social IQa dev has five such pairs with conflicting labels) all get the
// first item's answer, so oracle scores 1949/1954 there, not 1954.
//
// # Log likelihood
//
// Tokens are whitespace-delimited words; text_offset counts characters
// (code points) like Python servers do. With "echo": true the prompt's tokens
// are returned, the first with a null logprob as OpenAI does. If the prompt
// is a recognised item's prompt followed by one of its choice texts (the
// longest such suffix wins), that choice's tokens get -0.1 each when it is the
// policy's choice and -3.0 each otherwise; every other prompt token gets
// -1.0 and generated tokens -0.1. Usage counts whitespace tokens.
//
// # Roleplay policies
//
// persona, persona-plus, persona-ref and persona-incoherent play the
// character of a roleplay card and continue the user's side as a generator;
// judge and judge-garbage grade roleplay replies (see persona.go and
// judge.go for the exact, documented features). They answer chat requests
// only, need no Config.Key, and are served only when listed in
// Config.Policies.
//
// This package may import internal/inference (wire types),
// internal/eval/mcq (datasets) and internal/eval/roleplay (prompt formats)
// only; nothing in production serving imports it.
package baseline

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"crucible/internal/eval/mcq"
	"crucible/internal/inference"
)

// Policy names accepted in Config.Policies.
const (
	PolicyRandom  = "random"
	PolicyFirst   = "first"
	PolicyOracle  = "oracle"
	PolicyOverlap = "overlap"
)

// ModelPrefix prefixes every served model name: "baseline-oracle".
const ModelPrefix = "baseline-"

// OwnedBy is the owned_by value of every model in /v1/models.
const OwnedBy = "crucible-baseline"

// FallbackLetter is the answer given to a prompt that matches no item.
const FallbackLetter = "A"

// maxBodyBytes bounds request bodies.
const maxBodyBytes = 8 << 20

// Config configures the baseline server.
type Config struct {
	// Policies lists the policies to serve, one model "baseline-<policy>"
	// each; empty means all four (random, first, oracle, overlap).
	Policies []string
	// Key is the answer-key dataset used to recognise prompts; it is
	// required for the oracle policy and optional otherwise.
	Key *mcq.Dataset
	// Delay, when positive, is waited before every answer.
	Delay time.Duration
	// Seed fixes the random policy's answers.
	Seed uint64
}

type server struct {
	policies map[string]string // model name → policy
	models   []string
	items    []mcq.Item
	index    map[string][]int // context or question text → item indexes
	picks    map[string][]int // policy → choice index per item
	delay    time.Duration
	seq      atomic.Uint64
}

// New returns the baseline server's handler.
func New(cfg Config) (http.Handler, error) {
	policies := cfg.Policies
	if len(policies) == 0 {
		policies = []string{PolicyRandom, PolicyFirst, PolicyOracle, PolicyOverlap}
	}
	s := &server{
		policies: map[string]string{},
		index:    map[string][]int{},
		picks:    map[string][]int{},
		delay:    cfg.Delay,
	}
	if cfg.Key != nil {
		s.items = cfg.Key.Items
	}
	for _, p := range policies {
		switch p {
		case PolicyRandom, PolicyFirst, PolicyOverlap:
		case PolicyPersona, PolicyPersonaPlus, PolicyPersonaRef, PolicyPersonaIncoherent, PolicyJudge, PolicyJudgeGarbage:
		case PolicyOracle:
			if len(s.items) == 0 {
				return nil, errors.New("baseline: the oracle policy needs Config.Key")
			}
		default:
			return nil, fmt.Errorf("baseline: unknown policy %q (want random, first, oracle, overlap, %s)", p, strings.Join(RoleplayPolicies(), ", "))
		}
		name := ModelPrefix + p
		if _, dup := s.policies[name]; dup {
			continue
		}
		s.policies[name] = p
		s.models = append(s.models, name)
		picks := make([]int, len(s.items))
		for i, it := range s.items {
			picks[i] = pick(p, cfg.Seed, it)
		}
		s.picks[p] = picks
	}
	for i, it := range s.items {
		for _, text := range []string{it.Context, it.Question} {
			if text = strings.TrimSpace(text); text != "" {
				if l := s.index[text]; len(l) == 0 || l[len(l)-1] != i {
					s.index[text] = append(l, i)
				}
			}
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", s.handleModels)
	mux.HandleFunc("POST /v1/chat/completions", s.handleChat)
	mux.HandleFunc("POST /v1/completions", s.handleCompletions)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "not_found",
			fmt.Sprintf("baseline model server: no route for %s %s", r.Method, r.URL.Path))
	})
	return mux, nil
}

// pick returns the choice a policy gives item it.
func pick(policy string, seed uint64, it mcq.Item) int {
	switch policy {
	case PolicyOracle:
		return it.Answer
	case PolicyRandom:
		h := fnv.New64a()
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], seed)
		h.Write(b[:])
		h.Write([]byte(it.ID))
		return int(h.Sum64() % uint64(len(it.Choices)))
	case PolicyOverlap:
		ctx := map[string]bool{}
		for _, w := range words(it.Context + " " + it.Question) {
			ctx[w] = true
		}
		best, bestN := 0, -1
		for i, c := range it.Choices {
			seen := map[string]bool{}
			n := 0
			for _, w := range words(c) {
				if ctx[w] && !seen[w] {
					seen[w] = true
					n++
				}
			}
			if n > bestN {
				best, bestN = i, n
			}
		}
		return best
	}
	return 0
}

// words lowercases s and splits it into words of letters and digits.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// recognise returns the index of the item prompt is about, or -1.
func (s *server) recognise(prompt string) int {
	if len(s.index) == 0 {
		return -1
	}
	var counts map[int]int
	add := func(text string) bool {
		l, ok := s.index[text]
		if !ok {
			return false
		}
		if counts == nil {
			counts = map[int]int{}
		}
		for _, i := range l {
			counts[i]++
		}
		return true
	}
	for line := range strings.SplitSeq(prompt, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || add(line) {
			continue
		}
		if k := strings.Index(line, ": "); k > 0 && k <= 24 {
			add(strings.TrimSpace(line[k+2:]))
		}
	}
	best, bestN := -1, 0
	for i, n := range counts {
		if n < bestN || (n == bestN && i > best) {
			continue
		}
		all := true
		for _, c := range s.items[i].Choices {
			if !strings.Contains(prompt, c) {
				all = false
				break
			}
		}
		if all {
			best, bestN = i, n
		}
	}
	return best
}

func (s *server) model(w http.ResponseWriter, name string) (string, bool) {
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

// answer returns the choice index and the chat answer for prompt under policy.
func (s *server) answer(policy, prompt string) (item, choice int, text string) {
	item = s.recognise(prompt)
	if item < 0 {
		return -1, 0, FallbackLetter
	}
	choice = s.picks[policy][item]
	return item, choice, mcq.Letter(choice) + ") " + s.items[item].Choices[choice]
}

func (s *server) id(prefix string) string {
	return fmt.Sprintf("%s-baseline-%d", prefix, s.seq.Add(1))
}

func (s *server) handleModels(w http.ResponseWriter, r *http.Request) {
	list := inference.ModelList{Object: "list", Data: []inference.Model{}}
	for _, m := range s.models {
		list.Data = append(list.Data, inference.Model{ID: m, Object: "model", OwnedBy: OwnedBy})
	}
	writeJSON(w, http.StatusOK, list)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_json",
			"baseline model server: request body is not valid JSON: "+err.Error())
		return false
	}
	return true
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
	var text string
	if isRoleplay(policy) {
		var err error
		if text, err = roleplayAnswer(policy, req.Messages); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_request", err.Error())
			return
		}
	} else {
		_, _, text = s.answer(policy, prompt)
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
	if !s.wait(r) {
		return
	}

	// Recognise "item prompt + choice text" and the item's answer.
	item, choice, _ := s.answer(policy, prompt)
	contStart, contChoice := -1, -1
	if item >= 0 {
		best := -1
		for i, c := range s.items[item].Choices {
			if strings.HasSuffix(prompt, c) && (best < 0 || len(c) > len(s.items[item].Choices[best])) {
				best = i
			}
		}
		if best >= 0 {
			contChoice = best
			contStart = len([]rune(prompt)) - len([]rune(s.items[item].Choices[best]))
		}
	}
	letter := FallbackLetter
	if item >= 0 {
		letter = mcq.Letter(choice)
	}
	gen := ""
	finish := "stop"
	if maxTokens > 0 {
		gen = " " + letter
	} else {
		finish = "length"
	}
	promptRunes := len([]rune(prompt))
	promptToks := tokenize(prompt, 0)
	genToks := tokenize(gen, promptRunes)

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
				if contStart >= 0 && t.offset >= contStart {
					v = -3.0
					if contChoice == choice {
						v = -0.1
					}
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

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSON(w, status, inference.ErrorResponse{Error: inference.ErrorDetail{Message: msg, Type: typ, Code: &code}})
}

// Models returns the model names a server configured with cfg serves, in
// order.
func Models(cfg Config) []string {
	policies := cfg.Policies
	if len(policies) == 0 {
		policies = []string{PolicyRandom, PolicyFirst, PolicyOracle, PolicyOverlap}
	}
	var out []string
	for _, p := range policies {
		if name := ModelPrefix + p; !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}
