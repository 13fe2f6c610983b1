package mcq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"crucible/internal/eval"
	"crucible/internal/eval/task"
	"crucible/internal/inference"
)

// Mode selects how a model is asked a question.
type Mode string

const (
	// Generative asks with one chat completion and reads the answer with
	// task.ExtractChoice (the task package's mcq_answer filter).
	Generative Mode = "generative"
	// LogLikelihood scores each choice as a continuation of the prompt with
	// /v1/completions (echo, logprobs) and picks the most likely one.
	LogLikelihood Mode = "loglik"
)

// DefaultMaxTokens is the generation budget of a generative request when
// Config.MaxTokens is zero.
const DefaultMaxTokens = 32

// MaxTokensLimit is the largest generation budget a competition may set: a
// multiple-choice answer needs a few tokens, and a creator's huge budget
// would be paid by every competitor's model server.
const MaxTokensLimit = 32768

// Config configures an Evaluator.
type Config struct {
	// Client talks to the model server. Required.
	Client *inference.Client
	// Model is the model name sent with every request. Required.
	Model string
	// Mode is Generative (the default when empty) or LogLikelihood.
	Mode Mode
	// Template renders an item into a prompt; nil means DefaultTemplate.
	Template *template.Template
	// MaxTokens bounds generation in Generative mode; 0 means DefaultMaxTokens.
	MaxTokens int
	// Dataset holds the items to evaluate. Required, non-empty.
	Dataset *Dataset
}

// Evaluator evaluates the items of a multiple-choice dataset against one
// model. It implements eval.Evaluator and is safe for concurrent use.
type Evaluator struct {
	client    *inference.Client
	model     string
	mode      Mode
	tmpl      *template.Template // nil: DefaultTemplate
	maxTokens int
	items     []Item
}

var _ eval.Evaluator = (*Evaluator)(nil)

// NewEvaluator checks cfg and returns an Evaluator.
func NewEvaluator(cfg Config) (*Evaluator, error) {
	if cfg.Client == nil {
		return nil, errors.New("mcq: Config.Client is nil")
	}
	if strings.TrimSpace(cfg.Model) == "" {
		return nil, errors.New("mcq: Config.Model is empty")
	}
	if cfg.Dataset == nil || len(cfg.Dataset.Items) == 0 {
		return nil, errors.New("mcq: Config.Dataset has no items")
	}
	mode := cfg.Mode
	if mode == "" {
		mode = Generative
	}
	if mode != Generative && mode != LogLikelihood {
		return nil, fmt.Errorf("mcq: unknown mode %q (want %q or %q)", mode, Generative, LogLikelihood)
	}
	tmpl := cfg.Template // nil: DefaultTemplate, rendered by renderDefault
	mt := cfg.MaxTokens
	if mt < 0 || mt > MaxTokensLimit {
		return nil, fmt.Errorf("mcq: Config.MaxTokens %d is outside 0..%d", mt, MaxTokensLimit)
	}
	if mt == 0 {
		mt = DefaultMaxTokens
	}
	return &Evaluator{
		client:    cfg.Client,
		model:     cfg.Model,
		mode:      mode,
		tmpl:      tmpl,
		maxTokens: mt,
		items:     cfg.Dataset.Items,
	}, nil
}

// Len returns the number of items in the dataset.
func (e *Evaluator) Len() int { return len(e.items) }

// GenerativeDetail is Result.Detail in Generative mode.
type GenerativeDetail struct {
	Mode         Mode   `json:"mode"`
	ItemID       string `json:"item_id"`
	Answer       string `json:"answer"`
	Parsed       bool   `json:"parsed"`
	FinishReason string `json:"finish_reason,omitempty"`
}

// LogLikelihoodDetail is Result.Detail in LogLikelihood mode; Result.Response
// holds the same JSON.
type LogLikelihoodDetail struct {
	Mode   Mode      `json:"mode"`
	ItemID string    `json:"item_id"`
	Answer string    `json:"answer"`
	Sums   []float64 `json:"loglik"`
	Tokens []int     `json:"continuation_tokens"`
}

// Evaluate asks the model item index and scores its answer. A wrong or
// unparseable answer is a Result with Correct=false; an error means the
// request failed (see inference.IsPermanent) or the server answered
// malformed.
func (e *Evaluator) Evaluate(ctx context.Context, index int) (eval.Result, error) {
	if index < 0 || index >= len(e.items) {
		return eval.Result{}, fmt.Errorf("mcq: index %d out of range [0,%d)", index, len(e.items))
	}
	it := e.items[index]
	prompt, err := e.render(it)
	if err != nil {
		return eval.Result{}, fmt.Errorf("mcq: item %s: render prompt: %w", it.ID, err)
	}
	res := eval.Result{Index: index, Prompt: prompt, Started: time.Now()}
	if e.mode == LogLikelihood {
		err = e.loglik(ctx, it, &res)
	} else {
		err = e.generate(ctx, it, &res)
	}
	if err != nil {
		return eval.Result{}, fmt.Errorf("mcq: item %s: %w", it.ID, err)
	}
	res.Ended = time.Now()
	res.LatencyMS = res.Ended.Sub(res.Started).Milliseconds()
	if res.Correct {
		res.Score = 1
	}
	return res, nil
}

