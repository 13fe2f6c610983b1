package roleplaytest

// This file holds the judge policies. The judge reads the roleplay.JudgeInput
// in the <data> block of the last user message (roleplay.JudgeMessages) and
// answers the rubric JSON from simple text features. With R the reply, F
// the reference, U the conversation's last user message and content words
// as in persona.go but of at least three characters:
//
// Quality, {"scores": {...}, "rationale": "..."}, each grade in 1..10:
//
//   - in_character: 1 if R says "as an ai", "language model" or "ai
//     assistant"; otherwise 10 if R names the character (any word of the
//     name) or speaks in the first person (i, i'm, me, my, mine, myself);
//     otherwise 4;
//   - relevance: 1 + round(9·min(1, h/min(|T|, 6))), where T is the content
//     words of U and F and h how many of them R uses (10 when T is empty);
//   - fluency: 1 + round(9·min(r, 1/r)), r = words(R)/words(F) (1 when
//     either is empty);
//   - engagement: 1 for an empty R, 10 if R contains '?', otherwise 9.
//
// Compare, {"realism_win": ..., "entertainment_win": ..., "coherency_win":
// ...}: the quality grades of R (against F) and of F (against R, the roles
// swapped) are compared: in_character decides realism, engagement
// entertainment and relevance coherency; the higher grade wins ("generated"
// for R, "original" for F), equal grades tie.
//
// Coherence, {"coherent": bool, "reason": "..."}: coherent iff R has at
// least two words; with five or more words, at least 40% of them are
// distinct; and, with three or more content words, R shares one with the
// conversation, the character's name or the persona.
//
// judge-garbage answers every request with prose and no JSON, as a broken
// judge would.

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"crucible/internal/eval/roleplay"
	"crucible/internal/inference"
)

// garbageJudgeAnswer is the judge-garbage policy's answer.
const garbageJudgeAnswer = "What a delightful reply! I would happily give it a nine out of ten, maybe more."

func judgeAnswer(msgs []inference.ChatMessage) (string, error) {
	in, err := roleplay.ExtractJudgeInput(lastUser(msgs))
	if err != nil {
		return "", fmt.Errorf("baseline judge: %w", err)
	}
	var out any
	switch in.Task {
	case roleplay.TaskQuality:
		out = judgeQuality(in)
	case roleplay.TaskCoherence:
		out = judgeCoherence(in)
	case roleplay.TaskCompare:
		out = judgeCompare(in)
	default:
		return "", fmt.Errorf("baseline judge: unknown task %q", in.Task)
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func lastUserTurn(conv []roleplay.Turn) string {
	for i := len(conv) - 1; i >= 0; i-- {
		if conv[i].Role == roleplay.RoleUser {
			return conv[i].Content
		}
	}
	return ""
}

func grade(x float64) int { return 1 + int(math.Round(9*math.Max(0, math.Min(1, x)))) }

func judgeQuality(in roleplay.JudgeInput) roleplay.QualityVerdict {
	r := in.Reply
	lower := strings.ToLower(r)
	rw := strings.Fields(r)

	inChar := 4
	switch {
	case strings.Contains(lower, "as an ai") || strings.Contains(lower, "language model") || strings.Contains(lower, "ai assistant"):
		inChar = 1
	case namesOrFirstPerson(r, in.Character.Name):
		inChar = 10
	}

	target := map[string]bool{}
	for _, w := range contentWords(lastUserTurn(in.Conversation)+"\n"+in.Reference, 3) {
		target[w] = true
	}
	hits := 0
	for _, w := range contentWords(r, 3) {
		if target[w] {
			hits++
		}
	}
	rel := 1.0
	if len(target) > 0 {
		rel = float64(hits) / float64(min(len(target), 6))
	}

	flu := 0.0
	if fw := len(strings.Fields(in.Reference)); len(rw) > 0 && fw > 0 {
		ratio := float64(len(rw)) / float64(fw)
		flu = math.Min(ratio, 1/ratio)
	}

	eng := 9
	switch {
	case len(rw) == 0:
		eng = 1
	case strings.Contains(r, "?"):
		eng = 10
	}
	scores := map[string]float64{
		"in_character": float64(inChar),
		"relevance":    float64(grade(rel)),
		"fluency":      float64(grade(flu)),
		"engagement":   float64(eng),
	}
	return roleplay.QualityVerdict{Scores: scores, Rationale: fmt.Sprintf(
		"baseline judge: %d of %d topic words used, length %d vs %d reference words", hits, len(target), len(rw), len(strings.Fields(in.Reference)))}
}

func judgeCompare(in roleplay.JudgeInput) roleplay.CompareVerdict {
	gen := judgeQuality(in)
	swapped := in
	swapped.Reply, swapped.Reference = in.Reference, in.Reply
	orig := judgeQuality(swapped)
	win := func(criterion string) string {
		switch g, o := gen.Scores[criterion], orig.Scores[criterion]; {
		case g > o:
			return "generated"
		case g < o:
			return "original"
		}
		return "tie"
	}
	return roleplay.CompareVerdict{Realism: win("in_character"), Entertainment: win("engagement"), Coherency: win("relevance"),
		Reasoning: "baseline judge: the rubric grades of both replies compared"}
}

func namesOrFirstPerson(reply, name string) bool {
	ws := map[string]bool{}
	for _, w := range words(reply) { // "i'm" splits into "i" and "m"
		ws[w] = true
	}
	for _, w := range []string{"i", "me", "my", "mine", "myself"} {
		if ws[w] {
			return true
		}
	}
	for _, n := range words(name) {
		if len(n) > 2 && ws[n] {
			return true
		}
	}
	return false
}

func judgeCoherence(in roleplay.JudgeInput) roleplay.CoherenceVerdict {
	ws := strings.Fields(strings.ToLower(in.Reply))
	if len(ws) < 2 {
		return roleplay.CoherenceVerdict{Coherent: false, Reason: "baseline judge: the reply has fewer than two words"}
	}
	distinct := map[string]bool{}
	for _, w := range ws {
		distinct[w] = true
	}
	if len(ws) >= 5 && float64(len(distinct)) < 0.4*float64(len(ws)) {
		return roleplay.CoherenceVerdict{Coherent: false, Reason: fmt.Sprintf("baseline judge: only %d distinct words of %d", len(distinct), len(ws))}
	}
	if cw := contentWords(in.Reply, 3); len(cw) >= 3 {
		var ctx strings.Builder
		ctx.WriteString(in.Character.Name + "\n" + in.Character.Persona + "\n" + in.Character.Scenario)
		for _, t := range in.Conversation {
			ctx.WriteString("\n" + t.Content)
		}
		known := map[string]bool{}
		for _, w := range contentWords(ctx.String(), 3) {
			known[w] = true
		}
		shared := false
		for _, w := range cw {
			if known[w] {
				shared = true
				break
			}
		}
		if !shared {
			return roleplay.CoherenceVerdict{Coherent: false, Reason: "baseline judge: the reply shares no topic word with the conversation"}
		}
	}
	return roleplay.CoherenceVerdict{Coherent: true, Reason: "baseline judge: readable, varied and on topic"}
}
