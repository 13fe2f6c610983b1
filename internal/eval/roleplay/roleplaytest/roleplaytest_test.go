package roleplaytest_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"crucible/internal/eval/roleplay"
	"crucible/internal/eval/roleplay/roleplaytest"
	"crucible/internal/inference"
)

func roleplayServer(t *testing.T) *inference.Client {
	t.Helper()
	h, err := roleplaytest.New()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := inference.New(inference.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ask(t *testing.T, c *inference.Client, model string, msgs []inference.ChatMessage) string {
	t.Helper()
	resp, err := c.Chat(context.Background(), inference.ChatRequest{Model: model, Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Choices[0].Message.Content
}

var lighthouse = roleplay.Character{
	Name:     "Marguerite Vell",
	Persona:  "A retired lighthouse keeper who collects sea glass and distrusts batteries.",
	Scenario: "A storm keeps the user in her kitchen.",
	Greeting: "Ferry won't run till morning.",
}

func conversation(user string) []roleplay.Turn {
	return []roleplay.Turn{{Role: roleplay.RoleCharacter, Content: lighthouse.Greeting}, {Role: roleplay.RoleUser, Content: user}}
}

func TestRoleplayPoliciesServeTheKindsBaselineModels(t *testing.T) {
	list, err := roleplayServer(t).Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range list.Data {
		got = append(got, m.ID)
	}
	for _, m := range []string{roleplay.BaselineGenerator, roleplay.BaselineReference, roleplay.BaselineJudge} {
		if !slices.Contains(got, m) {
			t.Errorf("%s is not served by the roleplay policies (%v)", m, got)
		}
	}
}

func TestRoleplayPoliciesAnswerChatOnly(t *testing.T) {
	_, err := roleplayServer(t).Completion(context.Background(), inference.CompletionRequest{Model: roleplay.BaselineGenerator, Prompt: "Once upon a time"})
	var se *inference.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
		t.Fatalf("err = %v, want a 400", err)
	}
}

func TestPersonaAnswersInCharacterAndDeterministically(t *testing.T) {
	c := roleplayServer(t)
	msgs := roleplay.Messages(lighthouse, conversation("What is that jar of green glass on the windowsill?"))
	a := ask(t, c, "baseline-persona", msgs)
	if b := ask(t, c, "baseline-persona", msgs); a != b {
		t.Fatalf("two answers differ:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, "windowsill") {
		t.Errorf("the reply ignores the user's words: %s", a)
	}
	if strings.Contains(a, "?") {
		t.Errorf("the plain persona never asks a question: %s", a)
	}
	plus := ask(t, c, "baseline-persona-plus", msgs)
	if !strings.HasSuffix(plus, "?") || len(strings.Fields(plus)) != len(strings.Fields(a)) {
		t.Errorf("persona-plus should be the same reply ending in a question of the same length:\n%s\n%s", a, plus)
	}
	if ref := ask(t, c, "baseline-persona-ref", msgs); ref == a {
		t.Error("the reference persona must speak differently")
	}
}

func TestPersonaContinuesTheUserSideAsAGenerator(t *testing.T) {
	c := roleplayServer(t)
	conv := append(conversation("Hello?"), roleplay.Turn{Role: roleplay.RoleCharacter, Content: "The lighthouse generator hums all night."})
	got := ask(t, c, roleplay.BaselineGenerator, roleplay.UserSimMessages(lighthouse, conv))
	if !strings.Contains(got, "lighthouse") || strings.HasPrefix(got, lighthouse.Name) {
		t.Fatalf("user turn %q should react to the character's last line without a name prefix", got)
	}
}

func judge(t *testing.T, c *inference.Client, model string, in roleplay.JudgeInput) string {
	t.Helper()
	msgs, err := roleplay.JudgeMessages(in)
	if err != nil {
		t.Fatal(err)
	}
	return ask(t, c, model, msgs)
}

func TestJudgeGradesWithTheDocumentedFeatures(t *testing.T) {
	c := roleplayServer(t)
	conv := conversation("Tell me about the sea glass collection.")
	tests := []struct {
		name, reply string
		want        map[string]float64
	}{
		{"an on-topic first-person question gets top marks", "I keep the sea glass collection by the window, want to see?",
			map[string]float64{"in_character": 10, "engagement": 10}},
		{"an assistant voice is out of character", "As an AI language model, glass collection is a hobby.",
			map[string]float64{"in_character": 1, "engagement": 9}},
		{"an empty reply gets the lowest engagement", "", map[string]float64{"engagement": 1, "fluency": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := judge(t, c, roleplay.BaselineJudge, roleplay.JudgeInput{Task: roleplay.TaskQuality,
				Character: roleplay.JudgeCharacter{Name: lighthouse.Name, Persona: lighthouse.Persona}, Conversation: conv,
				Reference: "The sea glass collection? Forty years of it, love.", Reply: tt.reply})
			v, err := roleplay.ParseQuality(out)
			if err != nil {
				t.Fatalf("the baseline judge's own output does not parse: %v", err)
			}
			for k, want := range tt.want {
				if v.Scores[k] != want {
					t.Errorf("%s = %v, want %v (%s)", k, v.Scores[k], want, out)
				}
			}
		})
	}
}

// The comparison swaps the roles of reply and reference in the rubric: a
// question wins entertainment over a statement, an assistant voice loses
// realism, and a reply compared with itself ties everywhere.
func TestJudgeComparesReplyAndReferenceOnDippysCriteria(t *testing.T) {
	c := roleplayServer(t)
	conv := conversation("Tell me about the sea glass collection.")
	ref := "I keep the sea glass collection by the window."
	tests := []struct {
		name, reply string
		want        roleplay.CompareVerdict
	}{
		// It also uses every topic word of the reference, which misses its "see":
		// relevance 10 against 9.
		{"a question wins entertainment", "I keep the sea glass collection by the window, want to see?",
			roleplay.CompareVerdict{Realism: "tie", Entertainment: "generated", Coherency: "generated"}},
		{"an assistant voice loses realism", "As an AI language model, a sea glass collection is a hobby.",
			roleplay.CompareVerdict{Realism: "original", Entertainment: "tie", Coherency: "tie"}},
		{"the reference itself ties", ref, roleplay.CompareVerdict{Realism: "tie", Entertainment: "tie", Coherency: "tie"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := judge(t, c, roleplay.BaselineJudge, roleplay.JudgeInput{Task: roleplay.TaskCompare,
				Character: roleplay.JudgeCharacter{Name: lighthouse.Name, Persona: lighthouse.Persona}, Conversation: conv,
				Reference: ref, Reply: tt.reply})
			v, err := roleplay.ParseCompare(out)
			if err != nil {
				t.Fatalf("the baseline judge's own output does not parse: %v", err)
			}
			v.Reasoning = ""
			if v != tt.want {
				t.Fatalf("verdict %+v, want %+v (%s)", v, tt.want, out)
			}
		})
	}
}

func TestJudgeFindsLoopsAndGibberishIncoherent(t *testing.T) {
	c := roleplayServer(t)
	tests := []struct {
		name, reply string
		coherent    bool
	}{
		{"an on-topic reply is coherent", "Sea glass is what the ocean returns, and I keep every piece.", true},
		{"a repeated word pair is incoherent", strings.Repeat("glorp zint ", 8), false},
		{"a one-word reply is incoherent", "Mm.", false},
		{"unrelated text is incoherent", "Quarterly invoices require notarised signatures beforehand.", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := judge(t, c, roleplay.BaselineJudge, roleplay.JudgeInput{Task: roleplay.TaskCoherence,
				Character:    roleplay.JudgeCharacter{Name: lighthouse.Name, Persona: lighthouse.Persona},
				Conversation: conversation("Tell me about the sea glass."), Reply: tt.reply})
			v, err := roleplay.ParseCoherence(out)
			if err != nil {
				t.Fatal(err)
			}
			if v.Coherent != tt.coherent {
				t.Fatalf("coherent = %v, want %v (%s)", v.Coherent, tt.coherent, v.Reason)
			}
		})
	}
}

func TestGarbageJudgeAnswersWithoutJSON(t *testing.T) {
	c := roleplayServer(t)
	out := judge(t, c, "baseline-judge-garbage", roleplay.JudgeInput{Task: roleplay.TaskQuality, Reply: "hi"})
	if _, err := roleplay.ParseQuality(out); !errors.Is(err, roleplay.ErrJudgeOutput) {
		t.Fatalf("garbage judge output %q parsed (err %v)", out, err)
	}
}

func TestJudgeWithoutADataBlockIsABadRequest(t *testing.T) {
	c := roleplayServer(t)
	_, err := c.Chat(context.Background(), inference.ChatRequest{Model: roleplay.BaselineJudge,
		Messages: []inference.ChatMessage{{Role: "user", Content: "grade this please"}}})
	var se *inference.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
		t.Fatalf("err = %v, want a 400", err)
	}
}
