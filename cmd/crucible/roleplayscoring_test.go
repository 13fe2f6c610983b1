package main

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"crucible/internal/eval/roleplay/roleplaytest"
)

// `crucible eval --kind roleplay --scoring PRESET` scores with the preset:
// February 2025's asks the judge to compare each reply with the reference
// (its components show the judge's win share), ours does not, and an
// unknown preset is refused naming the flag and the presets.
func TestEvalRoleplayTakesAScoringPreset(t *testing.T) {
	h, err := roleplaytest.New()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	eval := func(preset string) (map[string]float64, string, int) {
		out, stderr, code := crucible(t, "eval", "--kind", "roleplay", "--base-url", srv.URL, "--model", "baseline-persona",
			"--items", "3", "--turns", "1", "--scoring", preset, "--json")
		var rep struct {
			Score      float64            `json:"score"`
			Components map[string]float64 `json:"components"`
		}
		if code == 0 {
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%s: %v in %s", preset, err, out)
			}
		}
		return rep.Components, stderr, code
	}
	comps, stderr, code := eval("dippy-2025-02")
	if _, ok := comps["judge_win"]; code != 0 || !ok {
		t.Fatalf("dippy-2025-02: exit %d, components %v: %s", code, comps, stderr)
	}
	comps, stderr, code = eval("crucible")
	if _, ok := comps["judge_win"]; code != 0 || ok {
		t.Fatalf("crucible: exit %d, components %v: %s", code, comps, stderr)
	}
	if _, stderr, code = eval("dippy-1999"); code == 0 || !strings.Contains(stderr, "--scoring") || !strings.Contains(stderr, "dippy-2024-07") {
		t.Fatalf("unknown preset: exit %d: %s", code, stderr)
	}
}
