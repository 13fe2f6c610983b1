package jobs

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the queue's Prometheus metrics.
type Metrics struct {
	items *prometheus.CounterVec
}

// NewMetrics declares the queue's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crucible_items_evaluated_total",
			Help: "Items evaluated by this process, by task kind and whether the answer was correct.",
		}, []string{"kind", "correct"}),
	}
	reg.MustRegister(m.items)
	return m
}

func (m *Metrics) itemEvaluated(kind string, correct bool) {
	if m == nil {
		return
	}
	c := "false"
	if correct {
		c = "true"
	}
	m.items.WithLabelValues(kind, c).Inc()
}
