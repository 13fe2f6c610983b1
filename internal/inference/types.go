package inference

// This file holds the wire types of the OpenAI-compatible API, shared by the
// client in this package and by servers such as internal/baseline. Field
// names and JSON shapes follow OpenAI's documented API exactly.

import "encoding/json"

// ChatMessage is one message of a chat conversation.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatRequest is the body of POST /v1/chat/completions.
type ChatRequest struct {
	Model       string        `json:"model"`
	Messages    []ChatMessage `json:"messages"`
	MaxTokens   int           `json:"max_tokens,omitempty"`
	Temperature *float64      `json:"temperature,omitempty"`
	Stream      bool          `json:"stream,omitempty"`
	Seed        *int          `json:"seed,omitempty"`
	// N asks for N alternative choices (servers default to 1).
	N *int `json:"n,omitempty"`
	// StreamOptions is only allowed with Stream.
	StreamOptions *StreamOptions `json:"stream_options,omitempty"`
	// Logprobs asks for each generated token's log probability, and
	// TopLogprobs (0 to MaxTopLogprobs, only with Logprobs) for that many
	// most likely alternatives at each position.
	Logprobs    *bool `json:"logprobs,omitempty"`
	TopLogprobs *int  `json:"top_logprobs,omitempty"`
}

// MaxTopLogprobs is the most top_logprobs OpenAI's chat API accepts.
const MaxTopLogprobs = 20

// StreamOptions tunes a streamed response.
type StreamOptions struct {
	// IncludeUsage asks for a last chunk, before "data: [DONE]", with an
	// empty choices list and the request's usage.
	IncludeUsage bool `json:"include_usage"`
}

// ChatLogprobs holds the log probabilities of a chat choice's tokens.
type ChatLogprobs struct {
	Content []TokenLogprob `json:"content"`
}

// TokenLogprob is one generated token of a chat choice with its log
// probability and the most likely alternatives at its position.
type TokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float64      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []TopLogprob `json:"top_logprobs"`
}

// TopLogprob is one alternative token at a position.
type TopLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// Usage counts the tokens of one request.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// ChatChoice is one generated alternative of a chat completion.
type ChatChoice struct {
	Index        int         `json:"index"`
	Message      ChatMessage `json:"message"`
	FinishReason string      `json:"finish_reason"`
	// Logprobs is set when the request asked for logprobs.
	Logprobs *ChatLogprobs `json:"logprobs,omitempty"`
}

// ChatResponse is the body returned by POST /v1/chat/completions (object "chat.completion").
type ChatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []ChatChoice `json:"choices"`
	Usage   Usage        `json:"usage"`
}

// ChatDelta is the incremental message content of one streamed chunk.
type ChatDelta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content,omitempty"`
}

// ChatChunkChoice is one alternative inside a streamed chunk.
type ChatChunkChoice struct {
	Index        int       `json:"index"`
	Delta        ChatDelta `json:"delta"`
	FinishReason *string   `json:"finish_reason"`
	// Logprobs covers the tokens of this chunk's delta when the request
	// asked for logprobs.
	Logprobs *ChatLogprobs `json:"logprobs,omitempty"`
}

// ChatChunk is one server-sent event of a streamed chat completion (object "chat.completion.chunk").
type ChatChunk struct {
	ID      string            `json:"id"`
	Object  string            `json:"object"`
	Created int64             `json:"created"`
	Model   string            `json:"model"`
	Choices []ChatChunkChoice `json:"choices"`
	// Usage is set only on the last chunk of a stream whose request set
	// stream_options.include_usage; that chunk has no choices.
	Usage *Usage `json:"usage,omitempty"`
}

