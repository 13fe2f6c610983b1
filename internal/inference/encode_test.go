package inference

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// nastyStrings exercise every branch of appendString: escapes, control
// bytes, HTML-sensitive bytes, U+2028/2029, invalid and truncated UTF-8.
var nastyStrings = []string{
	"", "plain", "Answer:\n\tA) x\r\n", "\"quoted\" \\ back/slash",
	"\x00\x01\x1f\x7f\b\f", "<script>&amp;</script>", "line\u2028para\u2029",
	"héllo 日本語 😀", "bad \xff\xfe utf8 \xc3", "truncated \xe2\x82", "\ufffd literal",
	strings.Repeat("long é<\n", 10000),
}

func checkEncode(t *testing.T, in any) {
	t.Helper()
	want, wantErr := json.Marshal(in)
	var got []byte
	var gotErr error
	switch r := in.(type) {
	case *ChatRequest:
		got, gotErr = encodeChat(nil, r)
	case *CompletionRequest:
		got, gotErr = encodeCompletion(nil, r)
	default:
		t.Fatalf("%T: no encoder", in)
	}
	if (gotErr == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("%+v:\nfast %s (%v)\njson %s (%v)", in, got, gotErr, want, wantErr)
	}
	// Appended to a pooled buffer's earlier contents, which it keeps.
	prefix := []byte("prefix")
	switch r := in.(type) {
	case *ChatRequest:
		got, gotErr = encodeChat(prefix[:3], r)
	case *CompletionRequest:
		got, gotErr = encodeCompletion(prefix[:3], r)
	}
	if wantErr == nil && (gotErr != nil || string(got) != "pre"+string(want)) {
		t.Fatalf("%+v appended to %q: %q (%v)", in, "pre", got, gotErr)
	}
}

func TestEncodeRequestMatchesEncodingJSON(t *testing.T) {
	zero, one, tiny, huge, neg := 0.0, 1.0, 1e-7, 1e22, -0.5
	nan, inf, negZero := math.NaN(), math.Inf(1), math.Copysign(0, -1)
	temps := []*float64{nil, &zero, &one, &tiny, &huge, &neg, &nan, &inf, &negZero}
	seed, lp := 7, 3
	yes := true
	for _, s := range nastyStrings {
		for _, temp := range temps {
			checkEncode(t, &ChatRequest{Model: s, Messages: []ChatMessage{{Role: "user", Content: s}}, MaxTokens: 32, Temperature: temp})
			checkEncode(t, &CompletionRequest{Model: "m", Prompt: s, MaxTokens: 0, Temperature: temp, Stop: []string{s, "\n\n"}})
		}
		checkEncode(t, &ChatRequest{Model: "m", Messages: []ChatMessage{{"system", s}, {"user", s}}, Seed: &seed})
		checkEncode(t, &CompletionRequest{Model: s, Prompt: s, MaxTokens: -1, Echo: true, Logprobs: &lp, Stop: []string{}})
	}
	checkEncode(t, &ChatRequest{})
	checkEncode(t, &ChatRequest{Messages: []ChatMessage{}, Stream: true})
	checkEncode(t, &ChatRequest{Model: "m", Logprobs: &yes, TopLogprobs: &lp, N: &lp})
	checkEncode(t, &CompletionRequest{})
}

func FuzzEncodeRequest(f *testing.F) {
	for _, s := range nastyStrings[:len(nastyStrings)-1] {
		f.Add(s, s, 32, 0.0)
	}
	f.Fuzz(func(t *testing.T, model, text string, maxTokens int, temp float64) {
		checkEncode(t, &ChatRequest{Model: model, Messages: []ChatMessage{{Role: model, Content: text}}, MaxTokens: maxTokens, Temperature: &temp})
		checkEncode(t, &CompletionRequest{Model: model, Prompt: text, MaxTokens: maxTokens, Temperature: &temp, Stop: []string{model, text}})
	})
}

func BenchmarkEncodeChatRequest(b *testing.B) {
	zero := 0.0
	req := &ChatRequest{Model: "m", Messages: []ChatMessage{{Role: "user", Content: "Tracy didn't go home that evening and resisted Riley's attacks.\nWhat does Tracy need to do before this?\nA) make a new plan\nB) Go home and see Riley\nC) Find somewhere to go\nAnswer with the letter of the correct choice.\nAnswer:"}}, MaxTokens: 32, Temperature: &zero}
	b.ReportAllocs()
	var buf []byte // reused, as the client's pooled request bodies are
	for b.Loop() {
		var err error
		if buf, err = encodeChat(buf[:0], req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAppendStringEveryByteEverywhere puts every byte value, and pairs of
// special bytes, at every offset of plain ASCII text long enough for the
// word-at-a-time skip, so each lane of plainPrefix8 and the borrows between
// lanes meet every byte.
func TestAppendStringEveryByteEverywhere(t *testing.T) {
	base := []byte("abcdefghijklmnopqrstuvwx")
	special := []byte{0, 0x1f, 0x20, '"', '\\', '<', '>', '&', 0x7f, 0x80, 0xc3, 0xe2, 0xff, '!', '=', '?', ']'}
	check := func(s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: appendString %s, json.Marshal %s", s, got, want)
		}
	}
	for c := range 256 {
		for i := range base {
			s := bytes.Clone(base)
			s[i] = byte(c)
			check(string(s))
			for _, d := range special {
				for j := i + 1; j < len(s) && j <= i+9; j++ {
					s2 := bytes.Clone(s)
					s2[j] = d
					check(string(s2))
				}
			}
		}
	}
	check("é" + string(base))
	check(string(base) + "\u2028" + string(base))
}

// fill sets every field of the struct v points to, recursively, to a
// non-zero value json.Marshal writes: a field the encoders' deep copy
// forgot would then be missing from their output.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i))
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i))
		}
	case reflect.String:
		v.SetString("s")
	case reflect.Int:
		v.SetInt(3)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Float64:
		v.SetFloat(1e-9) // an exponent: json.Marshal's own format, the fallback
	default:
		panic("fill: add " + v.Kind().String())
	}
}

func TestEncodeEveryField(t *testing.T) {
	var chat ChatRequest
	fill(reflect.ValueOf(&chat).Elem())
	chat.Stream = false // Chat refuses streams; the encoder still writes it
	checkEncode(t, &chat)
	chat.Stream = true
	checkEncode(t, &chat)
	var compl CompletionRequest
	fill(reflect.ValueOf(&compl).Elem())
	checkEncode(t, &compl)
}
