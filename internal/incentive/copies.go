package incentive

import (
	"slices"
	"time"
)

// Output is what a submission committed and answered, for copy detection.
type Output struct {
	ID          string
	Digest      string
	CommittedAt time.Time
	// Responses are the submission's answers in item order.
	Responses []string
}

// Copies finds submissions that copy an earlier one: the same commit digest,
// or the same answer on every item. It maps each copy's id to the id of the
// earliest submission it copies. A copy earns nothing: time priority goes to
// whoever committed first.
func Copies(outs []Output) map[string]string {
	sorted := slices.Clone(outs)
	slices.SortStableFunc(sorted, func(a, b Output) int { return a.CommittedAt.Compare(b.CommittedAt) })
	copies := map[string]string{}
	for i, later := range sorted {
		for _, earlier := range sorted[:i] {
			if _, isCopy := copies[earlier.ID]; isCopy {
				continue // point at originals only
			}
			if later.Digest != "" && later.Digest == earlier.Digest || sameAnswers(later.Responses, earlier.Responses) {
				copies[later.ID] = earlier.ID
				break
			}
		}
	}
	return copies
}

func sameAnswers(a, b []string) bool {
	return len(a) > 0 && slices.Equal(a, b)
}
