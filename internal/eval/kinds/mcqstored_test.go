package kinds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"crucible/internal/competition"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
)

// storedItems are five Social IQa items as an mcq competition stored them
// before mcq scored through the task package (internal/eval/task).
const storedItems = `[{"id":"s:1","context":"Tracy didn't go home that evening and resisted Riley's attacks.","question":"What does Tracy need to do before this?","choices":["make a new plan","Go home and see Riley","Find somewhere to go"],"answer":2},{"id":"s:2","context":"Sydney walked past a homeless woman asking for change but did not have any money they could give to her. Sydney felt bad afterwards.","question":"How would you describe Sydney?","choices":["sympathetic","like a person who was unable to help","incredulous"],"answer":0},{"id":"s:3","context":"Sasha protected the patients' rights by making new laws regarding cancer drug trials.","question":"What will patients want to do next?","choices":["write new laws","get petitions signed","live longer"],"answer":1},{"id":"s:4","context":"Jordan was in charge of taking the food on the camping trip and left all the food at home.","question":"How would Jordan feel afterwards?","choices":["horrible that he let his friends down on the camping trip","happy that he doesn't need to do the cooking on the trip","very proud and accomplished about the camping trip"],"answer":0},{"id":"s:5","context":"Kendall opened their mouth to speak and what came out shocked everyone.","question":"How would you describe Kendall?","choices":["a very quiet person","a very passive person","a very aggressive and talkative person"],"answer":2}]`

// TestStoredMCQCompetitionsScoreAsBefore evaluates stored mcq competitions
// (the configuration and items JSON as stored before the fold) against the
// baseline policies and compares each item's prediction and score, and a
// digest of every result's prompt, response, detail and token counts, with
// what the mcq evaluator gave before it scored through the task package.
func TestStoredMCQCompetitionsScoreAsBefore(t *testing.T) {
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(storedItems), &raw); err != nil {
		t.Fatal(err)
	}
	ds := &mcq.Dataset{}
	if err := json.Unmarshal([]byte(storedItems), &ds.Items); err != nil {
		t.Fatal(err)
	}
	h, err := mcqtest.New(mcqtest.Config{Key: ds, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	k := MCQ{Egress: Egress{HTTPClient: http.DefaultClient}}
	configs := map[string]string{
		"gen":         `{"mode":"generative","max_tokens":32}`,
		"loglik":      `{"mode":"loglik","max_tokens":32}`,
		"loglik-tmpl": `{"mode":"loglik","template":"Q: {{.Question}}\n{{range .Choices}}{{.Letter}}. {{.Text}}\n{{end}}A:","max_tokens":32}`,
	}
	// Recorded with the mcq evaluator of commit 645f962, before the fold.
	want := map[string]string{
		"gen first":           "A=0 A=1 A=0 A=1 A=0 c93e05b9de6d55a4",
		"gen oracle":          "C=1 A=1 B=1 A=1 C=1 c2d1fbd0072ac6fc",
		"gen overlap":         "B=0 B=0 A=0 A=1 C=1 a9c5f98eb4472d39",
		"gen random":          "C=1 C=0 B=1 C=0 B=0 0bb950387088c486",
		"loglik first":        "A=0 A=1 A=0 A=1 A=0 e146f4f4712a5cf6",
		"loglik oracle":       "C=1 A=1 B=1 A=1 C=1 8b0e91ce85fcdcd0",
		"loglik overlap":      "B=0 B=0 A=0 A=1 C=1 d32c611c854da02b",
		"loglik random":       "C=1 C=0 B=1 C=0 B=0 57479374d83a3e5a",
		"loglik-tmpl first":   "A=0 A=1 A=0 A=1 A=0 dfcf37ca9b2279e5",
		"loglik-tmpl oracle":  "C=1 A=1 B=1 A=1 C=1 4b52526ef62e7162",
		"loglik-tmpl overlap": "B=0 B=0 A=0 A=1 C=1 f07cfb53b653cf70",
		"loglik-tmpl random":  "C=1 C=0 B=1 C=0 B=0 f34cb5d028ef8f9e",
	}
	for name, cfg := range configs {
		for _, policy := range mcqtest.Names() {
			c := competition.Competition{ID: "c-old", Kind: mcq.Name, Config: json.RawMessage(cfg)}
			s := competition.Submission{Model: competition.ModelSpec{BaseURL: srv.URL + "/v1", Model: "baseline-" + policy}}
			ev, err := k.Plan(context.Background(), c, s, "", raw)
			if err != nil {
				t.Fatal(err)
			}
			var preds []string
			sum := sha256.New()
			for i := range ev.Len() {
				r, err := ev.Evaluate(context.Background(), i)
				if err != nil {
					t.Fatal(err)
				}
				preds = append(preds, fmt.Sprintf("%s=%g", r.Prediction, r.Score))
				fmt.Fprintf(sum, "%q %q %s %d %d %v|", r.Prompt, r.Response, r.Detail, r.PromptTokens, r.CompletionTokens, r.Correct)
			}
			got := strings.Join(preds, " ") + " " + hex.EncodeToString(sum.Sum(nil))[:16]
			if w := want[name+" "+policy]; got != w {
				t.Errorf("%s %s: got %q, want %q", name, policy, got, w)
			}
		}
	}
}
