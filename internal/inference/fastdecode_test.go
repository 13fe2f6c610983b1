package inference

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// fastBodies are response bodies for the fast decoder: the shapes real
// servers send, and the shapes a hostile model server could send to make a
// hand-written decoder read something encoding/json would not.
var fastBodies = []string{
	// Real shapes (baseline server, vLLM, llama.cpp, OpenAI).
	`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"C"},"finish_reason":"stop"}],"usage":{"prompt_tokens":57,"completion_tokens":1,"total_tokens":58}}`,
	`{"id":"chatcmpl-2","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"The answer is B.\n\n**B**","tool_calls":[],"reasoning_content":null,"refusal":null},"logprobs":null,"finish_reason":"length","stop_reason":null}],"usage":{"prompt_tokens":5,"total_tokens":9,"completion_tokens":4,"prompt_tokens_details":null},"prompt_logprobs":null,"system_fingerprint":"fp_1","service_tier":"default"}`,
	`{"id":"cmpl-3","object":"text_completion","created":2,"model":"m","choices":[{"text":" 42\nQuestion:","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`,
	`{"choices":[{"text":"a","index":0},{"text":"b","index":1,"finish_reason":"stop"}]}`,
	` {"choices":[] , "usage" : null } ` + "\n",
	`{}`,
	`{"choices":null}`,
	// Escapes and unicode: unquoted by encoding/json itself.
	`{"choices":[{"message":{"content":"\u0041\ud83d\ude00 \"quoted\" \\ \/ \b\f\n\r\t"}}]}`,
	`{"choices":[{"message":{"content":"lone surrogate \ud800 and \udc00x"}}]}`,
	"{\"choices\":[{\"message\":{\"content\":\"invalid utf8 \xff\xfe and \xc3\"}}]}",
	`{"choices":[{"message":{"content":"héllo wörld 日本語 \u2028"}}]}`,
	// Keys encoding/json matches case-insensitively or after unescaping.
	`{"Choices":[{"message":{"content":"A"}}]}`,
	`{"choices":[{"Message":{"content":"A"}}]}`,
	`{"choices":[{"message":{"CONTENT":"A"}}]}`,
	`{"choices":[{"message":{"\u0063ontent":"A"}}]}`,
	`{"choices":[{"message":{"content":"A","Content":"B"}}]}`,
	`{"choices":[{"meſsage":{"content":"A"}}]}`,
	`{"usage":{"total_tokenſ":3}}`,
	`{"id":"x","ıd":"y"}`,
	// Repeated keys: encoding/json keeps the last, merging objects.
	`{"choices":[{"message":{"content":"A"}}],"choices":[{"index":1}]}`,
	`{"choices":[{"message":{"content":"A"},"message":{"role":"r"}}]}`,
	`{"choices":[{"message":{"content":"A","content":"B"}}]}`,
	`{"id":"a","id":"b"}`,
	// The same in the choices after the first and in usage, which the
	// answer path (decodeAnswer) checks without keeping.
	`{"choices":[{"message":{"content":"A"}},{"index":1,"index":2}]}`,
	`{"choices":[{"message":{"content":"A"}},{"message":{"content":"B","content":"C"}}]}`,
	`{"choices":[{"message":{"content":"A"},"finish_reason":"stop","finish_reason":"length"}]}`,
	`{"choices":[],"choices":[{"message":{"content":"A"}}]}`,
	`{"usage":{"prompt_tokens":1,"prompt_tokens":2},"choices":[]}`,
	`{"created":1,"created":2,"choices":[]}`,
	`{"model":"a","object":"b","model":"c"}`,
	`{"choices":[{"message":{"content":"A"},"Finish_Reason":"stop"}]}`,
	`{"choices":[{"message":{"content":"A"}}],"Usage":{"prompt_tokens":1}}`,
	`{"usage":{"Prompt_Tokens":1,"completion_tokenS":2}}`,
	`{"ID":"x","MODEL":"y","choices":[]}`,
	`{"X-Y":1,"Zz":[{"A":"B"}],"choices":[{"Index2":0,"message":{"Rolex":"r","X":1,"content":"A"}}]}`,
	`{"choices":[{"message":{"content":"A"}},{"message":{"content":7}}]}`,
	`{"choices":[{"message":{"content":"A"}},{"message":{"role":["r"]}}]}`,
	`{"choices":[{"message":{"content":"A"}},{"finish_reason":1}]}`,
	`{"choices":[{"message":{"content":"A"}},{"index":"1"}]}`,
	`{"choices":[{"message":{"content":"A"}},null]}`,
	`{"choices":[{"message":{"content":"A"}},{"logprobs":{"content":null}}]}`,
	`{"choices":[{"message":{"content":"A"}},{"message":null,"finish_reason":null,"index":null,"logprobs":null}]}`,
	`{"choices":[{"index":1.5,"message":{"content":"A"}}]}`,
	`{"choices":[{"message":{"content":"A"},"logprobs":7}]}`,
	`{"choices":[{"message":{"content":"A"},"logprobs":{"content":[{"token":5}]}}]}`,
	`{"id":7,"choices":[{"message":{"content":"A"}}]}`,
	`{"object":{},"choices":[{"message":{"content":"A"}}]}`,
	`{"model":true,"choices":[{"message":{"content":"A"}}]}`,
	`{"created":"1","choices":[{"message":{"content":"A"}}]}`,
	`{"choices":[{"message":{"content":"A"}}],"usage":{"total_tokens":-1,"x":[1]}}`,
	`{"choices":[{"message":{"content":"","role":null},"finish_reason":""}]}`,
	`{"choices":[{"message":{}}],"usage":{}}`,
	`{"choices":[{}]}`,
	// Wrong types and numbers: encoding/json reports type errors.
	`{"created":1.5}`,
	`{"created":1e3}`,
	`{"created":-0}`,
	`{"created":99999999999999999999}`,
	`{"created":-9223372036854775808}`,
	`{"created":9999999999999999999}`,
	`{"created":-9999999999999999999}`,
	`{"created":1E3}`,
	`{"created":1.0}`,
	`{"usage":{"prompt_tokens":2e0}}`,
	`{"created":"1"}`,
	`{"usage":{"prompt_tokens":"3"}}`,
	`{"usage":{"prompt_tokens":true}}`,
	`{"usage":[1,2]}`,
	`{"choices":{"message":"x"}}`,
	`{"choices":[null]}`,
	`{"choices":[{"message":null,"index":null,"finish_reason":null}]}`,
	`{"choices":[{"message":"A"}]}`,
	`{"choices":[{"message":{"content":7}}]}`,
	`{"choices":[{"message":{"content":["A"]}}]}`,
	`{"choices":[{"logprobs":{"content":[{"token":"A","logprob":-0.1,"bytes":[65],"top_logprobs":[]}]},"message":{"content":"A"}}]}`,
	`{"choices":[{"text":"A","logprobs":{"tokens":["A"],"token_logprobs":[null],"text_offset":[0],"top_logprobs":null}}]}`,
	`{"model":null,"id":null,"object":null,"created":null,"usage":{"prompt_tokens":null}}`,
	// Unknown members of every kind, skipped.
	`{"x":{"a":[1,{"b":"}]"}],"c":"\"{"},"y":[[],{}],"z":-1.5e-3,"w":true,"v":false,"u":null,"choices":[{"text":"t"}]}`,
	// Malformed documents: always encoding/json's error.
	``,
	`null`,
	`[]`,
	`"x"`,
	`{"choices":[{"message":{"content":"A"}}]`,
	`{"choices":[{"message":{"content":"A"}}]}}`,
	`{"choices":[{"message":{"content":"A"}}]} x`,
	`{"choices":[{"message":{"content":"A
"}}]}`,
	`{"choices":[{"message":{"content":"\x"}}]}`,
	`{"choices":[{"message":{"content":"A"},}]}`,
	`{"created":01}`,
	`{"created":+1}`,
	`{'id':'x'}`,
	// Malformed in every place the fast path now checks itself (it used to
	// rely on json.Valid): strings, escapes, numbers, literals, structure,
	// in decoded members and in skipped ones.
	`{"id":"a` + "\t" + `b"}`,
	`{"id":"a` + "\x00" + `b"}`,
	`{"x":"a` + "\x1f" + `","choices":[]}`,
	`{"id":"\u12G4"}`,
	`{"id":"\u123"}`,
	`{"id":"\u"}`,
	`{"id":"\`,
	`{"id":"abc`,
	`{"x":"\q","choices":[]}`,
	`{"x":"\u00e9\/\b","choices":[]}`,
	`{"created":-}`,
	`{"created":-01}`,
	`{"created":00}`,
	`{"created":1.}`,
	`{"created":.5}`,
	`{"created":1e}`,
	`{"created":1e+}`,
	`{"created":1x}`,
	`{"created":123456789012345678}`,
	`{"created":-1234567890123456789}`,
	`{"created":nul}`,
	`{"created":nulll}`,
	`{"usage":nul}`,
	`{"usage":n}`,
	`{"choices":nu}`,
	`{"choices":[{"message":nulL}]}`,
	`{"choices":[{"logprobs":nxll}]}`,
	`{"x":01,"choices":[]}`,
	`{"x":-,"choices":[]}`,
	`{"x":1.5e+3,"y":-0.0E-7,"z":0e1,"choices":[]}`,
	`{"x":1.e3,"choices":[]}`,
	`{"x":tru,"choices":[]}`,
	`{"x":truex,"choices":[]}`,
	`{"x":fals,"choices":[]}`,
	`{"x":True,"choices":[]}`,
	`{"x":[1,],"choices":[]}`,
	`{"x":[1 2],"choices":[]}`,
	`{"x":[,1],"choices":[]}`,
	`{"x":{"a":1,},"choices":[]}`,
	`{"x":{"a" 1},"choices":[]}`,
	`{"x":{1:2},"choices":[]}`,
	`{"x":{"a":},"choices":[]}`,
	`{"x":[},"choices":[]}`,
	`{"x":{],"choices":[]}`,
	`{"x":[[[[]]]],"choices":[]}`,
	`{"x":,"choices":[]}`,
	`{"x"`,
	`{"x":`,
	`{"x":[`,
	`{,"choices":[]}`,
	`{"choices":[],}`,
	`{"choices":[{"message":{"content":"A"},}]}`,
	`{"choices":[{"message":{"content":"A",}}]}`,
	`{"choices":[{"message":{"content":"A"}} {"index":1}]}`,
	`{"choices":[{"message":{"content":"A"}},]}`,
	`{"choices":[{"message":{"content":"A"}}]}` + "\x00",
	"\xef\xbb\xbf" + `{"choices":[]}`,
}

// checkFast decodes body with the client's path (the fast decoder,
// encoding/json as the fallback) and with encoding/json alone, and
// fails when they differ in the value or in whether decoding failed.
func checkFast[T any](t *testing.T, body []byte) {
	t.Helper()
	var want, got T
	wantErr := json.Unmarshal(body, &want)
	if decodeFast(body, &got) {
		if wantErr != nil {
			t.Fatalf("%T %q: fast path decoded a body encoding/json rejects (%v): %+v", got, body, wantErr, got)
		}
	} else {
		gotErr := json.Unmarshal(body, &got)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%T %q: fallback error %v, encoding/json %v", got, body, gotErr, wantErr)
		}
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%T %q:\nfast %#v\njson %#v", got, body, got, want)
	}
}

