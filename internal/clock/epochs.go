package clock

import "time"

// Epochs numbers time in epochs of a fixed length counted from the Unix
// epoch: epoch n covers [n·Length, (n+1)·Length). Model competitions,
// validator consensus and fresh roleplay items all use it, so an epoch
// number means the same interval everywhere.
type Epochs struct {
	// Length is the epoch length, in whole seconds (the remainder is
	// dropped); it must be at least one second.
	Length time.Duration
}

func (e Epochs) seconds() int64 { return max(int64(e.Length/time.Second), 1) }

// Of returns the number of the epoch that contains t (rounding down, also
// before 1970).
func (e Epochs) Of(t time.Time) int64 {
	a, l := t.Unix(), e.seconds()
	n := a / l
	if a%l != 0 && a < 0 {
		n--
	}
	return n
}

// Bounds returns the start and end of epoch n (the end is the next
// epoch's start).
func (e Epochs) Bounds(n int64) (start, end time.Time) {
	l := e.seconds()
	return time.Unix(n*l, 0).UTC(), time.Unix((n+1)*l, 0).UTC()
}
