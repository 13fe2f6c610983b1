package preference

import (
	"context"
	"errors"
	"slices"
	"strings"

	"crucible/internal/inference"
)

// rewritePrompt asks the generator model to restate a level in its own
// words. Keeping the wrong claims is the point: the ground truth rests on
// them.
const rewritePrompt = "Rewrite the answer below in your own words. Keep every claim, even wrong ones, " +
	"keep every number exactly as written, keep any fenced code block exactly as it is, and add nothing. " +
	"Reply with the rewritten answer only.\n\n"

// rewriteLevels has the generator model rewrite every level, so the
// surface of a degraded answer (its wording, sentence shapes and
// punctuation) is the model's rather than the degradation's. A rewrite is
// kept only when it passes keepsDegradation and differs from every other
// level; otherwise the level keeps its text. A model error fails the
// generation, as for the answers themselves.
func (g *Generator) rewriteLevels(ctx context.Context, levels []Response) error {
	texts := make([]string, len(levels))
	for i, l := range levels {
		texts[i] = l.Text
	}
	for i := range levels {
		rw, err := g.chat(ctx, "You rewrite answers without changing what they claim.", rewritePrompt+levels[i].Text)
		if err != nil {
			return err
		}
		rw = strings.TrimSpace(rw)
		others := slices.Delete(slices.Clone(texts), i, i+1)
		if keepsDegradation(levels[i].Text, rw) && !slices.Contains(others, rw) {
			texts[i] = rw
		}
	}
	for i := range levels {
		levels[i].Text = texts[i]
	}
	return nil
}

// keepsDegradation reports whether rw can stand in for orig: about as
// long (a model that completes a truncated answer or drops a paragraph
// changes the level), with the same numbers and the same code byte for
// byte (where injected errors live), and no truncation mark orig lacks.
func keepsDegradation(orig, rw string) bool {
	wo, wr := words(orig), words(rw)
	if wr == 0 || float64(wr) < 0.7*float64(wo) || float64(wr) > 1.4*float64(wo) {
		return false
	}
	for _, mark := range []string{"...", "…"} {
		if strings.Contains(rw, mark) && !strings.Contains(orig, mark) {
			return false
		}
	}
	codeO, numsO := codeAndNumbers(orig)
	codeR, numsR := codeAndNumbers(rw)
	return slices.Equal(codeO, codeR) && slices.Equal(numsO, numsR)
}

// codeAndNumbers returns the bodies of text's code blocks and the sorted
// numerals of its prose.
func codeAndNumbers(text string) (code, nums []string) {
	for _, s := range splitFences(text) {
		if s.code {
			code = append(code, strings.TrimRight(s.body, "\n"))
		} else {
			nums = append(nums, numeralRE.FindAllString(s.body, -1)...)
		}
	}
	slices.Sort(nums)
	return code, nums
}

// chat sends one system and one user message to the generator model.
func (g *Generator) chat(ctx context.Context, system, user string) (string, error) {
	zero := 0.0
	resp, err := g.cfg.Client.Chat(ctx, inference.ChatRequest{
		Model:       g.cfg.Model,
		Messages:    []inference.ChatMessage{{Role: "system", Content: system}, {Role: "user", Content: user}},
		MaxTokens:   g.cfg.MaxTokens,
		Temperature: &zero,
	})
	if err != nil {
		return "", err
	}
	if len(resp.Choices) == 0 || strings.TrimSpace(resp.Choices[0].Message.Content) == "" {
		return "", errors.New("generator model returned an empty answer")
	}
	return resp.Choices[0].Message.Content, nil
}
