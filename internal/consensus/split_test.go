package consensus

import "testing"

func TestSplitUnitsPaysExactlyTheTotalToTheLargestRemainders(t *testing.T) {
	tests := []struct {
		name   string
		total  int64
		quotas []float64
		want   []int64
	}{
		{"thirds give the spare unit to the first", 100, []float64{1, 1, 1}, []int64{34, 33, 33}},
		{"the largest remainder wins the spare unit", 10, []float64{0.26, 0.26, 0.48}, []int64{3, 2, 5}},
		{"zero quotas get nothing", 7, []float64{0, 1, 0}, []int64{0, 7, 0}},
		{"no positive quota pays nothing", 7, []float64{0, 0}, []int64{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitUnits(tt.total, tt.quotas)
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("splitUnits(%d, %v) = %v, want %v", tt.total, tt.quotas, got, tt.want)
				}
			}
		})
	}
}
