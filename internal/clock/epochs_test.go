package clock

import (
	"testing"
	"time"
)

func TestEpochsCoverTimeWithoutGapsOrOverlaps(t *testing.T) {
	t.Parallel()
	e := Epochs{Length: 72 * time.Minute}
	for _, at := range []time.Time{
		time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 1, 1, 11, 59, 999, time.UTC),
		time.Unix(0, 0),
		time.Unix(-1, 0), // before 1970 rounds down, to epoch -1
		time.Unix(-72*60, 0),
	} {
		n := e.Of(at)
		start, end := e.Bounds(n)
		if at.Before(start) || !at.Before(end) || end.Sub(start) != e.Length {
			t.Errorf("%s is in epoch %d = [%s, %s), which does not contain it", at, n, start, end)
		}
		if s2, _ := e.Bounds(n + 1); !s2.Equal(end) {
			t.Errorf("epoch %d ends at %s but %d starts at %s", n, end, n+1, s2)
		}
	}
	if got := e.Of(time.Unix(-1, 0)); got != -1 {
		t.Errorf("the second before 1970 is in epoch %d, want -1", got)
	}
}
