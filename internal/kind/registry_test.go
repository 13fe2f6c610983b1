package kind_test

import (
	"context"
	"encoding/json"
	"flag"
	"strconv"
	"strings"
	"testing"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/kind"
	"crucible/internal/kind/kindtest"
)

// named is a kind with only a name (and the contract's other methods).
type named struct{ kindtest.Echo }

func (named) Name() string { return "" }

// padded is a kind whose name has spaces around it.
type padded struct{ kindtest.Echo }

func (padded) Name() string { return " echo" }

// patchy takes diffs and ranks its own way.
type patchy struct{ kindtest.Echo }

func (patchy) Name() string      { return "patchy" }
func (patchy) Entry() kind.Entry { return kind.EntryPatch }
func (patchy) Leaderboard(competition.Competition, []competition.Submission) []competition.Row {
	return []competition.Row{{Name: "by submitter"}}
}

func TestRegisterRefusesDuplicatesAndEmptyNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		kinds   []kind.Kind
		wantErr string
	}{
		{"one kind is fine", []kind.Kind{kindtest.Echo{}}, ""},
		{"the same name twice is refused", []kind.Kind{kindtest.Echo{}, kindtest.Echo{}}, `kind "echo" is registered twice`},
		{"an empty name is refused", []kind.Kind{named{}}, "empty or padded kind name"},
		{"a padded name is refused", []kind.Kind{padded{}}, "empty or padded kind name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := kind.NewRegistry(tt.kinds...)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("NewRegistry = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestAnUnknownKindListsTheKnownOnes(t *testing.T) {
	t.Parallel()
	reg, err := kind.NewRegistry(patchy{}, kindtest.Echo{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = reg.Parse("bogus")
	if err == nil || err.Error() != `unknown kind "bogus" (kinds: echo, patchy)` {
		t.Fatalf("Parse(bogus) = %v", err)
	}
	if _, err := reg.Prepare(context.Background(), "bogus", kind.Spec{Title: "t"}); err == nil || !strings.Contains(err.Error(), "(kinds: echo, patchy)") {
		t.Fatalf("Prepare(bogus) = %v", err)
	}
	if _, err := reg.Plan(context.Background(), competition.Competition{ID: "c-1", Kind: "gone"}, competition.Submission{}, "", nil); err == nil ||
		!strings.Contains(err.Error(), `competition c-1: unknown kind "gone"`) {
		t.Fatalf("Plan of a stored competition whose kind this build lacks = %v", err)
	}
}

func TestOptionalInterfacesAreDiscovered(t *testing.T) {
	t.Parallel()
	reg, err := kind.NewRegistry(patchy{}, kindtest.Echo{})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Entry("echo") != kind.EntryModel || !reg.RanksModels("echo") {
		t.Error("a kind that says nothing takes models and ranks them")
	}
	if reg.Entry("patchy") != kind.EntryPatch || reg.RanksModels("patchy") {
		t.Error("a kind of patch entries does not rank models")
	}
	if reg.RanksModels("gone") || reg.Epochs("echo") || reg.Labeled("echo") || reg.Rules(competition.Competition{Kind: "echo"}) != nil {
		t.Error("an unknown kind ranks nothing; echo has no epochs, labels or rules")
	}
	if rows := reg.Leaderboard(competition.Competition{Kind: "patchy"}, nil); len(rows) != 1 || rows[0].Name != "by submitter" {
		t.Errorf("patchy's own leaderboard was not used: %+v", rows)
	}
	scored := competition.Card{Score: 0.5}
	subs := []competition.Submission{{ID: "s-1", Name: "m", State: competition.StateScored, Card: &scored}}
	if rows := reg.Leaderboard(competition.Competition{Kind: "echo"}, subs); len(rows) != 1 || rows[0].Score != 0.5 {
		t.Errorf("the default leaderboard ranks one row per scored submission: %+v", rows)
	}
}

// flagged is a kind with a flag of its own on competition create.
type flagged struct{ kindtest.Echo }

func (flagged) Name() string { return "flagged" }
func (flagged) CreateFlags(fs *flag.FlagSet) func() (kind.Creation, error) {
	words := fs.String("words", "", "flagged: its own setting")
	return func() (kind.Creation, error) {
		return kind.Creation{Options: map[string]json.RawMessage{"words": json.RawMessage(strconv.Quote(*words))}}, nil
	}
}

func TestCreateFlagsAreEachKindsOwn(t *testing.T) {
	t.Parallel()
	reg, err := kind.NewRegistry(flagged{}, kindtest.Echo{})
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	read := reg.CreateFlags(fs)
	if err := fs.Parse([]string{"--words", "hi"}); err != nil {
		t.Fatalf("the kind's flag was not added: %v", err)
	}
	if c, err := read("flagged"); err != nil || string(c.Options["words"]) != `"hi"` {
		t.Errorf("flagged reads %+v, %v; want its flag's value", c, err)
	}
	if c, err := read("echo"); err != nil || c.Options != nil || c.Dataset != "" || c.Shipped || c.Created != nil {
		t.Errorf("a kind without flags reads %+v, %v; want nothing", c, err)
	}
}

func TestScoreSortsResultsByIndex(t *testing.T) {
	t.Parallel()
	reg, err := kind.NewRegistry(kindtest.Echo{})
	if err != nil {
		t.Fatal(err)
	}
	card, scores, err := reg.Score(competition.Competition{Kind: "echo"}, []eval.Result{{Index: 1, Score: 0}, {Index: 0, Score: 1, Correct: true}})
	if err != nil || len(scores) != 2 || scores[0] != 1 || scores[1] != 0 || card.Correct != 1 || card.Score != 0.5 {
		t.Fatalf("Score = %+v %v %v", card, scores, err)
	}
}

func TestEchoPreparesOneItemPerStringLine(t *testing.T) {
	t.Parallel()
	prep, err := kindtest.Echo{}.Prepare(context.Background(), kind.Spec{DatasetName: "d", Dataset: []byte("\"a\"\n\n\"b\"\n")})
	if err != nil || len(prep.Items) != 2 || string(prep.Items[1]) != `"b"` || !json.Valid(prep.Config) {
		t.Fatalf("Prepare = %+v, %v", prep, err)
	}
	if _, err := (kindtest.Echo{}).Prepare(context.Background(), kind.Spec{DatasetName: "d", Dataset: []byte("\"a\"\n{}\n")}); err == nil ||
		!strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a bad line: %v, want its number", err)
	}
}