// checkAnswer decodes body as Client.ChatAnswer does (decodeAnswer, then
// Chat's decoding as the fallback) and fails when it differs from the
// ChatResponse encoding/json decodes, in the answer's fields or in whether
// decoding failed.
func checkAnswer(t *testing.T, body []byte) {
	t.Helper()
	var want ChatResponse
	wantErr := json.Unmarshal(body, &want)
	var got ChatAnswer
	if decodeAnswer(body, &got) {
		if wantErr != nil {
			t.Fatalf("%q: answer path decoded a body encoding/json rejects (%v): %+v", body, wantErr, got)
		}
	} else {
		if got != (ChatAnswer{}) {
			t.Fatalf("%q: answer path gave up leaving %+v", body, got)
		}
		var resp ChatResponse
		gotErr := decode(body, &resp, "POST", "/chat")
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: fallback error %v, encoding/json %v", body, gotErr, wantErr)
		}
		got = answerOf(&resp)
	}
	if wantErr == nil && got != answerOf(&want) {
		t.Fatalf("%q:\nanswer %#v\njson   %#v", body, got, answerOf(&want))
	}
}

func TestFastDecodeMatchesEncodingJSON(t *testing.T) {
	for _, b := range fastBodies {
		checkFast[ChatResponse](t, []byte(b))
		checkFast[CompletionResponse](t, []byte(b))
		checkAnswer(t, []byte(b))
	}
}

