package storetest

import (
	"context"
	"fmt"
	"time"

	"crucible/internal/competition"
	"crucible/internal/store"
)

// SetState brings a queued submission to state through the lifecycle's
// events (competition.Next), as the evaluate worker would: running by
// starting, scored by starting and completing with card, failed by a
// rejection with reason, infra_failed by starting and exhausting retries.
// Fixtures use it; it returns whether the submission reached state.
func SetState(ctx context.Context, db *store.DB, id string, state competition.State, reason string, card *competition.Card, at time.Time) (bool, error) {
	var events []competition.Event
	switch state {
	case competition.StateRunning:
		events = []competition.Event{competition.EventStart}
	case competition.StateScored:
		events = []competition.Event{competition.EventStart, competition.EventComplete}
	case competition.StateFailed:
		events = []competition.Event{competition.EventReject}
	case competition.StateInfraFailed:
		events = []competition.Event{competition.EventStart, competition.EventInfraExhausted}
	default:
		return false, fmt.Errorf("no lifecycle path to %q", state)
	}
	var got competition.State
	for _, ev := range events {
		var err error
		if got, err = db.AdvanceSubmission(ctx, id, ev, reason, card, at); err != nil {
			return false, err
		}
	}
	return got == state, nil
}
