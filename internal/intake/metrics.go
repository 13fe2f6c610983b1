package intake

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the intake's Prometheus metrics: how its group commit
// batches submissions. A nil *Metrics records nothing.
type Metrics struct {
	size    prometheus.Histogram
	seconds prometheus.Histogram
}

// NewMetrics declares the intake's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		size: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "crucible_intake_batch_submissions",
			Help: "Submissions (and pool entries) stored by one group-commit transaction of this process; " +
				"under load a batch holds what arrived while the last one committed.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1 … 256 (maxBatch)
		}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "crucible_intake_batch_seconds",
			Help:    "Time one group-commit transaction of this process took, from its start to its outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms … 4 s
		}),
	}
	reg.MustRegister(m.size, m.seconds)
	return m
}

func (m *Metrics) batch(n int, took time.Duration) {
	if m == nil {
		return
	}
	m.size.Observe(float64(n))
	m.seconds.Observe(took.Seconds())
}