// TestFastDecodeTakesTheUsualShapes guards the point of the fast path: the
// bodies real servers send must not fall back to encoding/json.
func TestFastDecodeTakesTheUsualShapes(t *testing.T) {
	for _, b := range fastBodies[:7] {
		var c ChatResponse
		if strings.Contains(b, "text_completion") || strings.Contains(b, `"text"`) {
			var c CompletionResponse
			if !decodeFast([]byte(b), &c) {
				t.Errorf("completion body fell back to encoding/json: %s", b)
			}
			continue
		}
		if !decodeFast([]byte(b), &c) {
			t.Errorf("chat body fell back to encoding/json: %s", b)
		}
		var a ChatAnswer
		if !decodeAnswer([]byte(b), &a) {
			t.Errorf("chat body fell back from the answer path: %s", b)
		}
	}
}

func TestFastDecodeOversizedContent(t *testing.T) {
	big := strings.Repeat("é\\n\\u00e9x", 200000)
	checkFast[ChatResponse](t, []byte(`{"choices":[{"message":{"content":"`+big+`"}}]}`))
	checkAnswer(t, []byte(`{"choices":[{"message":{"content":"`+big+`"}}]}`))
	for _, depth := range []int{31, 32, 33, 5000, 10001} {
		deep := strings.Repeat(`{"a":[`, depth) + strings.Repeat(`]}`, depth)
		checkFast[ChatResponse](t, []byte(`{"x":`+deep+`,"choices":[{"message":{"content":"A"}}]}`))
		checkAnswer(t, []byte(`{"x":`+deep+`,"choices":[{"message":{"content":"A"}}]}`))
		checkAnswer(t, []byte(`{"choices":[{"message":{"x":`+deep+`,"content":"A"}}]}`))
	}
}

