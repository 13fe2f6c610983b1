package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"reflect"
	"testing"
)

// TestOutputEmitChoosesByJSONFlag: --json prints the value as indented JSON
// and never runs the text printer; without it only the text printer runs.
func TestOutputEmitChoosesByJSONFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--json"}, "{\n  \"a\": 1\n}\n"},
		{nil, "text\n"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o := addOutputFlags(fs, "print JSON")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		err := o.emit(&b, map[string]int{"a": 1}, func() error {
			_, err := b.WriteString("text\n")
			return err
		})
		if err != nil || b.String() != tc.want {
			t.Errorf("args %v: printed %q (err %v), want %q", tc.args, b.String(), err, tc.want)
		}
		if o.isJSON() != (len(tc.args) > 0) {
			t.Errorf("args %v: isJSON() = %v", tc.args, o.isJSON())
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	addOutputFlags(fs, "print the key id as JSON")
	if f := fs.Lookup("json"); f == nil || f.Usage != "print the key id as JSON" || f.DefValue != "false" {
		t.Fatalf("--json flag = %+v, want the command's own help and default false", f)
	}
}

// A configuration's durations print as durations in text; other numbers,
// and fields that only share a name inside strings, stay as they are.
func TestDurationsInWords(t *testing.T) {
	in := `{"weights":{"correctness":0.7,"half_life":2592000000000000},"refresh":600000000000,"items":[{"half_life":1000000000}],"note":"half_life"}`
	var got, want map[string]any
	if err := json.Unmarshal(durationsInWords(json.RawMessage(in)), &got); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(`{"weights":{"correctness":0.7,"half_life":"720h0m0s"},"refresh":"10m0s","items":[{"half_life":"1s"}],"note":"half_life"}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if bad := `{"half_life":`; string(durationsInWords(json.RawMessage(bad))) != bad {
		t.Error("a configuration that does not parse is not returned as it is")
	}
}
