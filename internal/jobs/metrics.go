package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"crucible/internal/store"
)

// Metrics are the queue's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	items       *prometheus.CounterVec
	jobs        *prometheus.HistogramVec
	evaluations *prometheus.HistogramVec
	modelErrors *prometheus.CounterVec
}

// latencyBuckets span a 1 ms tick to a day-long evaluation.
var latencyBuckets = prometheus.ExponentialBuckets(0.001, 4, 13)

// NewMetrics declares the queue's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crucible_items_evaluated_total",
			Help: "Items evaluated by this process, by task kind and whether the answer was correct.",
		}, []string{"kind", "correct"}),
		jobs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crucible_job_duration_seconds",
			Help:    "Time this process spent working one queue job, by job kind and outcome (completed, snoozed, cancelled, errored).",
			Buckets: latencyBuckets,
		}, []string{"kind", "state"}),
		evaluations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crucible_evaluation_seconds",
			Help:    "Time from a submission's commitment to its final state, by competition kind and final state (scored, failed, infra_failed).",
			Buckets: latencyBuckets,
		}, []string{"kind", "state"}),
		modelErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crucible_model_errors_total",
			Help: "Evaluation runs stopped by the model or its infrastructure, by competition kind and class: " +
				"check (the submit check refused the model), permanent (fails the submission), infrastructure (retried).",
		}, []string{"kind", "class"}),
	}
	reg.MustRegister(m.items, m.jobs, m.evaluations, m.modelErrors)
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

func (m *Metrics) evaluationEnded(kind, state string, d time.Duration) {
	if m != nil {
		m.evaluations.WithLabelValues(kind, state).Observe(d.Seconds())
	}
}

func (m *Metrics) modelError(kind, class string) {
	if m != nil {
		m.modelErrors.WithLabelValues(kind, class).Inc()
	}
}

// jobTimer is the River middleware that times every job this process works.
type jobTimer struct {
	river.MiddlewareDefaults
	m *Metrics
}

// Work implements rivertype.WorkerMiddleware.
func (t jobTimer) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	start := time.Now()
	err := doInner(ctx)
	t.m.jobs.WithLabelValues(job.Kind, jobOutcome(err)).Observe(time.Since(start).Seconds())
	return err
}

// jobOutcome names what a job's Work result asks of River.
func jobOutcome(err error) string {
	var snooze *river.JobSnoozeError
	var cancel *river.JobCancelError
	switch {
	case err == nil:
		return "completed"
	case errors.As(err, &snooze):
		return "snoozed"
	case errors.As(err, &cancel):
		return "cancelled"
	default:
		return "errored"
	}
}

// middleware returns the River middleware that records m (none for nil).
func (m *Metrics) middleware() []rivertype.Middleware {
	if m == nil {
		return nil
	}
	return []rivertype.Middleware{&jobTimer{m: m}}
}

// queueDepth reports the queue's jobs by kind and state at scrape time.
type queueDepth struct {
	db   *store.DB
	desc *prometheus.Desc
}

// NewQueueDepth returns a collector of the jobs in db's queue by kind and
// state, read when scraped: available, scheduled, running and retryable
// jobs are the queue's depth; completed, cancelled and discarded ones stay
// until River prunes them.
func NewQueueDepth(db *store.DB) prometheus.Collector {
	return queueDepth{db: db, desc: prometheus.NewDesc("crucible_queue_jobs",
		"Jobs in the queue by kind and state (available, scheduled, running, retryable; finished ones until pruned).",
		[]string{"kind", "state"}, nil)}
}

// Describe implements prometheus.Collector.
func (q queueDepth) Describe(ch chan<- *prometheus.Desc) { ch <- q.desc }

// Collect implements prometheus.Collector. The query is bounded in time,
// so a slow database delays a scrape by at most store.ScrapeTimeout.
func (q queueDepth) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), store.ScrapeTimeout)
	defer cancel()
	counts, err := q.db.CountBy(ctx, `SELECT kind, state, COUNT(*) FROM river_job GROUP BY kind, state`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(q.desc, err)
		return
	}
	for _, c := range counts {
		ch <- prometheus.MustNewConstMetric(q.desc, prometheus.GaugeValue, float64(c.N), c.Labels[0], c.Labels[1])
	}
}
