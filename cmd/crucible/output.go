package main

import (
	"encoding/json"
	"flag"
	"io"
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
