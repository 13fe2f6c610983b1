package intake_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"crucible/internal/artifact"
	"crucible/internal/competition"
	"crucible/internal/intake"
	"crucible/internal/kind"
	"crucible/internal/kind/kindtest"
)

// artifacts is a kind whose competitions take artifacts (as a task
// competition created with submissions "artifacts" does).
type artifacts struct{ kindtest.Echo }

func (artifacts) Name() string                               { return "artifacts" }
func (artifacts) EntryOf(competition.Competition) kind.Entry { return kind.EntryArtifact }

const tree = "4c2b33c5e8b0a0b3f4b3fd3b9c2f0d1e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d"

func TestSubmitArtifact(t *testing.T) {
	eachWith(t, []kind.Kind{kindtest.Echo{}, artifacts{}}, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		c := f.create(t, "artifacts")
		first, err := f.svc.Submit(ctx, intake.Entry{CompetitionID: c.ID, Submitter: "ed25519:alice", Limit: 2,
			Artifact: &intake.ArtifactEntry{Path: "/models/a", Digest: strings.ToUpper(tree)}})
		if err != nil {
			t.Fatal(err)
		}
		if first.Digest != tree || first.Artifact == nil || first.Artifact.TreeDigest != tree || first.Artifact.Path != "/models/a" {
			t.Fatalf("first = %+v, want digest %s and the artifact", first, tree)
		}
		if want := artifact.Commitment(tree, "ed25519:alice", first.CommittedAt); first.Artifact.Commitment != want {
			t.Errorf("commitment %s, want %s (tree, key, commit time)", first.Artifact.Commitment, want)
		}
		// The same tree from another key is entered (a copy the leaderboard
		// marks), with its own commitment.
		later, err := f.svc.Submit(ctx, intake.Entry{CompetitionID: c.ID, Submitter: "ed25519:carol", Limit: 2,
			Artifact: &intake.ArtifactEntry{URL: "file:///models/a.tar.gz", Digest: tree}})
		if err != nil {
			t.Fatalf("same tree from another key: %v", err)
		}
		if later.Digest != first.Digest || later.Artifact.Commitment == first.Artifact.Commitment {
			t.Errorf("later digest %s commitment %s; want the tree's digest and a commitment of its own", later.Digest, later.Artifact.Commitment)
		}
		stored, err := f.db.GetSubmission(ctx, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Artifact == nil || *stored.Artifact != *first.Artifact {
			t.Errorf("stored artifact %+v, want %+v", stored.Artifact, first.Artifact)
		}
		if len(f.q.ids) != 2 {
			t.Errorf("enqueued %v, want both entries", f.q.ids)
		}

		echo := f.create(t, competition.Kind(kindtest.Echo{}.Name()))
		for _, tc := range []struct {
			entry intake.Entry
			want  string
		}{
			{intake.Entry{CompetitionID: c.ID, Artifact: &intake.ArtifactEntry{Path: "/m", URL: "file:///m.tgz", Digest: tree}}, "exactly one source"},
			{intake.Entry{CompetitionID: c.ID, Artifact: &intake.ArtifactEntry{Repo: "org/m", Digest: tree}}, "revision is required"},
			{intake.Entry{CompetitionID: c.ID, Artifact: &intake.ArtifactEntry{Path: "models/a", Digest: tree}}, "must be absolute"},
			{intake.Entry{CompetitionID: c.ID, Artifact: &intake.ArtifactEntry{URL: "https://x/m.tgz", Digest: tree}}, "only file://"},
			{intake.Entry{CompetitionID: c.ID, Artifact: &intake.ArtifactEntry{Path: "/m", Digest: "abc"}}, "not a sha256"},
			{intake.Entry{CompetitionID: c.ID, Artifact: &intake.ArtifactEntry{Path: "/m", Digest: tree}, BaseURL: "http://127.0.0.1:9/v1"}, "no base_url"},
			{intake.Entry{CompetitionID: c.ID}, "artifact is required"},
			{intake.Entry{CompetitionID: echo.ID, Artifact: &intake.ArtifactEntry{Path: "/m", Digest: tree}}, "takes no artifacts"},
		} {
			tc.entry.Submitter = "ed25519:bob"
			_, err := f.svc.Submit(ctx, tc.entry)
			if !errors.Is(err, intake.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Submit(%+v) = %v, want ErrInvalid with %q", tc.entry, err, tc.want)
			}
		}
	})
}
