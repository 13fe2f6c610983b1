package competition

import (
	"errors"
	"testing"
)

func TestNextFollowsTheLifecycle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from       State
		ev         Event
		want       State
		wantReason string
		wantErr    bool
	}{
		{from: StateQueued, ev: EventStart, want: StateRunning},
		{from: StateRunning, ev: EventStart, want: StateRunning},
		{from: StateRunning, ev: EventSliceExpired, want: StateRunning},
		{from: StateRunning, ev: EventProgress, want: StateRunning},
		{from: StateRunning, ev: EventComplete, want: StateScored},
		{from: StateQueued, ev: EventReject, want: StateFailed, wantReason: "boom"},
		{from: StateRunning, ev: EventReject, want: StateFailed, wantReason: "boom"},
		{from: StateRunning, ev: EventInfraError, want: StateQueued, wantReason: "infrastructure failure, queued for a low-priority retry: boom"},
		{from: StateQueued, ev: EventInfraError, want: StateQueued, wantReason: "infrastructure failure, queued for a low-priority retry: boom"},
		{from: StateRunning, ev: EventInfraExhausted, want: StateInfraFailed, wantReason: "boom"},
		// A run's outcome needs a run: a queued submission cannot complete.
		{from: StateQueued, ev: EventComplete, wantErr: true},
		{from: StateQueued, ev: EventSliceExpired, wantErr: true},
		{from: StateQueued, ev: EventInfraExhausted, wantErr: true},
		{from: StateRunning, ev: "teleport", wantErr: true},
		{from: "limbo", ev: EventStart, wantErr: true},
	}
	for _, tt := range tests {
		got, reason, err := Next(tt.from, tt.ev, "boom")
		if (err != nil) != tt.wantErr {
			t.Errorf("Next(%s, %s): err %v, want error %v", tt.from, tt.ev, err, tt.wantErr)
			continue
		}
		if tt.wantErr {
			if got != tt.from {
				t.Errorf("Next(%s, %s) failed but moved to %s", tt.from, tt.ev, got)
			}
			continue
		}
		if got != tt.want || reason != tt.wantReason {
			t.Errorf("Next(%s, %s) = %s %q, want %s %q", tt.from, tt.ev, got, reason, tt.want, tt.wantReason)
		}
	}
}

func TestNextNeverLeavesAFinalState(t *testing.T) {
	t.Parallel()
	events := []Event{EventStart, EventSliceExpired, EventProgress, EventComplete, EventReject, EventInfraError, EventInfraExhausted}
	for _, from := range []State{StateScored, StateFailed, StateInfraFailed} {
		for _, ev := range events {
			got, _, err := Next(from, ev, "x")
			if !errors.Is(err, ErrFinalState) || got != from {
				t.Errorf("Next(%s, %s) = %s, %v; want %s and ErrFinalState", from, ev, got, err, from)
			}
		}
	}
}
