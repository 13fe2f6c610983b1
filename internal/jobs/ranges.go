package jobs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/riverqueue/river"

	"crucible/internal/store"
)

// EnqueueItems schedules the evaluation of the given items of a
// submission of competition competitionID (a pool tick's budgeted range):
// the evaluate worker runs it like any other evaluation, with the submit
// check before the first one and infrastructure retries on the retries queue.
func (q *Queue) EnqueueItems(ctx context.Context, competitionID, submissionID string, items []int) error {
	if len(items) == 0 {
		return nil
	}
	args := EvaluateArgs{CompetitionID: competitionID, SubmissionID: submissionID, Items: items}
	// Unique among unfinished jobs only: a later tick may need the same
	// range again (its items were lost with a job that gave up).
	opts := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: unfinished}}
	if _, err := q.client.Insert(ctx, args, opts); err != nil {
		return fmt.Errorf("enqueue evaluation of %d items of %s: %w", len(items), submissionID, err)
	}
	return nil
}

// InFlight returns, by submission, how many items the unfinished
// evaluation jobs of competition competitionID's ranges were given (a
// pool tick counts them as spent, and settles only once none is left).
func (q *Queue) InFlight(ctx context.Context, competitionID string) (map[string]int, error) {
	db := q.cfg.DB
	query := `SELECT json(args) FROM river_job WHERE kind = ? AND state NOT IN ('completed', 'cancelled', 'discarded')
		AND json_extract(args, '$.competition_id') = ?`
	if db.Dialect() == store.Postgres {
		query = `SELECT args::text FROM river_job WHERE kind = $1 AND state NOT IN ('completed', 'cancelled', 'discarded')
			AND args->>'competition_id' = $2`
	}
	rows, err := db.SQL().QueryContext(ctx, query, EvaluateArgs{}.Kind(), competitionID)
	if err != nil {
		return nil, fmt.Errorf("evaluations in flight of %s: %w", competitionID, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var args EvaluateArgs
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			return nil, fmt.Errorf("evaluation job of %s: %w", competitionID, err)
		}
		if args.Epoch == nil { // fresh epoch evaluations are no pool's
			out[args.SubmissionID] += len(args.Items)
		}
	}
	return out, rows.Err()
}
