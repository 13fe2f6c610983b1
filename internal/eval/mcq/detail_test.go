package mcq_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"crucible/internal/eval/mcq"
)

// checkDetail fails when the hand-written Detail encoding differs from
// json.Marshal's.
func checkDetail(t *testing.T, d mcq.GenerativeDetail) {
	t.Helper()
	want, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := mcq.GenerativeDetailJSON(d)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%+v:\nfast %s (%v)\njson %s", d, got, err, want)
	}
}

func TestGenerativeDetailMatchesJSONMarshal(t *testing.T) {
	for _, s := range []string{"", "q1", "d638a1a3fa3564ed", "stop", "length", "a\"b", `a\b`, "<&>", "\x00\x1f\x7f",
		"é", "\u2028", "\xff", " ~!#$%'()*+,-./:;=?@[]^_`{|}"} {
		for _, parsed := range []bool{false, true} {
			checkDetail(t, mcq.GenerativeDetail{Mode: mcq.Generative, ItemID: s, Answer: mcq.Letter(1), Parsed: parsed, FinishReason: "stop"})
			checkDetail(t, mcq.GenerativeDetail{Mode: mcq.Generative, ItemID: "q1", Answer: "", Parsed: parsed, FinishReason: s})
			checkDetail(t, mcq.GenerativeDetail{Mode: mcq.Mode(s), ItemID: s, Answer: s, FinishReason: s})
		}
	}
}

func FuzzGenerativeDetail(f *testing.F) {
	f.Add("generative", "q1", "B", true, "stop")
	f.Add("", "<a&b>", "", false, "\u2029\xfe")
	f.Fuzz(func(t *testing.T, mode, id, answer string, parsed bool, finish string) {
		checkDetail(t, mcq.GenerativeDetail{Mode: mcq.Mode(mode), ItemID: id, Answer: answer, Parsed: parsed, FinishReason: finish})
	})
}

func TestLetter(t *testing.T) {
	for i := -2; i <= mcq.MaxChoices+1; i++ {
		want := ""
		if i >= 0 && i < mcq.MaxChoices {
			want = string(rune('A' + i))
		}
		if got := mcq.Letter(i); got != want {
			t.Errorf("Letter(%d) = %q, want %q", i, got, want)
		}
	}
}
