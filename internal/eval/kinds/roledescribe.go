package kinds

// What roleplay pages show: the configuration as labelled lines (the
// stored JSON is one unreadable line), and each item as the chat it was.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/roleplay"
	"crucible/internal/kind"
)

// Rules implements kind.Describer: plan, models and scoring, defaults
// spelled out.
func (Roleplay) Rules(c competition.Competition) []kind.Rule {
	cfg, err := RoleplayConfig(c)
	if err != nil {
		return nil
	}
	sc := cfg.Scoring.WithDefaults()
	preset := sc.Preset
	if preset == "" {
		preset = roleplay.PresetCrucible
	}
	w, t := sc.Weights, sc.Thresholds
	rules := []kind.Rule{
		{Label: "Items", Value: strconv.Itoa(cfg.Items), Note: fmt.Sprintf("conversations of %d turns, planned from seed %d", cfg.Turns, cfg.Seed)},
		{Label: "Max tokens", Value: strconv.Itoa(cfg.MaxTokens), Note: "bound on each generated message and reply"},
		{Label: "Personas", Value: cfg.PersonaSet, Note: "sha256 " + cfg.PersonaDigest},
		{Label: "Generator", Value: endpointName(cfg.Generator), Note: "writes the user's turns"},
		{Label: "Reference", Value: endpointName(cfg.Reference), Note: "writes the reply each answer is judged against"},
		{Label: "Judge", Value: endpointName(cfg.Judge), Note: "grades " + strings.Join(roleplay.Criteria(), ", ") + " from 1 to 10, and coherence"},
		{Label: "Scoring preset", Value: preset},
		{Label: "Weights", Value: fmt.Sprintf("quality %g · vibe %g · latency %g · size %g", w.Quality, w.Vibe, w.Latency, w.Size), Note: "normalised by their sum; creativity multiplies quality"},
		{Label: "Coherence gate", Value: fmt.Sprintf("%g", t.MinCoherent), Note: "share of items the judge must find coherent, else every item scores 0"},
		{Label: "Latency", Value: fmt.Sprintf("full up to %d ms, none from %d ms", t.LatencyFullMS, t.LatencyZeroMS)},
		{Label: "Copying", Value: fmt.Sprintf("%d-word n-grams", t.CopyNGram), Note: "copied from the reference or the card lowers creativity"},
	}
	if cfg.FreshItems {
		rules = append(rules, kind.Rule{Label: "Fresh items", Value: "each epoch", Note: fmt.Sprintf("practice items are public; a practice-minus-fresh gap above %g is flagged", cfg.ContaminationThreshold)})
	}
	return rules
}

func endpointName(e roleplay.EndpointSpec) string {
	if e.BaseURL == "" {
		return e.Model + " (the hub's own)"
	}
	return e.Model + " at " + e.BaseURL
}

// CountsCorrect implements kind.Counter: a roleplay item "counts" when its
// score is positive, which tells people nothing.
func (Roleplay) CountsCorrect(competition.Competition) bool { return false }

// DescribeItem implements kind.ItemDescriber: the chat the model answered
// (its prompt is the chat's messages as JSON), the reply, the reference
// and the judge's grades and reasons from the result's detail.
func (Roleplay) DescribeItem(c competition.Competition, r eval.Result) (kind.ItemView, error) {
	var msgs []struct{ Role, Content string }
	if err := json.Unmarshal([]byte(r.Prompt), &msgs); err != nil {
		return kind.ItemView{}, fmt.Errorf("roleplay item %d: prompt: %w", r.Index, err)
	}
	v := kind.ItemView{Reply: r.Response}
	for _, m := range msgs {
		if m.Role == "system" {
			v.Card = m.Content
			continue
		}
		v.Turns = append(v.Turns, kind.Message{Role: m.Role, Text: m.Content})
	}
	if len(r.Detail) == 0 {
		return v, nil
	}
	var d roleplay.Detail
	if err := json.Unmarshal(r.Detail, &d); err != nil {
		return kind.ItemView{}, fmt.Errorf("roleplay item %d: detail: %w", r.Index, err)
	}
	v.Reference = d.Reference
	for _, name := range roleplay.Criteria() {
		if g, ok := d.Judge.Scores[name]; ok {
			v.Grades = append(v.Grades, kind.Rule{Label: strings.ReplaceAll(name, "_", " "), Value: fmt.Sprintf("%g / 10", g)})
		}
	}
	cs := d.Components
	coherent := "no"
	if d.Coherence.Coherent {
		coherent = "yes"
	}
	v.Grades = append(v.Grades,
		kind.Rule{Label: "quality", Value: fmt.Sprintf("%.3f", cs.Quality)},
		kind.Rule{Label: "creativity", Value: fmt.Sprintf("%.3f", cs.Creativity)},
		kind.Rule{Label: "vibe", Value: fmt.Sprintf("%.3f", cs.Vibe), Note: fmt.Sprintf("%d reply words to %d", d.ReplyWords, d.UserWords)},
		kind.Rule{Label: "latency", Value: fmt.Sprintf("%.3f", cs.Latency), Note: fmt.Sprintf("%d ms", r.LatencyMS)},
		kind.Rule{Label: "coherent", Value: coherent},
		kind.Rule{Label: "item score", Value: fmt.Sprintf("%.3f", r.Score)},
	)
	if d.Judge.Rationale != "" {
		v.Rationale = append(v.Rationale, kind.Rule{Label: "Quality", Value: d.Judge.Rationale})
	}
	if d.Coherence.Reason != "" {
		v.Rationale = append(v.Rationale, kind.Rule{Label: "Coherence", Value: d.Coherence.Reason})
	}
	if d.Compare != nil && d.Compare.Reasoning != "" {
		v.Rationale = append(v.Rationale, kind.Rule{Label: "Against the reference", Value: d.Compare.Reasoning})
	}
	return v, nil
}
