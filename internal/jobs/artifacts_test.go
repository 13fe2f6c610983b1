package jobs

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/riverqueue/river"

	"crucible/internal/competition"
	"crucible/internal/store"
)

// TestEvaluateWorkerWithoutModelHostRetriesAnArtifact: a worker that
// serves no artifacts hands an artifact submission to the retries (another
// worker may serve it), saying why, and never plans it against an empty
// base URL.
func TestEvaluateWorkerWithoutModelHostRetriesAnArtifact(t *testing.T) {
	f := newWorkerFixture(t)
	ctx := context.Background()
	art := f.sub
	art.ID, art.Model, art.Digest = store.NewID("s"), competition.ModelSpec{}, strings.Repeat("ab", 32)
	art.Artifact = &competition.ArtifactSpec{Path: "/models/m", TreeDigest: art.Digest, Commitment: "c"}
	if err := f.db.InTx(ctx, func(tx *sql.Tx) error { return f.db.CreateSubmissionTx(ctx, tx, art, "") }); err != nil {
		t.Fatal(err)
	}
	res := f.work(t, fakePlanner{ev: fakeEval{n: items}}, slice, EvaluateArgs{CompetitionID: art.CompetitionID, SubmissionID: art.ID}, nil)
	if res.EventKind != river.EventKindJobCompleted {
		t.Fatalf("job %s, want completed (handed to a retry job)", res.EventKind)
	}
	s, err := f.db.GetSubmission(ctx, art.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != competition.StateQueued || !strings.Contains(s.Reason, "serves no artifact submissions") || f.checks != 0 || s.ItemsDone != 0 {
		t.Fatalf("submission %s (%q), %d checks, %d items; want queued for a retry with the reason, unplanned", s.State, s.Reason, f.checks, s.ItemsDone)
	}
	if retries := f.retryJobs(t); len(retries) != 1 || retries[0].SubmissionID != art.ID {
		t.Fatalf("retry jobs %+v, want one for %s", retries, art.ID)
	}
}
