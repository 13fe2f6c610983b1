package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/identity"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// crucibleBinary builds the real binary once per test run.
func crucibleBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "crucible-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "crucible")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe starts `crucible serve` as a separate process and waits for /healthz.
func startServe(t *testing.T, bin, database, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--database", database, "--listen", addr,
		"--slice", "1s", "--rescue-after", "4s", "--item-concurrency", "2", "--log-level", "warn", "--allow-endpoints", "127.0.0.0/8")
	startProcess(t, cmd)
	waitHealthy(t, addr)
	return cmd
}

func waitHealthy(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("crucible serve on %s did not become healthy", addr)
}

// TestKillDashNineMidEvaluationLosesNothing kills the server with SIGKILL in
// the middle of an evaluation, restarts it, and checks that the evaluation
// finishes with the leaderboard of an uninterrupted run and no duplicated item.
func TestKillDashNineMidEvaluationLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and waits for the job rescuer; skipped with -short")
	}
	bin := crucibleBinary(t)
	ds, err := mcq.Parse(strings.NewReader(string(app.SampleDataset)), "siqa-sample")
	if err != nil {
		t.Fatal(err)
	}
	h, err := mcqtest.New(mcqtest.Config{Policies: app.DemoPolicies, Key: ds, Delay: 15 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	models := httptest.NewServer(h)
	t.Cleanup(models.Close) // not defer: the parallel subtests run after this function returns

	// The uninterrupted reference: the same evaluation, run locally.
	want := map[string]competition.Card{}
	datasetPath := filepath.Join(t.TempDir(), "siqa.jsonl")
	if err := os.WriteFile(datasetPath, app.SampleDataset, 0o644); err != nil {
		t.Fatal(err)
	}
	policies := []string{"oracle", "random"}
	for _, p := range policies {
		rep, err := app.LocalEval(context.Background(), app.LocalEvalConfig{Kind: mcq.Name, DatasetPath: datasetPath,
			BaseURL: models.URL, Model: "baseline-" + p, Concurrency: 16})
		if err != nil {
			t.Fatal(err)
		}
		want["baseline-"+p] = rep.Card
	}

	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			addr := freeAddr(t)
			server := startServe(t, bin, d.URL, addr)
			key, _ := identity.NewKey()
			c, _ := client.New(client.Config{Server: "http://" + addr, Key: key})
			comp, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "mcq", Title: "crash", Dataset: string(app.SampleDataset)})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range policies {
				if _, err := c.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{BaseURL: models.URL + "/v1", Model: "baseline-" + p}); err != nil {
					t.Fatal(err)
				}
			}
			// Let it get properly under way, then kill -9.
			killedAt := 0
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && killedAt == 0; time.Sleep(50 * time.Millisecond) {
				subs, err := c.Submissions(ctx, comp.ID)
				if err != nil {
					t.Fatal(err)
				}
				done := 0
				for _, s := range subs {
					done += s.ItemsDone
				}
				if done >= 120 {
					if err := server.Process.Kill(); err != nil {
						t.Fatal(err)
					}
					_ = server.Wait()
					killedAt = done
				}
			}
			if killedAt == 0 || killedAt >= 2*len(ds.Items) {
				t.Fatalf("could not kill the server mid-evaluation (items done at kill: %d)", killedAt)
			}
			t.Logf("killed the server with %d of %d items done", killedAt, 2*len(ds.Items))

			startServe(t, bin, d.URL, addr)
			waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			subs, err := c.WaitScored(waitCtx, comp.ID, 200*time.Millisecond, nil)
			if err != nil {
				t.Fatalf("after restart the evaluation did not finish: %v", err)
			}
			for _, s := range subs {
				if s.State != competition.StateScored {
					t.Fatalf("%s ended %s (%s)", s.Name, s.State, s.Reason)
				}
				if *s.Card != want[s.Name] {
					t.Errorf("%s card after the crash %+v, uninterrupted %+v", s.Name, *s.Card, want[s.Name])
				}
			}
			db, err := store.Open(ctx, d.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var rows, distinct int
			if err := db.SQL().QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT submission_id || ':' || CAST(idx AS TEXT)) FROM item_results`).Scan(&rows, &distinct); err != nil {
				t.Fatal(err)
			}
			if rows != 2*len(ds.Items) || distinct != rows {
				t.Fatalf("item rows %d (distinct %d), want exactly %d", rows, distinct, 2*len(ds.Items))
			}
		})
	}
}

// TestWorkersShareThePostgresQueue runs an API-only server and two worker
// processes on one PostgreSQL database and checks that both workers evaluate.
func TestWorkersShareThePostgresQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	pg := storetest.Postgres(t)
	if pg == "" {
		t.Skip("needs PostgreSQL (set " + storetest.EnvPostgres + ")")
	}
	bin := crucibleBinary(t)
	ds, err := mcq.Parse(strings.NewReader(string(app.SampleDataset)), "siqa-sample")
	if err != nil {
		t.Fatal(err)
	}
	h, err := mcqtest.New(mcqtest.Config{Policies: app.DemoPolicies, Key: ds, Delay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	models := httptest.NewServer(h)
	t.Cleanup(models.Close)

	addr := freeAddr(t)
	// One key enters the four baselines: one more than the default entry limit.
	apiOnly := exec.Command(bin, "serve", "--no-work", "--database", pg, "--listen", addr, "--log-level", "warn", "--allow-endpoints", "127.0.0.0/8",
		"--max-entries-per-key", "4")
	startProcess(t, apiOnly)
	waitHealthy(t, addr)
	for i := 0; i < 2; i++ {
		startProcess(t, exec.Command(bin, "worker", "--database", pg, "--submissions", "1", "--item-concurrency", "2", "--log-level", "warn", "--allow-endpoints", "127.0.0.0/8"))
	}
	ctx := context.Background()
	key, _ := identity.NewKey()
	c, _ := client.New(client.Config{Server: "http://" + addr, Key: key})
	comp, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "mcq", Title: "shared", Dataset: string(app.SampleDataset)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range app.DemoPolicies {
		if _, err := c.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{BaseURL: models.URL, Model: "baseline-" + p}); err != nil {
			t.Fatal(err)
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	subs, err := c.WaitScored(waitCtx, comp.ID, 200*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		if s.State != competition.StateScored {
			t.Fatalf("%s ended %s: %s", s.Name, s.State, s.Reason)
		}
	}
	db, err := store.Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var workers int
	if err := db.SQL().QueryRowContext(ctx, `SELECT COUNT(DISTINCT w) FROM river_job, unnest(attempted_by) AS w`).Scan(&workers); err != nil {
		t.Fatal(err)
	}
	if workers != 2 {
		t.Fatalf("%d distinct workers ran jobs, want both of the 2", workers)
	}
}

func startProcess(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}
