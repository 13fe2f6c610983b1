package preference

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"crucible/internal/inference"
)

// fakeGenerator serves /v1/chat/completions with an answer that is a pure
// function of the prompt: it restates every non-empty line. When same is
// set, it gives one fixed answer whatever the prompt.
func fakeGenerator(t *testing.T, same bool) (*inference.Client, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req inference.ChatRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		prompt := req.Messages[len(req.Messages)-1].Content
		var b strings.Builder
		b.WriteString("Here is my answer, which took 3 drafts.")
		if !same {
			for _, l := range strings.Split(prompt, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					b.WriteString("\n\nI address: " + strings.TrimPrefix(l, "- ") + ".")
				}
			}
		} else {
			b.WriteString("\n\nIt is complete. It is correct.")
		}
		_ = json.NewEncoder(w).Encode(inference.ChatResponse{
			ID: "x", Object: "chat.completion", Model: req.Model,
			Choices: []inference.ChatChoice{{Message: inference.ChatMessage{Role: "assistant", Content: b.String()}, FinishReason: "stop"}},
		})
	}))
	t.Cleanup(srv.Close)
	c, err := inference.New(inference.Config{BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	return c, &calls
}

var epoch0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func TestGenerateBuildsAGroundTruthFromTheDegradationOrder(t *testing.T) {
	seed := DefaultSeeds()[0]
	tests := []struct {
		name  string
		mode  Mode
		calls int64
	}{
		// Every mode with a model also has it rewrite each of the 5 levels.
		{name: "both mode answers every level and degrades the answers", mode: ModeBoth, calls: 10},
		{name: "instruction mode only degrades the instruction", mode: ModeInstruction, calls: 10},
		{name: "answer mode uses the seed's reference and only asks for rewrites", mode: ModeAnswer, calls: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, calls := fakeGenerator(t, false)
			g, err := NewGenerator(GeneratorConfig{Client: client, Model: "gen", Mode: tc.mode, Now: func() time.Time { return epoch0 }, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			task, err := g.Generate(context.Background(), "t1", seed)
			if err != nil {
				t.Fatal(err)
			}
			if calls.Load() != tc.calls {
				t.Errorf("%d model calls, want %d", calls.Load(), tc.calls)
			}
			if err := task.Validate(); err != nil {
				t.Fatal(err)
			}
			if len(task.Responses) != 5 || task.Source != SourceSynthetic || !task.Deadline.Equal(epoch0.Add(time.Hour)) {
				t.Fatalf("task %+v", task)
			}
			for i, r := range task.Responses {
				if task.GroundTruth[i] != r.Level+1 || len(r.Operators) != r.Level {
					t.Errorf("response %d: level %d, operators %v, ground truth %d", i, r.Level, r.Operators, task.GroundTruth[i])
				}
				if strings.Contains(r.ID, "gen") {
					t.Errorf("response id %q leaks the model", r.ID)
				}
			}
			if task.Instruction != seed.Prompt() {
				t.Errorf("instruction %q, want the original prompt", task.Instruction)
			}
			again, _ := g.Generate(context.Background(), "t1", seed)
			if a, b := mustJSON(t, task), mustJSON(t, again); a != b {
				t.Errorf("generation is not deterministic")
			}
		})
	}
}

func TestGenerateShufflesTheCanonicalOrder(t *testing.T) {
	g, err := NewGenerator(GeneratorConfig{Mode: ModeAnswer, Salt: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	identity := 0
	for i, s := range DefaultSeeds() {
		task, err := g.Generate(context.Background(), s.ID, s)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		ordered := true
		for j, r := range task.GroundTruth {
			ordered = ordered && r == j+1
		}
		if ordered {
			identity++
		}
	}
	if identity > 2 {
		t.Errorf("%d of 10 tasks list responses in ground-truth order; the canonical order must be shuffled", identity)
	}
}

func TestGenerateRefusesAModelThatIgnoresTheDegradations(t *testing.T) {
	client, _ := fakeGenerator(t, true)
	g, err := NewGenerator(GeneratorConfig{Client: client, Model: "gen", Mode: ModeInstruction})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Generate(context.Background(), "t", DefaultSeeds()[1])
	if err == nil || !strings.Contains(err.Error(), "gave the same answer") {
		t.Fatalf("error %v, want identical levels refused", err)
	}
}

func TestNewGeneratorChecksItsConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  GeneratorConfig
		want string
	}{
		{"one operator gives too few responses", GeneratorConfig{Mode: ModeAnswer, Operators: []Operator{Truncate}}, "want 3 to 6"},
		{"six operators give too many responses", GeneratorConfig{Mode: ModeAnswer, Operators: []Operator{Truncate, Truncate, Truncate, Truncate, Truncate, Truncate}}, "want 3 to 6"},
		{"an unknown operator is refused", GeneratorConfig{Mode: ModeAnswer, Operators: []Operator{Truncate, "shout"}}, `unknown operator "shout"`},
		{"a model mode needs a client", GeneratorConfig{Mode: ModeBoth}, "client is required"},
		{"an unknown mode is refused", GeneratorConfig{Mode: "dream"}, "unknown mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewGenerator(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOrganicTasksHaveNoGroundTruth(t *testing.T) {
	task, err := NewOrganic(OrganicConfig{ID: "o1", Instruction: "Say hi.", Responses: []string{"hi", "hello", "hey there"}})
	if err != nil {
		t.Fatal(err)
	}
	if task.GroundTruth != nil || task.Source != SourceOrganic || task.Criteria != CriteriaRank {
		t.Errorf("organic task %+v", task)
	}
	if _, err := NewOrganic(OrganicConfig{ID: "o2", Instruction: "x", Responses: []string{"a", "a", "b"}}); err == nil {
		t.Error("duplicate responses accepted")
	}
	if _, err := NewOrganic(OrganicConfig{ID: "o3", Instruction: "x", Responses: []string{"a", "b"}}); err == nil {
		t.Error("two responses accepted")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The degradations of a task follow from its id and the salt: the same
// pair gives the same task, while other ids of the same seed, or another
// salt, give other orders, forms and places.
func TestDegradationsVaryByTaskAndSalt(t *testing.T) {
	seed := DefaultSeeds()[5]
	gen := func(salt string) *Generator {
		g, err := NewGenerator(GeneratorConfig{Mode: ModeAnswer, Salt: salt, Now: func() time.Time { return epoch0 }})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	texts, orders := map[string]bool{}, map[string]bool{}
	for i := range 20 {
		task, err := gen("a").Generate(context.Background(), fmt.Sprint("t", i), seed)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := gen("a").Generate(context.Background(), fmt.Sprint("t", i), seed)
		if mustJSON(t, task) != mustJSON(t, again) {
			t.Fatalf("task t%d is not deterministic", i)
		}
		other, _ := gen("b").Generate(context.Background(), fmt.Sprint("t", i), seed)
		if strings.Join(levelTexts(task), "|") == strings.Join(levelTexts(other), "|") {
			t.Errorf("task t%d: another salt gave the same levels", i)
		}
		lv := levelTexts(task)
		texts[lv[len(lv)-1]] = true
		for _, r := range task.Responses {
			if r.Level == len(lv)-1 {
				orders[strings.Join(r.Operators, ",")] = true
			}
		}
	}
	if len(texts) < 15 || len(orders) < 6 {
		t.Errorf("20 tasks of one seed gave %d distinct most-degraded answers and %d operator orders; want at least 15 and 6", len(texts), len(orders))
	}
}
