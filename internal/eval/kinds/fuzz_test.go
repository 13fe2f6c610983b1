package kinds

import (
	"bytes"
	"strings"
	"testing"

	"crucible/internal/eval/preference"
)

// FuzzPreferenceDataset feeds arbitrary dataset files to the readers of a
// preference competition's upload, organic tasks and seed instructions
// alike: they must never panic, accept at most MaxPreferenceTasks tasks,
// and every error but the empty file's names a line.
func FuzzPreferenceDataset(f *testing.F) {
	f.Add([]byte(`{"id":"a","instruction":"Say hi.","responses":["Hi!","Hello there.","Go away."]}` + "\n"))
	f.Add([]byte(`{"id":"a","instruction":"Say hi.","responses":["Hi!","Hello."],"criteria":"score","deadline":"2026-12-01T00:00:00Z"}`))
	f.Add([]byte(`{"id":"a","instruction":"x","responses":["1","2","3"]}` + "\n" + `{"id":"a","instruction":"x","responses":["1","2","3"]}`))
	f.Add([]byte(`{"id":"s","instruction":"Write a haiku.","reference":"Snow on the pine."}`))
	f.Add([]byte(`{"id":"s","kind":"code","instruction":"Add.","requirements":["Go"],"reference":"func Add(a, b int) int { return a + b }"}`))
	f.Add([]byte(`{"id":"s","instruction":"x","unknown":true}`))
	f.Add([]byte("\n\n[]\n"))
	f.Add([]byte(strings.Repeat("y", preference.MaxSeedLineBytes+1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var n int
		var err error
		if isOrganic(data) {
			var tasks []preference.Task
			tasks, err = parseOrganic(data, "fuzz", preference.CriteriaRank)
			n = len(tasks)
		} else {
			var seeds []preference.Seed
			seeds, err = preference.ParseSeeds(bytes.NewReader(data), "fuzz")
			n = len(seeds)
		}
		if err != nil {
			if !strings.Contains(err.Error(), ": line ") && !strings.HasSuffix(err.Error(), ": no seeds") {
				t.Fatalf("error names no line: %v", err)
			}
			return
		}
		if n > MaxPreferenceTasks && isOrganic(data) {
			t.Fatalf("accepted %d tasks, over the limit of %d", n, MaxPreferenceTasks)
		}
	})
}
