package preference

import (
	"strings"
	"testing"
)

func TestTheShippedSeedsParseAndCoverTextAndCode(t *testing.T) {
	seeds := DefaultSeeds()
	if len(seeds) < 10 {
		t.Fatalf("%d shipped seeds, want at least 10", len(seeds))
	}
	kinds := map[string]int{}
	for _, s := range seeds {
		kinds[s.Kind]++
		if s.Reference == "" || len(s.Requirements) == 0 {
			t.Errorf("seed %s lacks a reference or requirements", s.ID)
		}
	}
	if kinds[KindText] == 0 || kinds[KindCode] == 0 {
		t.Errorf("kinds %v, want both text and code seeds", kinds)
	}
}

func TestParseSeedsReportsTheBadLine(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"invalid JSON names its line", "{\"id\":\"a\",\"instruction\":\"x\"}\n\n{nope\n", "line 3: invalid JSON"},
		{"a missing instruction is refused", `{"id":"a"}`, `line 1: missing "instruction"`},
		{"an unknown kind is refused", `{"id":"a","instruction":"x","kind":"poem"}`, `kind "poem"`},
		{"a duplicate id names both lines", "{\"id\":\"a\",\"instruction\":\"x\"}\n{\"id\":\"a\",\"instruction\":\"y\"}\n", "line 2: duplicate id \"a\" (first on line 1)"},
		{"an unknown field is refused", `{"id":"a","instruction":"x","answer":"y"}`, "unknown field"},
		{"an empty file is refused", "\n\n", "no seeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSeeds(strings.NewReader(tc.input), "s.jsonl")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestSeedPromptListsTheRequirements(t *testing.T) {
	s := Seed{Instruction: "Do it.", Requirements: []string{"fast", "well"}}
	if got, want := s.Prompt(), "Do it.\n\nRequirements:\n- fast\n- well"; got != want {
		t.Errorf("Prompt() = %q, want %q", got, want)
	}
}
