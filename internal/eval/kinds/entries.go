package kinds

import (
	"encoding/json"
	"flag"
	"fmt"

	"crucible/internal/competition"
	"crucible/internal/kind"
)

// What the model competitions (task, mcq, roleplay) take as entries, in one
// place: the flags of `crucible competition create`, the request's
// "entries" option and the entry shape of a stored competition.

// EntryOf implements kind.CompetitionEntryShaper for the model kinds: a
// model, or a predictions file or an artifact when the competition's
// Entries say so.
func EntryOf(c competition.Competition) kind.Entry {
	switch competition.EntriesOf(c).Submissions {
	case competition.SubmitPredictions:
		return kind.EntryPredictions
	case competition.SubmitArtifacts:
		return kind.EntryArtifact
	}
	return kind.EntryModel
}

// SpecEntries returns a request's entries, checked (competition.Entries.Check
// with also): its "entries" option when sent, else own, what the kind's own
// option carries (a task request's TaskSource).
func SpecEntries(spec kind.Spec, own competition.Entries, also ...string) (competition.Entries, error) {
	if raw, ok := spec.Options["entries"]; ok && string(raw) != "null" {
		own = competition.Entries{}
		if err := json.Unmarshal(raw, &own); err != nil {
			return own, fmt.Errorf("entries: %w", err)
		}
	}
	return own.Check(also...)
}

// AddEntryFlags adds --submissions, --max-parameters and
// --max-artifact-bytes to fs, the flags of `crucible competition create`;
// the returned function reads them into the request's "entries" option
// (nil when every flag keeps its default).
func AddEntryFlags(fs *flag.FlagSet) func() *competition.Entries {
	submissions := fs.String("submissions", competition.SubmitModels, "task, mcq, roleplay: what competitors enter: models (served by the competitor, crucible submit\n"+
		"model) or artifacts (model files the workers fetch, verify against the committed tree digest and\n"+
		"serve themselves, crucible submit artifact); task also predictions (JSONL files of {doc_id, response},\n"+
		"crucible submit predictions; generate_until tasks). A predictions competition shows its prompts and\n"+
		"hides its targets: send your own --data, not a preset's public rows")
	maxParams := fs.Int64("max-parameters", 0, "task, mcq, roleplay, with --submissions artifacts: refuse artifacts with more parameters (0: no cap)")
	maxBytes := fs.Int64("max-artifact-bytes", 0, "task, mcq, roleplay, with --submissions artifacts: refuse artifacts whose files total more bytes (0: no cap)")
	return func() *competition.Entries {
		e := competition.Entries{MaxParameters: *maxParams, MaxArtifactBytes: *maxBytes}
		if *submissions != competition.SubmitModels {
			e.Submissions = *submissions
		}
		if e == (competition.Entries{}) {
			return nil
		}
		return &e
	}
}
