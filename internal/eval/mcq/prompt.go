package mcq

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
)

// DefaultTemplate is the prompt used when none is configured. It renders,
// for a Social IQa item:
//
//	Tracy didn't go home that evening and resisted Riley's attacks.
//	What does Tracy need to do before this?
//	A) make a new plan
//	B) Go home and see Riley
//	C) Find somewhere to go
//	Answer with the letter of the correct choice.
//	Answer:
//
// Context and question each sit on their own line (the context line is
// omitted when empty), each choice on its own line as "<letter>) <text>",
// and the final "Answer:" lets log-likelihood scoring append " <choice>".
const DefaultTemplate = `{{if .Context}}{{.Context}}
{{end}}{{.Question}}
{{range .Choices}}{{.Letter}}) {{.Text}}
{{end}}Answer with the letter of the correct choice.
Answer:`

// Choice is one lettered choice as seen by a prompt template.
type Choice struct {
	// Letter is "A", "B", ...
	Letter string
	// Text is the choice text.
	Text string
}

// PromptData is the data a prompt template executes on.
type PromptData struct {
	Context  string
	Question string
	Choices  []Choice
}

// Letter returns the letter of choice i: 0 → "A", 1 → "B", ...
func Letter(i int) string {
	if i < 0 || i >= MaxChoices {
		return ""
	}
	return letters[i : i+1] // string(rune('A'+i)) would allocate, twice an item
}

// letters holds the MaxChoices choice letters.
const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// ParseTemplate parses a prompt template (text/template, data PromptData)
// and checks that it executes on a sample item and mentions every choice.
func ParseTemplate(text string) (*template.Template, error) {
	t, err := template.New("mcq-prompt").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("mcq prompt template: %w", err)
	}
	sample := Item{
		Context:  "Sample context.",
		Question: "Sample question?",
		Choices:  []string{"first sample choice", "second sample choice", "third sample choice"},
	}
	out, err := Render(t, sample)
	if err != nil {
		return nil, fmt.Errorf("mcq prompt template: %w", err)
	}
	if strings.TrimSpace(out) == "" {
		return nil, errors.New("mcq prompt template: renders an empty prompt")
	}
	for _, c := range sample.Choices {
		if !strings.Contains(out, c) {
			return nil, errors.New("mcq prompt template: does not render the choices (range over .Choices)")
		}
	}
	return t, nil
}

// MustDefaultTemplate returns DefaultTemplate parsed.
func MustDefaultTemplate() *template.Template {
	t, err := ParseTemplate(DefaultTemplate)
	if err != nil {
		panic(err)
	}
	return t
}

// renderDefault is Render(MustDefaultTemplate(), it) without text/template,
// whose reflection cost a quarter of an item's CPU on the evaluation hot
// path; TestRenderDefaultMatchesTheTemplate and FuzzRenderDefault keep the
// two equal.
func renderDefault(it Item) string {
	n := len(it.Context) + len(it.Question) + len(defaultTail) + 2
	for _, c := range it.Choices {
		n += len(c) + 4
	}
	var b strings.Builder
	b.Grow(n)
	if it.Context != "" {
		b.WriteString(it.Context)
		b.WriteByte('\n')
	}
	b.WriteString(it.Question)
	b.WriteByte('\n')
	for i, c := range it.Choices {
		b.WriteString(Letter(i))
		b.WriteString(") ")
		b.WriteString(c)
		b.WriteByte('\n')
	}
	b.WriteString(defaultTail)
	return b.String()
}

// defaultTail is DefaultTemplate's text after the choices.
const defaultTail = "Answer with the letter of the correct choice.\nAnswer:"

// Render executes t on it and returns the prompt.
func Render(t *template.Template, it Item) (string, error) {
	data := PromptData{Context: it.Context, Question: it.Question, Choices: make([]Choice, len(it.Choices))}
	for i, c := range it.Choices {
		data.Choices[i] = Choice{Letter: Letter(i), Text: c}
	}
	var b strings.Builder
	b.Grow(256)
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}
