package preference

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

const (
	boiling   = "Water boils when its vapour pressure equals the pressure of the air above it. On a mountain the air pressure is lower, so water reaches that point at a lower temperature. At about 3000 metres water boils at roughly 90 degrees Celsius instead of 100.\n\nThat is why pasta takes longer to cook at altitude. Salt changes the boiling point only a little."
	primeCode = "Try this:\n\n```python\ndef f(n):\n    if n < 2:\n        return 0\n    return n + 1\n```\n\nIt returns 0 for small numbers. It is short."
)

func seeded(i uint64) *rand.Rand { return rand.New(rand.NewPCG(i, 99)) }

// sentences lists the prose units of text.
func sentences(text string) []string {
	var out []string
	for _, b := range parseBlocks(text) {
		if !b.code {
			out = append(out, b.units...)
		}
	}
	return out
}

func TestAnswerOperatorsAreDeterministicAndChangeTheText(t *testing.T) {
	for _, op := range DefaultOperators {
		for _, text := range []string{boiling, primeCode} {
			for i := range uint64(20) {
				kind := KindText
				if strings.Contains(text, "```") {
					kind = KindCode
				}
				got, err := op.Answer(text, kind, []string{"Bread rises because yeast makes gas."}, seeded(i))
				if err != nil {
					t.Fatalf("%s: %v", op, err)
				}
				again, _ := op.Answer(text, kind, []string{"Bread rises because yeast makes gas."}, seeded(i))
				if got != again || got == text {
					t.Fatalf("%s draw %d: %q then %q (from %q)", op, i, got, again, text)
				}
				if strings.Contains(got, "...") || strings.Contains(got, "That said") {
					t.Errorf("%s draw %d left a fixed marker: %q", op, i, got)
				}
			}
		}
	}
}

func TestTruncationCutsWholeSentencesWithoutAMark(t *testing.T) {
	orig := sentences(boiling)
	ends := map[string]bool{}
	for i := range uint64(30) {
		got, err := Truncate.Answer(boiling, KindText, nil, seeded(i))
		if err != nil {
			t.Fatal(err)
		}
		kept := sentences(got)
		if len(kept) == 0 || len(kept) >= len(orig) || !slices.Equal(kept, orig[:len(kept)]) {
			t.Fatalf("draw %d kept %q, want a proper prefix of whole sentences of %q", i, kept, orig)
		}
		if !strings.HasSuffix(got, ".") {
			t.Errorf("draw %d ends %q, want a whole sentence", i, got[len(got)-10:])
		}
		ends[kept[len(kept)-1]] = true
	}
	if len(ends) < 2 {
		t.Errorf("every truncation ends at the same sentence %v; the cut must vary", ends)
	}
}

func TestDroppingRemovesAPartFromVaryingPlaces(t *testing.T) {
	orig := sentences(boiling)
	missing := map[string]bool{}
	for i := range uint64(30) {
		got, err := DropRequirement.Answer(boiling, KindText, nil, seeded(i))
		if err != nil {
			t.Fatal(err)
		}
		kept := sentences(got)
		if len(kept) >= len(orig) || len(kept) == 0 {
			t.Fatalf("draw %d kept %d of %d sentences", i, len(kept), len(orig))
		}
		for _, s := range orig {
			if !slices.Contains(kept, s) {
				missing[s] = true
			}
		}
	}
	if len(missing) < 3 {
		t.Errorf("only %d different sentences were ever dropped; the place must vary", len(missing))
	}
}

// TestContradictionsAndErrorsAlterOneSentenceInPlace: without off-topic
// material the answer keeps its shape; exactly one sentence differs, and
// which one and how varies with the draw.
func TestContradictionsAndErrorsAlterOneSentenceInPlace(t *testing.T) {
	orig := sentences(boiling)
	for _, op := range []Operator{AddContradiction, InjectError} {
		changed := map[string]bool{}
		for i := range uint64(40) {
			got, err := op.Answer(boiling, KindText, nil, seeded(i))
			if err != nil {
				t.Fatal(err)
			}
			now := sentences(got)
			if len(now) != len(orig) {
				t.Fatalf("%s draw %d: %d sentences, want %d: %q", op, i, len(now), len(orig), got)
			}
			diff := 0
			for j := range orig {
				if now[j] != orig[j] {
					diff++
					changed[now[j]] = true
				}
			}
			if diff != 1 {
				t.Errorf("%s draw %d changed %d sentences, want 1: %q", op, i, diff, got)
			}
		}
		if len(changed) < 5 {
			t.Errorf("%s gave only %d different altered sentences over 40 draws: %v", op, len(changed), changed)
		}
	}
}

func TestCodeErrorsChangeTheCode(t *testing.T) {
	seen := map[string]bool{}
	for i := range uint64(30) {
		got, err := InjectError.Answer(primeCode, KindCode, nil, seeded(i))
		if err != nil {
			t.Fatal(err)
		}
		code := strings.Join(parseBlocks(got)[1].units, "\n")
		if code != strings.Join(parseBlocks(primeCode)[1].units, "\n") {
			seen[code] = true
		}
	}
	if len(seen) < 3 {
		t.Errorf("%d different code errors over 30 draws, want the comparison, the arithmetic and the numbers to vary: %v", len(seen), seen)
	}
}

func TestAnOperatorThatCannotChangeATextSaysSo(t *testing.T) {
	if _, err := Truncate.Answer("word", KindText, nil, seeded(1)); err == nil {
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
	if tr := Truncate.Instruction(s); len(tr.Prompt()) >= len(s.Prompt()) || tr.Requirements != nil || strings.Contains(tr.Prompt(), "...") {
		t.Errorf("truncate: %q", tr.Prompt())
	}
}