func FuzzFastDecode(f *testing.F) {
	for _, b := range fastBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFast[ChatResponse](t, body)
		checkFast[CompletionResponse](t, body)
		checkAnswer(t, body)
	})
}

func BenchmarkDecodeAnswer(b *testing.B) {
	body := []byte(fastBodies[0])
	b.ReportAllocs()
	for b.Loop() {
		var a ChatAnswer
		if !decodeAnswer(body, &a) {
			b.Fatal("not decoded")
		}
	}
}

func BenchmarkDecodeChat(b *testing.B) {
	body := []byte(fastBodies[0])
	b.ReportAllocs()
	for b.Loop() {
		var r ChatResponse
		if !decodeFast(body, &r) {
			b.Fatal("not decoded")
		}
	}
}

// TestFastDecodeEveryByteInStrings puts every byte value, and pairs of
// bytes that end or escape a string, at every offset of a string long
// enough for rawString's eight-byte skip, in a key and in a value: a raw
// control character the skip let through would be accepted where
// encoding/json rejects the body, a backslash it missed would be read
// wrongly. (A skip blind to quotes runs off the end and fails safe, to
// encoding/json; TestFastDecodeTakesTheUsualShapes catches that.)
func TestFastDecodeEveryByteInStrings(t *testing.T) {
	base := []byte("abcdefghijklmnopqrstuvwx")
	special := []byte{0, '\n', 0x1f, 0x20, '"', '\\', 0x7f, 0x80, 0xc3, 0xff, '/', 'u'}
	check := func(s []byte) {
		t.Helper()
		checkFast[ChatResponse](t, []byte(`{"choices":[{"message":{"content":"`+string(s)+`"}}]}`))
		checkFast[ChatResponse](t, []byte(`{"`+string(s)+`":1,"choices":[]}`))
		checkAnswer(t, []byte(`{"choices":[{"message":{"content":"`+string(s)+`"}}]}`))
		checkAnswer(t, []byte(`{"`+string(s)+`":1,"choices":[]}`))
		checkAnswer(t, []byte(`{"choices":[{"message":{"`+string(s)+`":1}}]}`))
	}
	for c := range 256 {
		for i := range base {
			s := bytes.Clone(base)
			s[i] = byte(c)
			check(s)
			for _, d := range special {
				for j := i + 1; j < len(s) && j <= i+9; j++ {
					s2 := bytes.Clone(s)
					s2[j] = d
					check(s2)
				}
			}
		}
	}
}

