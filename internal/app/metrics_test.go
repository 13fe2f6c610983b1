package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/consensus"
	"crucible/internal/identity"
	"crucible/internal/store/storetest"
)

// TestMetricsShowAnEvaluatedSubmission: after one scored and one refused
// submission and one deposit, /metrics reports them — submissions by kind
// and state, the intake's batches, the evaluation latency, the refused
// model's error, the queue's jobs and the ledger transfer — and the registry passes the Prometheus
// linter, on each database.
func TestMetricsShowAnEvaluatedSubmission(t *testing.T) {
	models := startModels(t, 0)
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			operator, _ := identity.NewKey()
			a, url := startApp(t, app.Config{Database: d.URL, MaxAttempts: 1, AllowEndpoints: loopback,
				Consensus: consensus.Config{Admins: []string{operator.ID()}}})
			key, _ := identity.NewKey()
			c, _ := client.New(client.Config{Server: url, Key: key})
			comp, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "mcq", Title: "SIQA", Dataset: string(app.SampleDataset)})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []apiv1.CreateSubmissionRequest{
				{Name: "oracle", BaseURL: models + "/v1", Model: "baseline-oracle"},
				{Name: "wrong-name", BaseURL: models + "/v1", Model: "no-such-model"},
			} {
				if _, err := c.Submit(ctx, comp.ID, s); err != nil {
					t.Fatal(err)
				}
			}
			waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if _, err := c.WaitScored(waitCtx, comp.ID, 100*time.Millisecond, nil); err != nil {
				t.Fatal(err)
			}
			op, _ := client.New(client.Config{Server: url, Key: operator})
			if _, err := op.Deposit(ctx, apiv1.DepositRequest{To: key.ID(), Amount: 5, Asset: "USDC", IdempotencyKey: "m-1"}); err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get(url + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			text := string(body)
			for _, want := range []string{
				`crucible_submissions{kind="mcq",state="scored"} 1`,
				`crucible_submissions{kind="mcq",state="failed"} 1`,
				`crucible_evaluation_seconds_count{kind="mcq",state="scored"} 1`,
				`crucible_evaluation_seconds_count{kind="mcq",state="failed"} 1`,
				`crucible_model_errors_total{class="check",kind="mcq"} 1`,
				`crucible_items_evaluated_total{correct="true",kind="mcq"} 300`,
				`crucible_job_duration_seconds_count{kind="evaluate_submission",state="completed"}`,
				`crucible_job_duration_seconds_count{kind="evaluate_submission",state="cancelled"} 1`,
				`crucible_ledger_transfers_total{asset="USDC",kind="deposit"} 1`,
				// One after the other, each submission is its own batch.
				`crucible_intake_batch_submissions_count 2`,
				`crucible_intake_batch_submissions_sum 2`,
				`crucible_intake_batch_seconds_count 2`,
			} {
				if !strings.Contains(text, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
			// River records a job's end asynchronously: its state may still
			// read running, but both evaluation jobs are in the queue's table.
			jobs := 0.0
			for _, line := range strings.Split(text, "\n") {
				if rest, ok := strings.CutPrefix(line, `crucible_queue_jobs{kind="evaluate_submission",`); ok {
					_, v, _ := strings.Cut(rest, "} ")
					n, err := strconv.ParseFloat(v, 64)
					if err != nil {
						t.Fatalf("queue depth line %q: %v", line, err)
					}
					jobs += n
				}
			}
			if jobs != 2 {
				t.Errorf("the queue depth counts %v evaluation jobs, want 2", jobs)
			}
			if t.Failed() {
				t.Logf("/metrics:\n%s", text)
			}
			dashboardMetricsExist(t, text)
			problems, err := testutil.CollectAndLint(a.Registry)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("lint: %s: %s", p.Metric, p.Text)
			}
		})
	}
}

// dashboardMetricsExist checks that every crucible metric the shipped
// Grafana dashboard queries is one the server exports (its # TYPE line is
// in text), so the dashboard cannot drift from the metrics.
func dashboardMetricsExist(t *testing.T, text string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "grafana", "crucible-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	name := regexp.MustCompile(`crucible_[a-z_]+`)
	seen := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					m = strings.TrimSuffix(m, suffix)
				}
				seen++
				if !strings.Contains(text, "# TYPE "+m+" ") {
					t.Errorf("dashboard panel %q queries %s, which /metrics does not export", p.Title, m)
				}
			}
		}
	}
	if seen == 0 {
		t.Error("the dashboard queries no crucible metric")
	}
}

// TestWorkerServesMetrics: a worker (Work, no API) with MetricsListen
// serves its registry, whose queue depth shows the periodic jobs it
// enqueues at start, and stops serving when it stops.
func TestWorkerServesMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, app.Config{Database: filepath.Join(t.TempDir(), "w.db"), MetricsListen: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	done := make(chan error, 1)
	go func() { done <- a.Work(ctx) }()
	var text string
	for deadline := time.Now().Add(time.Minute); !strings.Contains(text, `crucible_queue_jobs{kind="tick_pools"`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the worker's /metrics never showed its queue:\n%s", text)
		}
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			text = string(body)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("the worker still serves /metrics after it stopped")
	}
}
