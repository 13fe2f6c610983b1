package baseline

// This file holds POST /v1/completions: generation, stop strings, echo,
// logprobs, n choices and streaming.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"crucible/internal/inference"
)

// MaxReturnedTokens bounds the tokens one completion response returns over
// all its choices, so "n" times an echoed 8 MiB prompt (with a logprob per
// token) cannot make a response hundreds of times the request's size.
const MaxReturnedTokens = 1 << 20

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
	n, ok := streamAndN(w, req.N, req.Stream, req.StreamOptions)
	if !ok {
		return
	}
	if req.Logprobs != nil && (*req.Logprobs < 0 || *req.Logprobs > inference.MaxCompletionLogprobs) {
		writeParamError(w, "logprobs", fmt.Sprintf("logprobs must be between 0 and %d", inference.MaxCompletionLogprobs))
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

	text, returned := gen, len(genToks)
	if req.Echo {
		text, returned = prompt+gen, returned+len(promptToks)
	}
	if n*returned > MaxReturnedTokens {
		writeParamError(w, "n", fmt.Sprintf("n × the tokens returned (%d × %d) exceeds %d", n, returned, MaxReturnedTokens))
		return
	}
	var lp *inference.Logprobs
	if req.Logprobs != nil {
		lp = &inference.Logprobs{}
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
			v := chatTokenLogprob
			addTok(t, &v)
		}
		if lp.Tokens == nil {
			lp.Tokens, lp.TokenLogprobs, lp.TextOffset = []string{}, []*float64{}, []int{}
		}
	}
	pt, ct := len(promptToks), n*len(genToks)
	usage := inference.Usage{PromptTokens: pt, CompletionTokens: ct, TotalTokens: pt + ct}
	id, created := s.id("cmpl"), time.Now().Unix()
	if req.Stream {
		var pieces []completionPiece
		if req.Echo {
			pieces = append(pieces, completionPiece{text: prompt, lp: sliceLogprobs(lp, 0, len(promptToks))})
		}
		from := 0
		if req.Echo {
			from = len(promptToks)
		}
		pieces = append(pieces, genPieces(gen, genToks, promptRunes, lp, from)...)
		var u *inference.Usage
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			u = &usage
		}
		streamCompletion(w, inference.CompletionChunk{ID: id, Object: "text_completion", Created: created, Model: req.Model},
			pieces, finish, n, u)
		return
	}
	choices := make([]inference.CompletionChoice, n)
	for i := range choices {
		choices[i] = inference.CompletionChoice{Text: text, Index: i, Logprobs: lp, FinishReason: finish}
	}
	writeJSON(w, http.StatusOK, inference.CompletionResponse{
		ID: id, Object: "text_completion", Created: created, Model: req.Model, Choices: choices, Usage: usage,
	})
}

// sliceLogprobs returns entries [from, to) of lp, or nil for a nil lp.
func sliceLogprobs(lp *inference.Logprobs, from, to int) *inference.Logprobs {
	if lp == nil {
		return nil
	}
	return &inference.Logprobs{Tokens: lp.Tokens[from:to], TokenLogprobs: lp.TokenLogprobs[from:to],
		TextOffset: lp.TextOffset[from:to], TopLogprobs: lp.TopLogprobs[from:to]}
}

// completionPiece is the text of one streamed completion chunk and the
// logprobs of its tokens (nil when not asked for).
type completionPiece struct {
	text string
	lp   *inference.Logprobs
}

// genPieces splits generated text into one piece per token, each piece
// carrying the whitespace before its token (the last also what follows);
// the tokens' logprobs start at index from of lp.
func genPieces(gen string, toks []token, promptRunes int, lp *inference.Logprobs, from int) []completionPiece {
	runes := []rune(gen)
	if len(toks) == 0 {
		if gen == "" {
			return nil
		}
		return []completionPiece{{text: gen, lp: sliceLogprobs(lp, from, from)}}
	}
	out := make([]completionPiece, len(toks))
	start := 0
	for k := range toks {
		end := len(runes)
		if k+1 < len(toks) {
			end = toks[k+1].offset - promptRunes
		}
		out[k] = completionPiece{text: string(runes[start:end]), lp: sliceLogprobs(lp, from+k, from+k+1)}
		start = end
	}
	return out
}

// streamCompletion sends a text completion as server-sent events: each
// piece once per choice (choices interleaved), a final empty chunk per
// choice with its finish reason, the usage chunk if usage is set, and
// "data: [DONE]".
func streamCompletion(w http.ResponseWriter, head inference.CompletionChunk, pieces []completionPiece, finish string, n int, usage *inference.Usage) {
	ev := startEvents(w)
	defer ev.end()
	send := func(ch inference.CompletionChunkChoice) bool {
		c := head
		c.Choices = []inference.CompletionChunkChoice{ch}
		return ev.send(c)
	}
	for _, p := range pieces {
		for i := range n {
			if !send(inference.CompletionChunkChoice{Text: p.text, Index: i, Logprobs: p.lp}) {
				return
			}
		}
	}
	for i := range n {
		if !send(inference.CompletionChunkChoice{Index: i, FinishReason: &finish}) {
			return
		}
	}
	if usage != nil {
		c := head
		c.Choices, c.Usage = []inference.CompletionChunkChoice{}, usage
		if !ev.send(c) {
			return
		}
	}
	ev.done()
}

type completionRequest struct {
	Model         string                   `json:"model"`
	Prompt        json.RawMessage          `json:"prompt"`
	MaxTokens     *int                     `json:"max_tokens"`
	Echo          bool                     `json:"echo"`
	Logprobs      *int                     `json:"logprobs"`
	Stop          json.RawMessage          `json:"stop"`
	N             *int                     `json:"n"`
	Stream        bool                     `json:"stream"`
	StreamOptions *inference.StreamOptions `json:"stream_options"`
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