// TestAnswerKeysCaseFoldedAnywhere upper-cases each letter of each field
// name the answer path knows, in its place, with a value encoding/json
// rejects for every such field: a key the word test let through as plain
// would be skipped where encoding/json matches it and fails.
func TestAnswerKeysCaseFoldedAnywhere(t *testing.T) {
	wrap := []struct {
		names      []string
		head, tail string
	}{
		{headNames, `{"choices":[],`, `}`},
		{chatChoiceNames, `{"choices":[{"message":{"content":"A"},`, `}]}`},
		{chatChoiceNames, `{"choices":[{"message":{"content":"A"}},{`, `}]}`},
		{chatMessageNames, `{"choices":[{"message":{"content":"A",`, `}}]}`},
		{usageNames, `{"choices":[],"usage":{`, `}}`},
	}
	for _, w := range wrap {
		for _, n := range w.names {
			for i := range len(n) {
				k := []byte(n)
				if k[i] < 'a' || k[i] > 'z' {
					continue
				}
				k[i] -= 'a' - 'A'
				checkAnswer(t, []byte(w.head+`"`+string(k)+`":[true]`+w.tail))
				checkAnswer(t, []byte(w.head+`"`+string(k)+`":[true],"z":1`+w.tail))
			}
			// The non-ASCII letters that fold to ASCII ones: ſ to s, the
			// Kelvin sign to k.
			for _, r := range []struct{ from, to string }{{"s", "ſ"}, {"k", "\u212a"}} {
				for i := range len(n) {
					if n[i:i+1] == r.from {
						checkAnswer(t, []byte(w.head+`"`+n[:i]+r.to+n[i+1:]+`":[true]`+w.tail))
					}
				}
			}
		}
	}
}

// TestKeyPlainEveryByte checks the key's byte table against its rule in
// every byte value.
func TestKeyPlainEveryByte(t *testing.T) {
	for c := range 256 {
		want := c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && !('A' <= c && c <= 'Z')
		if keyPlain[c] != want {
			t.Errorf("keyPlain[%#x] = %v, want %v", c, keyPlain[c], want)
		}
	}
}
