package competition

import (
	"errors"
	"fmt"
)

// Event is what happened to a submission's evaluation; Next decides the
// state it leads to. The evaluate worker reports events and the store
// records the state Next returns, so the lifecycle is written once:
//
//	queued ──Start──> running ──Complete──> scored
//	  │  ^              │ ├──Progress / SliceExpired──> running
//	  │  └──InfraError──┘ └──Reject──> failed
//	  └──Reject──> failed         InfraExhausted ──> infra_failed
type Event string

// Events of an evaluation.
const (
	// EventStart: a worker begins (or resumes) evaluating the submission.
	EventStart Event = "start"
	// EventSliceExpired: a run used its time slice; progress is saved and a
	// fresh run continues.
	EventSliceExpired Event = "slice_expired"
	// EventProgress: a run evaluated the items it was given (a pool's
	// budgeted range) and items remain for later ones.
	EventProgress Event = "progress"
	// EventComplete: every item has a result and the card is computed.
	EventComplete Event = "complete"
	// EventReject: a deterministic failure (the submit check, a bad plan, a
	// permanent model error, an unscorable result): running again would
	// fail again.
	EventReject Event = "reject"
	// EventInfraError: the infrastructure (a model server, the judge, the
	// network) failed; the submission waits for a low-priority retry.
	EventInfraError Event = "infra_error"
	// EventInfraExhausted: the last retry failed too.
	EventInfraExhausted Event = "infra_exhausted"
)

// ErrFinalState is returned by Next for any event on a submission in a
// final state: a final state is never left.
var ErrFinalState = errors.New("submission is in a final state")

// Next is the state a submission in state from moves to on event ev, and
// the reason recorded with it (cause is the error behind a failure or a
// retry, "" otherwise). An event that cannot happen in from is an error.
func Next(from State, ev Event, cause string) (State, string, error) {
	if from.Final() {
		return from, "", fmt.Errorf("%w (%s): %s does not apply", ErrFinalState, from, ev)
	}
	if from != StateQueued && from != StateRunning {
		return from, "", fmt.Errorf("unknown submission state %q", from)
	}
	switch ev {
	case EventStart:
		return StateRunning, "", nil
	case EventReject:
		return StateFailed, cause, nil
	case EventInfraError:
		return StateQueued, "infrastructure failure, queued for a low-priority retry: " + cause, nil
	}
	if from != StateRunning { // the events below come from a run, which starts first
		return from, "", fmt.Errorf("submission is %s, not running: %s does not apply", from, ev)
	}
	switch ev {
	case EventSliceExpired, EventProgress:
		return StateRunning, "", nil
	case EventComplete:
		return StateScored, "", nil
	case EventInfraExhausted:
		return StateInfraFailed, cause, nil
	}
	return from, "", fmt.Errorf("unknown submission event %q", ev)
}
