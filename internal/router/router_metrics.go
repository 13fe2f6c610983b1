package router

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// routerMetrics are the router's Prometheus metrics. Per-worker counters
// live in atomics on each worker and are read by a collector at scrape
// time, so the request path pays one atomic add per counter and one
// histogram observation.
type routerMetrics struct {
	latency    *prometheus.HistogramVec
	rejections *prometheus.CounterVec
	r          *Router

	inFlight, requests, errors, healthy, maxConc *prometheus.Desc
}

func newRouterMetrics(reg prometheus.Registerer, r *Router) (*routerMetrics, error) {
	m := &routerMetrics{
		r: r,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crucible_router_worker_request_duration_seconds",
			Help:    "Time from sending a request to a worker until its response body has been relayed, by worker.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 19), // 0.5ms .. ~131s
		}, []string{"worker"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crucible_router_rejected_total",
			Help: "Requests the router answered itself without a worker's response, by error code (model_not_found, workers_busy, no_healthy_worker, worker_unreachable, invalid_request, ...).",
		}, []string{"code"}),
		inFlight: prometheus.NewDesc("crucible_router_worker_in_flight",
			"Requests currently sent to a worker and not yet fully relayed.", []string{"worker"}, nil),
		requests: prometheus.NewDesc("crucible_router_worker_requests_total",
			"Responses relayed from a worker, whatever their status.", []string{"worker"}, nil),
		errors: prometheus.NewDesc("crucible_router_worker_errors_total",
			"Failed requests to a worker: connection failures, 5xx responses and bodies that broke off.", []string{"worker"}, nil),
		healthy: prometheus.NewDesc("crucible_router_worker_healthy",
			"1 if the worker is admitted (passing health checks), 0 if ejected.", []string{"worker"}, nil),
		maxConc: prometheus.NewDesc("crucible_router_worker_max_concurrency",
			"The worker's configured max concurrency (0 means no cap).", []string{"worker"}, nil),
	}
	for _, c := range []prometheus.Collector{m.latency, m.rejections, m} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("router: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *routerMetrics) rejected(code string) prometheus.Counter {
	return m.rejections.WithLabelValues(code)
}

// Describe implements prometheus.Collector.
func (m *routerMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.inFlight
	ch <- m.requests
	ch <- m.errors
	ch <- m.healthy
	ch <- m.maxConc
}

// Collect implements prometheus.Collector.
func (m *routerMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, w := range m.r.table.Load().all {
		u := w.spec.URL
		healthy := 0.0
		if w.healthy.Load() {
			healthy = 1
		}
		ch <- prometheus.MustNewConstMetric(m.inFlight, prometheus.GaugeValue, float64(w.inflight.Load()), u)
		ch <- prometheus.MustNewConstMetric(m.requests, prometheus.CounterValue, float64(w.served.Load()), u)
		ch <- prometheus.MustNewConstMetric(m.errors, prometheus.CounterValue, float64(w.errs.Load()), u)
		ch <- prometheus.MustNewConstMetric(m.healthy, prometheus.GaugeValue, healthy, u)
		ch <- prometheus.MustNewConstMetric(m.maxConc, prometheus.GaugeValue, float64(w.max), u)
	}
}
