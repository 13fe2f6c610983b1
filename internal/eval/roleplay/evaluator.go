package roleplay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"crucible/internal/eval"
	"crucible/internal/inference"
)

// Config configures an Evaluator.
type Config struct {
	// Items are the planned items. Required, non-empty.
	Items []Item
	// Model is the submitted model. Required.
	Model Endpoint
	// Reference answers every item too; its reply is the judge's exemplar
	// and a source of verbatim-copy checks. Required unless every item
	// carries a stored Reference.
	Reference Endpoint
	// Judge grades quality and coherence. Required.
	Judge Endpoint
	// Params is the model's parameter count as measured by whoever runs
	// the evaluation (the hub reading the weights); 0 means unknown, and
	// the size component is left out (Scoring.SizeMissing).
	Params int64
	// DeclaredParams, when Params is 0, takes the count the model's own
	// server declares in its GET /v1/models entry ("meta": {"n_params"},
	// as llama.cpp's server reports it). A competitor's server can declare
	// anything, so only an evaluation whose model servers are run by
	// someone the competition trusts may set it; see
	// CompetitionConfig.TrustDeclaredParams.
	DeclaredParams bool
	// Scoring holds weights and thresholds; zero fields take the defaults
	// (see DefaultScoring).
	Scoring Scoring
	// MaxTokens bounds the model's and the reference's replies; 0 means
	// DefaultMaxTokens.
	MaxTokens int
}

// Evaluator scores a model's in-character replies to planned items. It
// implements eval.Evaluator and is safe for concurrent use.
type Evaluator struct {
	cfg Config

	paramsOnce   sync.Once
	params       int64
	paramsSource string
}

var _ eval.Evaluator = (*Evaluator)(nil)

// NewEvaluator checks cfg and returns an Evaluator.
func NewEvaluator(cfg Config) (*Evaluator, error) {
	if len(cfg.Items) == 0 {
		return nil, errors.New("roleplay: Config.Items is empty")
	}
	if err := cfg.Model.check("model"); err != nil {
		return nil, err
	}
	if err := cfg.Judge.check("judge"); err != nil {
		return nil, err
	}
	needRef := false
	for i, it := range cfg.Items {
		if len(it.Conversation) == 0 || it.Conversation[len(it.Conversation)-1].Role != RoleUser {
			return nil, fmt.Errorf("roleplay: item %d (%s): conversation must end with a user message", i, it.ID)
		}
		needRef = needRef || it.Reference == ""
	}
	if needRef {
		if err := cfg.Reference.check("reference"); err != nil {
			return nil, err
		}
	}
	if cfg.MaxTokens < 0 {
		return nil, fmt.Errorf("roleplay: Config.MaxTokens is negative (%d)", cfg.MaxTokens)
	}
	if cfg.MaxTokens == 0 {
		cfg.MaxTokens = DefaultMaxTokens
	}
	if cfg.Params < 0 {
		return nil, fmt.Errorf("roleplay: Config.Params is negative (%d)", cfg.Params)
	}
	cfg.Scoring = cfg.Scoring.WithDefaults()
	if err := cfg.Scoring.Validate(); err != nil {
		return nil, err
	}
	return &Evaluator{cfg: cfg}, nil
}

// Len returns the number of items.
func (e *Evaluator) Len() int { return len(e.cfg.Items) }

// Detail is Result.Detail: everything needed to explain an item's score.
type Detail struct {
	ItemID    string `json:"item_id"`
	Character string `json:"character"`
	// Reference is the reference model's reply.
	Reference string `json:"reference"`
	// Components are the item's component scores, each in [0,1];
	// Creativity before the cross-reply penalties of Aggregate.
	Components Components `json:"components"`
	// Judge is the quality verdict, with its per-criterion grades.
	Judge QualityVerdict `json:"judge"`
	// Coherence is the coherence verdict.
	Coherence CoherenceVerdict `json:"coherence"`
	// Creativity explains Components.Creativity.
	Creativity CreativityParts `json:"creativity"`
	// ReplyWords and UserWords are the word counts behind Vibe.
	ReplyWords int `json:"reply_words"`
	UserWords  int `json:"user_words"`
	// Params is the parameter count behind Size (0: unknown, size left
	// out) and ParamsSource where it came from: ParamsMeasured or
	// ParamsDeclared.
	Params       int64  `json:"params,omitempty"`
	ParamsSource string `json:"params_source,omitempty"`
	// ReplyChars and UserChars are the lengths in characters behind a
	// Dippy preset's vibe.
	ReplyChars int `json:"reply_chars,omitempty"`
	UserChars  int `json:"user_chars,omitempty"`
	// Compare is the judge's comparison with the reference, for presets
	// that use it.
	Compare *CompareVerdict `json:"compare,omitempty"`
	// FinishReason is the model's finish reason.
	FinishReason string `json:"finish_reason,omitempty"`
}

