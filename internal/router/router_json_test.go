package router

import "testing"

func TestModelField(t *testing.T) {
	tests := []struct {
		name, body, want string
		ok               bool
	}{
		{"a plain chat body yields its model", `{"model":"m1","messages":[{"role":"user","content":"hi"}]}`, "m1", true},
		{"whitespace is allowed everywhere", " {\n \"model\" : \"m1\" \n} ", "m1", true},
		{"model after nested values is found", `{"messages":[{"content":"{\"model\":\"evil\"}"}],"x":{"model":"nested"},"n":1.5e3,"b":true,"z":null,"model":"m2"}`, "m2", true},
		{"the last model key wins like encoding/json", `{"model":"a","model":"b"}`, "b", true},
		{"an escaped model value is unescaped", `{"model":"llama\u0033:8b"}`, "llama3:8b", true},
		{"an escaped key is recognised", `{"mod\u0065l":"m"}`, "m", true},
		{"a missing model is not found", `{"messages":[]}`, "", false},
		{"a non-string model is rejected", `{"model":3}`, "", false},
		{"an array body is rejected", `[{"model":"m"}]`, "", false},
		{"truncated JSON is rejected", `{"model":"m"`, "", false},
		{"an unterminated string is rejected", `{"model":"m`, "", false},
		{"an empty body is rejected", ``, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := modelField([]byte(tt.body))
			if ok != tt.ok || string(got) != tt.want {
				t.Fatalf("modelField(%s) = %q, %v; want %q, %v", tt.body, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func BenchmarkModelField(b *testing.B) {
	body := []byte(`{"model":"baseline-oracle","messages":[{"role":"system","content":"Answer with the letter."},{"role":"user","content":"Tracy didn't go home that evening and resisted Riley's attacks.\nQuestion: What does Tracy need to do before this?\nA) make a new plan\nB) Go home and see Riley\nC) Find somewhere to go\nAnswer:"}],"max_tokens":16,"temperature":0}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := modelField(body); !ok {
			b.Fatal("no model")
		}
	}
}
