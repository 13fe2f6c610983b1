package main

import (
	"bytes"
	"flag"
	"io"
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
