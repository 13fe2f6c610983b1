package kinds

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"crucible/internal/competition"
	"crucible/internal/kind"
)

// An mcq competition's entries come from the request's "entries" option and
// are stored at the top level of its configuration, where EntryOf and the
// worker's caps read them; mcq takes models or artifacts, never
// predictions, and caps only with artifacts.
func TestMCQCompetitionsTakeArtifacts(t *testing.T) {
	dataset := []byte(`{"question":"q","choices":["a","b"],"answer":0}`)
	prepare := func(entries string) (competition.Competition, error) {
		spec := kind.Spec{Title: "t", DatasetName: "d", Dataset: dataset}
		if entries != "" {
			spec.Options = map[string]json.RawMessage{"entries": json.RawMessage(entries)}
		}
		p, err := MCQ{}.Prepare(context.Background(), spec)
		return competition.Competition{Kind: "mcq", Config: p.Config}, err
	}
	c, err := prepare(`{"submissions": "artifacts", "max_parameters": 1000, "max_artifact_bytes": 5000}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := (MCQ{}).EntryOf(c); got != kind.EntryArtifact {
		t.Errorf("EntryOf = %d, want EntryArtifact", got)
	}
	if e := competition.EntriesOf(c); e.MaxParameters != 1000 || e.MaxArtifactBytes != 5000 {
		t.Errorf("stored entries %+v (config %s); want the caps", e, c.Config)
	}
	for entries, want := range map[string]kind.Entry{"": kind.EntryModel, `{"submissions": "models"}`: kind.EntryModel} {
		if c, err := prepare(entries); err != nil || (MCQ{}).EntryOf(c) != want || strings.Contains(string(c.Config), "submissions") {
			t.Errorf("entries %q: %v, EntryOf %d, config %s; want models, stored as before", entries, err, (MCQ{}).EntryOf(c), c.Config)
		}
	}
	for entries, want := range map[string]string{
		`{"submissions": "predictions"}`:                     `submissions "predictions": want "models" (the default) or "artifacts"`,
		`{"max_parameters": 10}`:                             "cap artifact submissions",
		`{"submissions": "artifacts", "max_parameters": -1}`: "a cap is 0 (none) or positive",
	} {
		if _, err := prepare(entries); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("entries %s: %v; want %q", entries, err, want)
		}
	}
}
