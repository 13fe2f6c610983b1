package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"crucible/internal/store"
)

// storeMetrics reports what the database holds, read when scraped, so every
// process sharing a database reports the same numbers: submissions by kind
// and state, and ledger transfers by kind and asset.
type storeMetrics struct {
	db                     *store.DB
	submissions, transfers *prometheus.Desc
}

func newStoreMetrics(db *store.DB) storeMetrics {
	return storeMetrics{db: db,
		submissions: prometheus.NewDesc("crucible_submissions",
			"Submissions by competition kind and state (queued, running, scored, failed, infra_failed).",
			[]string{"kind", "state"}, nil),
		transfers: prometheus.NewDesc("crucible_ledger_transfers_total",
			"Ledger transfers by transfer kind and asset.",
			[]string{"kind", "asset"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (m storeMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.submissions
	ch <- m.transfers
}

// Collect implements prometheus.Collector; each query is bounded by
// store.ScrapeTimeout, and a failed one is reported as the scrape's error.
func (m storeMetrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), store.ScrapeTimeout)
	defer cancel()
	for _, q := range []struct {
		desc  *prometheus.Desc
		typ   prometheus.ValueType
		count func(context.Context) ([]store.Count, error)
	}{
		{m.submissions, prometheus.GaugeValue, m.db.SubmissionStates},
		{m.transfers, prometheus.CounterValue, m.db.TransferCounts},
	} {
		counts, err := q.count(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(q.desc, err)
			continue
		}
		for _, c := range counts {
			ch <- prometheus.MustNewConstMetric(q.desc, q.typ, float64(c.N), c.Labels[0], c.Labels[1])
		}
	}
}

// serveMetrics serves GET /metrics on MetricsListen (when set) until the
// returned stop is called: a worker has no API, and its job, evaluation
// and model-error metrics count only its own work.
func (a *App) serveMetrics() (stop func(context.Context), err error) {
	if a.cfg.MetricsListen == "" {
		return func(context.Context) {}, nil
	}
	ln, err := net.Listen("tcp", a.cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", a.cfg.MetricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{}))
	t := a.cfg.Timeouts
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write, IdleTimeout: t.Idle,
		ErrorLog: slog.NewLogLogger(a.cfg.Logger.Handler(), slog.LevelWarn)}
	go func() { _ = srv.Serve(ln) }()
	a.cfg.Logger.Info("crucible worker metrics", "addr", ln.Addr().String())
	return func(ctx context.Context) { _ = srv.Shutdown(ctx) }, nil
}
