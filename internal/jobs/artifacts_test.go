package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"crucible/internal/artifact"
	"crucible/internal/competition"
	"crucible/internal/modelhost"
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

// TestEvaluateWorkerFreshEpochCancelsARefusedArtifact: an epoch's
// evaluation of an artifact whose source no longer gives the committed
// tree (a repository the submitter rewrote after scoring) is cancelled,
// not retried: every retry would fetch the submitter's wrong tree again.
func TestEvaluateWorkerFreshEpochCancelsARefusedArtifact(t *testing.T) {
	f := newWorkerFixture(t)
	ctx := context.Background()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "config.json"), []byte(`{"rewritten":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cache, err := artifact.OpenCache(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cache.Close() })
	f.models = &modelhost.Host{Cache: cache, Fetcher: artifact.Fetcher{Limits: artifact.DefaultLimits()}}
	art := f.sub
	art.ID, art.Model, art.Digest = store.NewID("s"), competition.ModelSpec{}, strings.Repeat("ab", 32)
	art.Artifact = &competition.ArtifactSpec{Path: src, TreeDigest: art.Digest, Commitment: "c"}
	if err := f.db.InTx(ctx, func(tx *sql.Tx) error { return f.db.CreateSubmissionTx(ctx, tx, art, "") }); err != nil {
		t.Fatal(err)
	}
	n := int64(1)
	end := time.Now().UTC().Add(time.Hour)
	if _, err := f.db.PutRoleplayEpoch(ctx, store.RoleplayEpoch{CompetitionID: art.CompetitionID, Epoch: n, Seed: n, SeedSHA256: "x",
		Items: []json.RawMessage{json.RawMessage(`{}`)}, ItemsDigest: "d", Start: end.Add(-2 * time.Hour), End: end}); err != nil {
		t.Fatal(err)
	}
	res := f.work(t, fakePlanner{ev: fakeEval{n: 1}}, slice, EvaluateArgs{CompetitionID: art.CompetitionID, SubmissionID: art.ID, Epoch: &n}, nil)
	if res.EventKind != river.EventKindJobCancelled {
		t.Fatalf("epoch job %s for an artifact that is not the committed tree, want cancelled", res.EventKind)
	}
	if fresh, err := f.db.FreshEvals(ctx, art.CompetitionID, n); err != nil || len(fresh) != 0 {
		t.Fatalf("fresh evaluations %+v (%v), want none", fresh, err)
	}
}