// CompletionRequest is the body of POST /v1/completions. MaxTokens is always
// sent, so a value of 0 (score the prompt, generate nothing) reaches the server.
// Stop holds up to MaxStop strings the generation ends before.
type CompletionRequest struct {
	Model       string   `json:"model"`
	Prompt      string   `json:"prompt"`
	MaxTokens   int      `json:"max_tokens"`
	Echo        bool     `json:"echo,omitempty"`
	Logprobs    *int     `json:"logprobs,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	Stop        []string `json:"stop,omitempty"`
}

// MaxStop is the most stop strings OpenAI's API accepts in one request.
const MaxStop = 4

// MaxCompletionLogprobs is the largest "logprobs" OpenAI's text
// completions API accepts.
const MaxCompletionLogprobs = 5

// Logprobs holds per-token log probabilities of a completion. The first entry
// of TokenLogprobs is null when the prompt is echoed, as in OpenAI's API.
type Logprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []*float64           `json:"token_logprobs"`
	TextOffset    []int                `json:"text_offset"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
}

// CompletionChoice is one generated alternative of a text completion.
type CompletionChoice struct {
	Text         string    `json:"text"`
	Index        int       `json:"index"`
	Logprobs     *Logprobs `json:"logprobs"`
	FinishReason string    `json:"finish_reason"`
}

// CompletionResponse is the body returned by POST /v1/completions (object "text_completion").
type CompletionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []CompletionChoice `json:"choices"`
	Usage   Usage              `json:"usage"`
}

// CompletionChunk is one server-sent event of a streamed text completion
// (object "text_completion", like the whole response). Its choices carry
// the next piece of text; Usage is set only on the last chunk of a stream
// whose request set stream_options.include_usage, which has no choices.
type CompletionChunk struct {
	ID      string                  `json:"id"`
	Object  string                  `json:"object"`
	Created int64                   `json:"created"`
	Model   string                  `json:"model"`
	Choices []CompletionChunkChoice `json:"choices"`
	Usage   *Usage                  `json:"usage,omitempty"`
}

// CompletionChunkChoice is one alternative inside a streamed text
// completion chunk; FinishReason is null until the alternative's last chunk.
type CompletionChunkChoice struct {
	Text         string    `json:"text"`
	Index        int       `json:"index"`
	Logprobs     *Logprobs `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

// EmbeddingRequest is the body of POST /v1/embeddings. Input is a string
// or an array of strings; EncodingFormat is "float" (the default) or
// "base64" (little-endian float32s, which the official SDKs ask for).
type EmbeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format,omitempty"`
	Dimensions     *int            `json:"dimensions,omitempty"`
}

// Embedding is one input's vector: a JSON array of numbers, or a base64
// string when the request's encoding_format was "base64".
type Embedding struct {
	Object    string          `json:"object"`
	Index     int             `json:"index"`
	Embedding json.RawMessage `json:"embedding"`
}

// EmbeddingUsage counts the tokens of an embeddings request.
type EmbeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// EmbeddingList is the body returned by POST /v1/embeddings (object "list").
type EmbeddingList struct {
	Object string         `json:"object"`
	Data   []Embedding    `json:"data"`
	Model  string         `json:"model"`
	Usage  EmbeddingUsage `json:"usage"`
}

// Model describes one model served by a server.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created,omitempty"`
	OwnedBy string `json:"owned_by"`
	// Meta is the model's metadata where the server reports it (llama.cpp's
	// server does; OpenAI's API and vLLM do not).
	Meta *ModelMeta `json:"meta,omitempty"`
}

// ModelMeta is the metadata a server may report for a model in
// GET /v1/models, in llama.cpp's server's shape. It is the server's
// declaration, not a measurement by whoever reads it.
type ModelMeta struct {
	// NParams is the model's parameter count.
	NParams int64 `json:"n_params,omitempty"`
}

// ModelList is the body returned by GET /v1/models (object "list").
type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}

// ErrorDetail is the payload of an OpenAI error response.
type ErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// ErrorResponse is the body of a non-2xx OpenAI-compatible response.
type ErrorResponse struct {
	Error ErrorDetail `json:"error"`
}