// InfraError is a failure of the evaluation's own infrastructure (the
// reference model or the judge: unreachable, erroring, or answering
// unparseable output), as opposed to the submitted model's. It is never
// permanent: inference.IsPermanent reports false even when the judge
// answered 4xx, because the submission is not at fault and the evaluation
// must be retried. errors.Is(err, ErrInfrastructure) reports it, and
// errors.Is still sees the cause's sentinels (ErrJudgeOutput,
// context.Canceled).
type InfraError struct {
	// Role is "reference" or "judge".
	Role string
	// Err is the cause.
	Err error
}

// ErrInfrastructure matches every InfraError with errors.Is.
var ErrInfrastructure = errors.New("roleplay: evaluation infrastructure failure")

// Error implements error.
func (e *InfraError) Error() string { return fmt.Sprintf("roleplay: %s: %v", e.Role, e.Err) }

// Is reports whether target is ErrInfrastructure or matches the cause. It
// deliberately has no Unwrap, so errors.As cannot reach an
// *inference.StatusError inside and call it permanent.
func (e *InfraError) Is(target error) bool {
	return target == ErrInfrastructure || errors.Is(e.Err, target)
}

func infra(role string, err error) error { return &InfraError{Role: role, Err: err} }

// Evaluate asks the model to answer item index in character and scores the
// reply. Errors from the submitted model are returned as they are (a 404 for
// a wrong model name is permanent per inference.IsPermanent); failures of
// the reference or the judge, including unparseable judge output, are
// *InfraError and never permanent. A poor reply is a low score, never an
// error. Result.Score is the item's weighted total before the cross-reply
// penalties and the multiplier of Aggregate; Result.Correct reports
// Score > 0; Result.Prompt is the JSON of the chat messages sent;
// Result.LatencyMS times the model's request alone.
func (e *Evaluator) Evaluate(ctx context.Context, index int) (eval.Result, error) {
	if index < 0 || index >= len(e.cfg.Items) {
		return eval.Result{}, fmt.Errorf("roleplay: index %d out of range [0,%d)", index, len(e.cfg.Items))
	}
	it := e.cfg.Items[index]
	t := e.cfg.Scoring.Thresholds
	msgs := Messages(it.Character, it.Conversation)
	prompt, err := json.Marshal(msgs)
	if err != nil {
		return eval.Result{}, err
	}
	res := eval.Result{Index: index, Prompt: string(prompt)}

	// The submitted model.
	s := int(it.Seed)
	zero := 0.0
	res.Started = time.Now()
	resp, err := e.cfg.Model.Client.Chat(ctx, inference.ChatRequest{
		Model: e.cfg.Model.Model, Messages: msgs, MaxTokens: e.cfg.MaxTokens, Temperature: &zero, Seed: &s,
	})
	res.Ended = time.Now()
	res.LatencyMS = res.Ended.Sub(res.Started).Milliseconds()
	if err != nil {
		return eval.Result{}, fmt.Errorf("roleplay: item %s: model: %w", it.ID, err)
	}
	if len(resp.Choices) == 0 {
		return eval.Result{}, fmt.Errorf("roleplay: item %s: model: chat completion has no choices", it.ID)
	}
	reply := strings.TrimSpace(resp.Choices[0].Message.Content)
	res.Response = reply
	res.PromptTokens, res.CompletionTokens = resp.Usage.PromptTokens, resp.Usage.CompletionTokens
	d := Detail{ItemID: it.ID, Character: it.Character.Name, FinishReason: resp.Choices[0].FinishReason}
	d.Params, d.ParamsSource = e.modelParams(ctx)

	// The reference.
	d.Reference = it.Reference
	if d.Reference == "" {
		if d.Reference, err = complete(ctx, e.cfg.Reference, msgs, e.cfg.MaxTokens, it.Seed); err != nil {
			return eval.Result{}, fmt.Errorf("roleplay: item %s: %w", it.ID, infra("reference", err))
		}
	}

	// The judge: quality against the reference, then coherence.
	jc := JudgeCharacter{Name: it.Character.Name, Persona: it.Character.Persona, Scenario: it.Character.Scenario}
	if d.Judge, err = e.judgeQuality(ctx, JudgeInput{Task: TaskQuality, Character: jc, Conversation: it.Conversation, Reference: d.Reference, Reply: reply}, it.Seed); err != nil {
		return eval.Result{}, fmt.Errorf("roleplay: item %s: %w", it.ID, infra("judge", err))
	}
	if d.Coherence, err = e.judgeCoherence(ctx, JudgeInput{Task: TaskCoherence, Character: jc, Conversation: it.Conversation, Reply: reply}, it.Seed); err != nil {
		return eval.Result{}, fmt.Errorf("roleplay: item %s: %w", it.ID, infra("judge", err))
	}
	sc := e.cfg.Scoring
	var judgeWin float64
	if sc.judges() {
		v, err := e.judgeCompare(ctx, JudgeInput{Task: TaskCompare, Character: jc, Conversation: it.Conversation, Reference: d.Reference, Reply: reply}, it.Seed)
		if err != nil {
			return eval.Result{}, fmt.Errorf("roleplay: item %s: %w", it.ID, infra("judge", err))
		}
		d.Compare, judgeWin = &v, v.WinShare()
	}

	// Components.
	sources := []string{d.Reference, it.Character.Persona, it.Character.Scenario, it.Character.Greeting}
	for _, ex := range it.Character.ExampleDialogue {
		sources = append(sources, ex.User, ex.Character)
	}
	p, _ := presetOf(sc.Preset)
	c := Components{Quality: d.Judge.Quality(), JudgeWin: judgeWin}
	c.Creativity, d.Creativity = creativity(reply, sources, t)
	d.ReplyWords, d.UserWords = len(strings.Fields(reply)), len(strings.Fields(it.LastUser()))
	d.ReplyChars, d.UserChars = utf8.RuneCountInString(reply), utf8.RuneCountInString(it.LastUser())
	c.Vibe = p.vibe(vibeInput{d.ReplyWords, d.UserWords, d.ReplyChars, d.UserChars}, t)
	c.Latency = p.latency(res.LatencyMS, t)
	if d.Params > 0 {
		c.Size = p.size(d.Params, t)
	}
	if d.Coherence.Coherent {
		c.Coherence = 1
	}
	d.Components = c
	res.Score = sc.itemScore(p, c, d.Params > 0)
	res.Correct = res.Score > 0
	if res.Detail, err = json.Marshal(d); err != nil {
		return eval.Result{}, err
	}
	return res, nil
}

