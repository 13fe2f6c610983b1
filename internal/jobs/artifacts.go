package jobs

import (
	"context"
	"errors"

	"crucible/internal/artifact"
	"crucible/internal/competition"
	"crucible/internal/modelhost"
)

// errNoModelHost is the infrastructure failure of an artifact submission
// on a worker that serves no artifacts.
var errNoModelHost = errors.New("this worker serves no artifact submissions: start it with --model-cache and --model-launcher")

// serve makes sub's artifact ready to evaluate through the worker's model
// host (modelhost.Host.Serve); the facts read on the first run are recorded
// on the submission, and later runs use the stored ones.
func (w *evaluateWorker) serve(ctx context.Context, c competition.Competition, sub competition.Submission) (modelhost.Lease, error) {
	if w.cfg.Models == nil {
		return modelhost.Lease{}, errNoModelHost
	}
	return w.cfg.Models.Serve(ctx, c, sub, func(f artifact.Facts) error {
		return w.cfg.DB.SetArtifactFacts(ctx, sub.ID, f.Parameters, f.Bytes)
	})
}
