package roleplay

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParsePersonas feeds arbitrary persona files to the reader that takes
// a competition creator's upload: it must never panic, every set it accepts
// is valid, and every error but the empty set's names a line.
func FuzzParsePersonas(f *testing.F) {
	f.Add([]byte(`{"name":"Ada","persona":"A tinkerer.","greeting":"Hello."}` + "\n"))
	f.Add([]byte(`{"name":"Ada","persona":"p","greeting":"g","example_dialogue":[{"user":"u","character":"c"}],"openers":["hi"]}`))
	f.Add([]byte(`{"name":"Ada","persona":"p","greeting":"g"}` + "\n\n" + `{"name":"ada","persona":"p","greeting":"g"}`))
	f.Add([]byte(`{"name":"Ada","persona":"p"}`))
	f.Add([]byte(`{"name":"Ada","persona":"p","greeting":"g","extra":1}`))
	f.Add([]byte("{\"name\":\"\\u0000\",\"persona\":\" \",\"greeting\":\"g\"}\n[1,2]\n"))
	f.Add([]byte("\n  \n"))
	f.Add([]byte(strings.Repeat("x", MaxLineBytes+1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := ParsePersonas(bytes.NewReader(data), "fuzz")
		if err != nil {
			if !strings.Contains(err.Error(), ": line ") && !strings.HasSuffix(err.Error(), ": no personas") {
				t.Fatalf("error names no line: %v", err)
			}
			return
		}
		if len(set) == 0 {
			t.Fatal("accepted an empty set")
		}
		seen := map[string]bool{}
		for _, c := range set {
			if c.Name == "" || c.Persona == "" || c.Greeting == "" || seen[strings.ToLower(c.Name)] {
				t.Fatalf("accepted an invalid or duplicate character %+v", c)
			}
			seen[strings.ToLower(c.Name)] = true
		}
	})
}