// Sources of Detail.Params.
const (
	ParamsMeasured = "measured"
	ParamsDeclared = "declared"
)

// modelParams returns the model's parameter count and its source: the
// configured count, else (with DeclaredParams) the one its server declares,
// asked once per evaluation; 0 and "" when unknown.
func (e *Evaluator) modelParams(ctx context.Context) (int64, string) {
	if e.cfg.Params > 0 {
		return e.cfg.Params, ParamsMeasured
	}
	if !e.cfg.DeclaredParams {
		return 0, ""
	}
	e.paramsOnce.Do(func() {
		list, err := e.cfg.Model.Client.Models(ctx)
		if err != nil {
			return // no listing: the count stays unknown
		}
		for _, m := range list.Data {
			if m.ID == e.cfg.Model.Model && m.Meta != nil && m.Meta.NParams > 0 {
				e.params, e.paramsSource = m.Meta.NParams, ParamsDeclared
			}
		}
	})
	return e.params, e.paramsSource
}

func (e *Evaluator) judge(ctx context.Context, in JudgeInput, seed int64) (string, error) {
	msgs, err := JudgeMessages(in)
	if err != nil {
		return "", err
	}
	s := int(seed)
	zero := 0.0
	resp, err := e.cfg.Judge.Client.Chat(ctx, inference.ChatRequest{
		Model: e.cfg.Judge.Model, Messages: msgs, MaxTokens: 512, Temperature: &zero, Seed: &s,
	})
	if err != nil {
		return "", err
	}
	if len(resp.Choices) == 0 {
		return "", fmt.Errorf("%w: chat completion has no choices", ErrJudgeOutput)
	}
	return resp.Choices[0].Message.Content, nil
}

func (e *Evaluator) judgeQuality(ctx context.Context, in JudgeInput, seed int64) (QualityVerdict, error) {
	out, err := e.judge(ctx, in, seed)
	if err != nil {
		return QualityVerdict{}, err
	}
	return ParseQuality(out)
}

func (e *Evaluator) judgeCompare(ctx context.Context, in JudgeInput, seed int64) (CompareVerdict, error) {
	out, err := e.judge(ctx, in, seed)
	if err != nil {
		return CompareVerdict{}, err
	}
	return ParseCompare(out)
}

func (e *Evaluator) judgeCoherence(ctx context.Context, in JudgeInput, seed int64) (CoherenceVerdict, error) {
	out, err := e.judge(ctx, in, seed)
	if err != nil {
		return CoherenceVerdict{}, err
	}
	return ParseCoherence(out)
}
