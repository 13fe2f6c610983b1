package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"time"
)

// output is the --json flag of a command that prints data. Every such
// command chooses between JSON (for programs) and text (for people) here,
// so the choice and the JSON encoding are written once.
type output struct{ asJSON *bool }

// addOutputFlags adds --json with the command's own help text.
func addOutputFlags(fs *flag.FlagSet, help string) output {
	return output{asJSON: fs.Bool("json", false, help)}
}

// isJSON reports --json, for the few commands whose flow differs beyond
// the final print (status --watch, the verdict line of verify-epoch).
func (o output) isJSON() bool { return *o.asJSON }

// emit prints v as indented JSON under --json, otherwise runs text.
func (o output) emit(w io.Writer, v any, text func() error) error {
	if !*o.asJSON {
		return text()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// durationFields are the JSON fields of stored configurations that hold a
// time.Duration, which JSON carries as integer nanoseconds.
var durationFields = map[string]bool{"half_life": true, "refresh": true}

// durationsInWords rewrites a configuration's duration fields, at any
// depth, from nanoseconds to Go duration text ("720h0m0s") for people to
// read; the JSON on the wire keeps nanoseconds. Input that does not parse
// is returned as it is.
func durationsInWords(raw json.RawMessage) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				if n, ok := x.(json.Number); ok && durationFields[k] {
					if ns, err := n.Int64(); err == nil {
						t[k] = time.Duration(ns).String()
						continue
					}
				}
				t[k] = walk(x)
			}
		case []any:
			for i, x := range t {
				t[i] = walk(x)
			}
		}
		return v
	}
	out, err := json.Marshal(walk(v))
	if err != nil {
		return raw
	}
	return out
}
