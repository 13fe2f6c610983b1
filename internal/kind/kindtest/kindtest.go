// Package kindtest holds a toy competition kind for tests, beside the
// contract it implements (as net/http/httptest is beside net/http): Echo,
// whose items are strings that the model must repeat. It proves that a new
// kind is one package and one registration line; nothing outside it names
// it. Like every kind, it must never import the store, jobs, api or web.
package kindtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/inference"
	"crucible/internal/jsonl"
	"crucible/internal/kind"
)

// MaxItems bounds an echo competition's items.
const MaxItems = 1000

// maxLineBytes bounds one dataset line: an echo item is a short string.
const maxLineBytes = 64 << 10

// Echo is the toy kind "echo": the dataset is JSONL of strings, and a model
// scores 1 on an item when its reply is exactly the string.
type Echo struct {
	// HTTPClient carries the requests to submitted models (the server's
	// egress client, which applies the address policy).
	HTTPClient *http.Client
}

// Name implements kind.Kind.
func (Echo) Name() string { return "echo" }

// Prepare implements kind.Kind: one item per JSON string line.
func (Echo) Prepare(_ context.Context, spec kind.Spec) (kind.Prepared, error) {
	opt := jsonl.Options{MaxLineBytes: maxLineBytes, MaxValues: MaxItems}
	var items []json.RawMessage
	err := jsonl.Each(bytes.NewReader(spec.Dataset), opt, func(_ int, raw json.RawMessage) error {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("want a JSON string: %w", err)
		}
		items = append(items, raw)
		return nil
	})
	if err != nil {
		return kind.Prepared{}, fmt.Errorf("dataset %s: %w", spec.DatasetName, err)
	}
	if len(items) == 0 {
		return kind.Prepared{}, fmt.Errorf("dataset %s: no items", spec.DatasetName)
	}
	sum := sha256.Sum256(spec.Dataset)
	return kind.Prepared{Config: json.RawMessage(`{}`), DatasetDigest: hex.EncodeToString(sum[:]), Items: items}, nil
}

// Plan implements kind.Kind.
func (k Echo) Plan(_ context.Context, c competition.Competition, s competition.Submission, secret string, items []json.RawMessage) (eval.Evaluator, error) {
	client, err := inference.New(inference.Config{BaseURL: s.Model.BaseURL, APIKey: secret, HTTPClient: k.HTTPClient})
	if err != nil {
		return nil, err
	}
	texts := make([]string, len(items))
	for i, raw := range items {
		if err := json.Unmarshal(raw, &texts[i]); err != nil {
			return nil, fmt.Errorf("competition %s item %d: %w", c.ID, i, err)
		}
	}
	return &evaluator{client: client, model: s.Model.Model, items: texts}, nil
}

// Score implements kind.Kind: the mean of the items echoed.
func (Echo) Score(_ competition.Competition, results []eval.Result) (competition.Card, []float64, error) {
	scores := make([]float64, len(results))
	correct := 0
	for i, r := range results {
		scores[i] = r.Score
		if r.Correct {
			correct++
		}
	}
	return competition.NewCard(scores, correct), scores, nil
}

type evaluator struct {
	client *inference.Client
	model  string
	items  []string
}

func (e *evaluator) Len() int { return len(e.items) }

func (e *evaluator) Evaluate(ctx context.Context, i int) (eval.Result, error) {
	started := time.Now()
	resp, err := e.client.Chat(ctx, inference.ChatRequest{Model: e.model, MaxTokens: 256,
		Messages: []inference.ChatMessage{{Role: "user", Content: e.items[i]}}})
	if err != nil {
		return eval.Result{}, err
	}
	if len(resp.Choices) == 0 {
		return eval.Result{}, fmt.Errorf("echo item %d: the model returned no choice", i)
	}
	ended := time.Now()
	reply := resp.Choices[0].Message.Content
	ok := strings.TrimSpace(reply) == e.items[i]
	score := 0.0
	if ok {
		score = 1
	}
	return eval.Result{Index: i, Prompt: e.items[i], Response: reply, Prediction: strings.TrimSpace(reply), Correct: ok, Score: score,
		Started: started, Ended: ended, LatencyMS: ended.Sub(started).Milliseconds()}, nil
}
