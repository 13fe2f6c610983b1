package preference

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"crucible/internal/baseline"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/inference"
)

// countingClient serves h behind a request counter.
func countingClient(t *testing.T, h http.Handler) (*inference.Client, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/chat/completions" {
			calls.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := inference.New(inference.Config{BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	return c, &calls
}

// rewriter is a model that restates the answer it is given: it swaps a
// few words for synonyms and keeps numbers and code, as the rewrite prompt
// asks. undo makes it return orig instead whenever asked, as a model that
// "repairs" the answers would.
func rewriter(undo string) http.Handler {
	syn := strings.NewReplacer(" and ", " as well as ", "The ", "This ", " because ", " since ", " when ", " whenever ", "Water ", "H2O ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req inference.ChatRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		text := strings.TrimPrefix(req.Messages[len(req.Messages)-1].Content, rewritePrompt)
		var out []string
		for _, s := range splitFences(text) {
			if s.code {
				out = append(out, s.open+s.body+s.close)
			} else {
				out = append(out, syn.Replace(s.body))
			}
		}
		answer := strings.Join(out, "")
		if undo != "" {
			answer = undo
		}
		_ = json.NewEncoder(w).Encode(inference.ChatResponse{ID: "x", Object: "chat.completion", Model: req.Model,
			Choices: []inference.ChatChoice{{Message: inference.ChatMessage{Role: "assistant", Content: answer}, FinishReason: "stop"}}})
	})
}

func levelTexts(task Task) []string {
	out := make([]string, len(task.Responses))
	for _, r := range task.Responses {
		out[r.Level] = r.Text
	}
	return out
}

func generateWith(t *testing.T, client *inference.Client, id string, s Seed) Task {
	t.Helper()
	g, err := NewGenerator(GeneratorConfig{Client: client, Model: "gen", Mode: ModeAnswer, Salt: "rewrite", Now: func() time.Time { return epoch0 }})
	if err != nil {
		t.Fatal(err)
	}
	task, err := g.Generate(context.Background(), id, s)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// The baseline model server answers a rewrite request with its fallback
// letter: every rewrite fails the checks and each level keeps its text.
func TestTheBaselineModelServerIsAskedToRewriteAndItsAnswersAreRefused(t *testing.T) {
	h, err := mcqtest.New(mcqtest.Config{Policies: []string{mcqtest.PolicyFirst}})
	if err != nil {
		t.Fatal(err)
	}
	client, calls := countingClient(t, h)
	seed := DefaultSeeds()[1]
	task := func() Task {
		g, err := NewGenerator(GeneratorConfig{Client: client, Model: baseline.ModelPrefix + mcqtest.PolicyFirst, Mode: ModeAnswer, Salt: "rewrite", Now: func() time.Time { return epoch0 }})
		if err != nil {
			t.Fatal(err)
		}
		task, err := g.Generate(context.Background(), "t1", seed)
		if err != nil {
			t.Fatal(err)
		}
		return task
	}()
	if calls.Load() != 5 {
		t.Errorf("%d model calls, want one rewrite per level (5)", calls.Load())
	}
	plain := generateWith(t, nil, "t1", seed)
	if a, b := strings.Join(levelTexts(task), "\n--\n"), strings.Join(levelTexts(plain), "\n--\n"); a != b {
		t.Errorf("refused rewrites changed the levels:\n%s\nwant\n%s", a, b)
	}
}

func TestAFaithfulRewriteReplacesTheLevelsWording(t *testing.T) {
	client, calls := countingClient(t, rewriter(""))
	for i, seed := range DefaultSeeds() {
		id := "t" + seed.ID
		task := generateWith(t, client, id, seed)
		plain := generateWith(t, nil, id, seed)
		if err := task.Validate(); err != nil {
			t.Fatal(err)
		}
		rw, orig := levelTexts(task), levelTexts(plain)
		changed := 0
		for k := range rw {
			if rw[k] != orig[k] {
				changed++
				if !keepsDegradation(orig[k], rw[k]) {
					t.Errorf("seed %d level %d: kept a rewrite that lost numbers or code: %q", i, k, rw[k])
				}
			}
		}
		if strings.Contains(strings.Join(orig, " "), " and ") && changed == 0 {
			t.Errorf("seed %s: no level was rewritten", seed.ID)
		}
	}
	if calls.Load() != int64(5*len(DefaultSeeds())) {
		t.Errorf("%d model calls, want 5 per task", calls.Load())
	}
}

// A model that answers every rewrite with the original answer would undo
// the degradations; levels whose numbers or length changed, or that would
// repeat another level, keep their own text.
func TestARewriteThatUndoesTheDegradationIsRefused(t *testing.T) {
	seed := DefaultSeeds()[5] // boiling point: numbers in most sentences
	client, _ := countingClient(t, rewriter(seed.Reference))
	task := generateWith(t, client, "t1", seed)
	plain := generateWith(t, nil, "t1", seed)
	rw, orig := levelTexts(task), levelTexts(plain)
	if rw[0] != seed.Reference {
		t.Errorf("level 0 %q, want the reference", rw[0])
	}
	for k := 1; k < len(rw); k++ {
		if rw[k] != orig[k] {
			t.Errorf("level %d took the undoing rewrite: %q, want %q", k, rw[k], orig[k])
		}
	}
}