func (e *Evaluator) render(it Item) (string, error) {
	if e.tmpl == nil {
		return renderDefault(it), nil
	}
	return Render(e.tmpl, it)
}

func (e *Evaluator) generate(ctx context.Context, it Item, res *eval.Result) error {
	zero := 0.0
	a, err := e.client.ChatAnswer(ctx, inference.ChatRequest{
		Model:       e.model,
		Messages:    []inference.ChatMessage{{Role: "user", Content: res.Prompt}},
		MaxTokens:   e.maxTokens,
		Temperature: &zero,
	})
	if err != nil {
		return err
	}
	if a.Choices == 0 {
		return errors.New("chat completion has no choices")
	}
	res.Response = a.Content
	res.PromptTokens = a.Usage.PromptTokens
	res.CompletionTokens = a.Usage.CompletionTokens
	idx, ok := task.ExtractChoice(a.Content, it.Choices)
	if ok {
		res.Prediction = Letter(idx)
		res.Correct = idx == it.Answer
	}
	detail, err := generativeDetail(GenerativeDetail{
		Mode: Generative, ItemID: it.ID, Answer: Letter(it.Answer), Parsed: ok, FinishReason: a.FinishReason,
	})
	if err != nil {
		return err
	}
	res.Detail = detail
	return nil
}

// generativeDetail is json.Marshal(d) without its reflection, a tenth of
// an item's client CPU when the model answers at once
// (bench/eval-throughput), for the usual Details, whose strings need no
// escaping; the others go to json.Marshal. FuzzGenerativeDetail keeps the
// two equal.
func generativeDetail(d GenerativeDetail) ([]byte, error) {
	if !jsonPlain(string(d.Mode)) || !jsonPlain(d.ItemID) || !jsonPlain(d.Answer) || !jsonPlain(d.FinishReason) {
		return json.Marshal(d)
	}
	b := make([]byte, 0, 80+len(d.ItemID)+len(d.FinishReason))
	b = append(b, `{"mode":"`...)
	b = append(b, d.Mode...)
	b = append(b, `","item_id":"`...)
	b = append(b, d.ItemID...)
	b = append(b, `","answer":"`...)
	b = append(b, d.Answer...)
	b = append(b, `","parsed":`...)
	b = strconv.AppendBool(b, d.Parsed)
	if d.FinishReason != "" {
		b = append(b, `,"finish_reason":"`...)
		b = append(b, d.FinishReason...)
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

// jsonPlain reports whether json.Marshal writes s as its bytes between
// quotes: ASCII without control characters, quotes, backslashes and the
// HTML-escaped <, > and &.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c >= utf8.RuneSelf, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// loglik scores each choice as the task package's multiple_choice path
// does: " <choice>" as the continuation of the prompt (task.Request), its
// echoed log-likelihood (task.ContinuationLL) and the most likely choice
// (task.Choose).
func (e *Evaluator) loglik(ctx context.Context, it Item, res *eval.Result) error {
	d := LogLikelihoodDetail{Mode: LogLikelihood, ItemID: it.ID, Answer: Letter(it.Answer),
		Sums: make([]float64, len(it.Choices)), Tokens: make([]int, len(it.Choices))}
	lls := make([]task.LL, len(it.Choices))
	for i, c := range it.Choices {
		req := task.Request{Prompt: res.Prompt, Continuation: " " + c}
		resp, err := e.client.Completion(ctx, req.LLRequest(e.model))
		if err != nil {
			return fmt.Errorf("choice %s: %w", Letter(i), err)
		}
		if lls[i], err = task.ContinuationLL(req.Prompt, *resp); err != nil {
			return fmt.Errorf("choice %s: %w", Letter(i), err)
		}
		d.Sums[i], d.Tokens[i] = lls[i].Sum, lls[i].Tokens
		res.PromptTokens += resp.Usage.PromptTokens
		res.CompletionTokens += resp.Usage.CompletionTokens
	}
	best := task.Choose(lls)
	detail, err := json.Marshal(d)
	if err != nil {
		return err
	}
	res.Response = string(detail)
	res.Detail = detail
	res.Prediction = Letter(best)
	res.Correct = best == it.Answer
	return nil
}
