package baseline

// This file holds POST /v1/chat/completions: n choices, streaming with
// stream_options.include_usage, and logprobs/top_logprobs.

import (
	"net/http"
	"strings"
	"time"

	"crucible/internal/inference"
)

// chatTokenLogprob is the log probability of every generated chat token,
// as of every generated completion token.
const chatTokenLogprob = -0.1

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
	n, ok := streamAndN(w, req.N, req.Stream, req.StreamOptions)
	if !ok {
		return
	}
	wantLogprobs := req.Logprobs != nil && *req.Logprobs
	top := 0
	if req.TopLogprobs != nil {
		top = *req.TopLogprobs
		if top < 0 || top > inference.MaxTopLogprobs {
			writeParamError(w, "top_logprobs", "top_logprobs must be between 0 and 20")
			return
		}
		if !wantLogprobs {
			writeParamError(w, "top_logprobs", "top_logprobs requires logprobs: true")
			return
		}
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
	pieces := chatPieces(text)
	var lps []inference.TokenLogprob
	if wantLogprobs {
		lps = chatLogprobs(pieces, prompt, top)
	}
	pt, ct := countTokens(prompt), countTokens(text)
	usage := inference.Usage{PromptTokens: pt, CompletionTokens: n * ct, TotalTokens: pt + n*ct}
	if req.Stream {
		var u *inference.Usage
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			u = &usage
		}
		streamChat(w, inference.ChatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model},
			pieces, lps, wantLogprobs, finish, n, u)
		return
	}
	choices := make([]inference.ChatChoice, n)
	for i := range choices {
		choices[i] = inference.ChatChoice{Index: i, Message: inference.ChatMessage{Role: "assistant", Content: text}, FinishReason: finish}
		if wantLogprobs {
			choices[i].Logprobs = &inference.ChatLogprobs{Content: append([]inference.TokenLogprob{}, lps...)}
		}
	}
	writeJSON(w, http.StatusOK, inference.ChatResponse{
		ID: id, Object: "chat.completion", Created: created, Model: req.Model, Choices: choices, Usage: usage,
	})
}

// chatPieces splits a reply into the tokens a stream sends: its words, each
// after the first with a leading space.
func chatPieces(text string) []string {
	words := strings.Fields(text)
	for i := 1; i < len(words); i++ {
		words[i] = " " + words[i]
	}
	return words
}

// chatLogprobs gives every piece chatTokenLogprob and, when top > 0, up to
// top alternatives: the piece itself, then the prompt's distinct words (a
// deterministic stand-in for a vocabulary) at -3, -4, ...
func chatLogprobs(pieces []string, prompt string, top int) []inference.TokenLogprob {
	var vocab []string
	seen := map[string]bool{}
	for _, wd := range strings.Fields(prompt) {
		if !seen[wd] && len(vocab) < inference.MaxTopLogprobs {
			seen[wd] = true
			vocab = append(vocab, " "+wd)
		}
	}
	out := make([]inference.TokenLogprob, len(pieces))
	for i, p := range pieces {
		tl := inference.TokenLogprob{Token: p, Logprob: chatTokenLogprob, Bytes: tokenBytes(p), TopLogprobs: []inference.TopLogprob{}}
		if top > 0 {
			tl.TopLogprobs = append(tl.TopLogprobs, inference.TopLogprob{Token: p, Logprob: chatTokenLogprob, Bytes: tokenBytes(p)})
			for j, alt := range vocab {
				if len(tl.TopLogprobs) >= top {
					break
				}
				if strings.TrimSpace(alt) == strings.TrimSpace(p) {
					continue
				}
				tl.TopLogprobs = append(tl.TopLogprobs, inference.TopLogprob{Token: alt, Logprob: -3 - float64(j), Bytes: tokenBytes(alt)})
			}
		}
		out[i] = tl
	}
	return out
}

// tokenBytes is a token's UTF-8 bytes, as OpenAI's "bytes" lists them.
func tokenBytes(tok string) []int {
	b := make([]int, len(tok))
	for i := range len(tok) {
		b[i] = int(tok[i])
	}
	return b
}

// streamChat sends a chat reply as server-sent events: for each of the n
// choices a role delta, one content delta per piece (with its logprob when
// asked) and a final delta with the finish reason, the choices interleaved
// piece by piece; then the usage chunk if usage is set, and "data: [DONE]".
func streamChat(w http.ResponseWriter, head inference.ChatChunk, pieces []string, lps []inference.TokenLogprob, wantLogprobs bool, finish string, n int, usage *inference.Usage) {
	ev := startEvents(w)
	defer ev.end()
	send := func(i int, delta inference.ChatDelta, lp *inference.ChatLogprobs, finishReason *string) bool {
		c := head
		c.Choices = []inference.ChatChunkChoice{{Index: i, Delta: delta, Logprobs: lp, FinishReason: finishReason}}
		return ev.send(c)
	}
	for i := range n {
		if !send(i, inference.ChatDelta{Role: "assistant"}, nil, nil) {
			return
		}
	}
	for k, p := range pieces {
		var lp *inference.ChatLogprobs
		if wantLogprobs {
			lp = &inference.ChatLogprobs{Content: lps[k : k+1]}
		}
		for i := range n {
			if !send(i, inference.ChatDelta{Content: p}, lp, nil) {
				return
			}
		}
	}
	for i := range n {
		if !send(i, inference.ChatDelta{}, nil, &finish) {
			return
		}
	}
	if usage != nil {
		c := head
		c.Choices, c.Usage = []inference.ChatChunkChoice{}, usage
		if !ev.send(c) {
			return
		}
	}
	ev.done()
}
