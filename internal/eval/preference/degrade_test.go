package preference

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestAnswerOperatorsDegradeDeterministically(t *testing.T) {
	prose := "Water boils at 100 degrees. On a mountain it is lower.\n\nThat is why pasta takes longer."
	code := "Try this:\n\n```python\ndef f(n):\n    if n < 2:\n        return 0\n    return n + 1\n```\n\nDone."
	tests := []struct {
		name       string
		op         Operator
		text, kind string
		want       string
		absent     string
	}{
		{name: "dropping a requirement removes the last paragraph", op: DropRequirement, text: prose, kind: KindText, absent: "pasta"},
		{name: "dropping from one paragraph removes the last sentence", op: DropRequirement, text: "One is here. Two is there.", kind: KindText, want: "One is here.", absent: "Two"},
		{name: "a contradiction is appended", op: AddContradiction, text: prose, kind: KindText, want: "the opposite of all of the above"},
		{name: "truncation keeps half the words", op: Truncate, text: "a b c d e f", kind: KindText, want: "a b c ...", absent: "d"},
		{name: "a factual error changes the first number", op: InjectError, text: prose, kind: KindText, want: "boils at 301 degrees"},
		{name: "a factual error negates a statement without numbers", op: InjectError, text: "The sky is blue.", kind: KindText, want: "sky is not blue"},
		{name: "a code error flips the first comparison", op: InjectError, text: code, kind: KindCode, want: "if n <= 2:"},
		{name: "a code error without comparisons flips a plus", op: InjectError, text: "```go\nx := a + b\n```", kind: KindCode, want: "x := a - b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.op.Answer(tc.text, tc.kind, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			again, _ := tc.op.Answer(tc.text, tc.kind, rand.New(rand.NewPCG(1, 2)))
			if got != again {
				t.Errorf("not deterministic: %q then %q", got, again)
			}
			if got == tc.text {
				t.Errorf("text unchanged")
			}
			if tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want it to contain %q", got, tc.want)
			}
			if tc.absent != "" && strings.Contains(got, tc.absent) {
				t.Errorf("got %q, want %q removed", got, tc.absent)
			}
		})
	}
}

func TestAnOperatorThatCannotChangeATextSaysSo(t *testing.T) {
	if _, err := Truncate.Answer("word", KindText, rand.New(rand.NewPCG(1, 2))); err == nil {
		t.Fatal("truncating one word succeeded")
	}
}

func TestInstructionOperatorsDegradeTheSeed(t *testing.T) {
	s := Seed{ID: "s", Kind: KindCode, Instruction: "Write is_prime(n) in Python.", Requirements: []string{"Handle n < 2", "Add a docstring"}}
	dropped := DropRequirement.Instruction(s)
	if len(dropped.Requirements) != 1 || len(s.Requirements) != 2 {
		t.Errorf("drop: %v (seed now %v)", dropped.Requirements, s.Requirements)
	}
	if c := AddContradiction.Instruction(s); !strings.Contains(c.Prompt(), "opposite of this: Handle n < 2") {
		t.Errorf("contradiction: %q", c.Prompt())
	}
	if e := InjectError.Instruction(s); !strings.Contains(e.Prompt(), "subtle bug") {
		t.Errorf("code error: %q", e.Prompt())
	}
	if tr := Truncate.Instruction(s); len(tr.Prompt()) >= len(s.Prompt()) || tr.Requirements != nil {
		t.Errorf("truncate: %q", tr.Prompt())
	}
}
