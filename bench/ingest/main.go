// Command ingest measures POST /api/v1/competitions/{id}/submissions, signed,
// against its reference: the same submission rows and a plain River
// InsertManyTx of the same evaluation jobs, written straight to the same
// database, -batch rows to a transaction (what "the database is the limit"
// would allow). It opens a hub without workers (only ingest is measured) on
// a fresh SQLite file, or with -postgres on a fresh PostgreSQL database it
// creates on that server and drops at the end; creates one multiple-choice
// competition that takes model endpoints (an endpoint entry is checked for
// shape at intake and never contacted there, so no network is used); makes
// then -concurrency client goroutines post distinct
// signed submissions over HTTP for -duration (each client makes a fresh key
// every -per-key submissions, as many competitors would, since the quotas
// hold one key to a few entries; all are signed before the phase, as
// competitors sign on their own machines), and the reference runs as
// many goroutines for -duration. It prints both rates, the hub's p50/p99,
// its group commit's batches (from its metrics) and the ratio (target: >= 2,000 submissions/s and >= 0.5 × reference), and
// checks that every accepted submission has exactly one row and one job.
//
//	go run ./bench/ingest [-concurrency 32] [-duration 5s] [-per-key 3] [-batch 32] [-max-rate 12000]
//	go run ./bench/ingest -postgres 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
//
// Quotas are those of `crucible serve` by default (200 submissions a day,
// 20 open, 3 entries per key in a competition), so their checks are part of
// what is measured.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"crucible/bench/internal/benchdb"
	"crucible/bench/internal/loadgen"
	"crucible/internal/api"
	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/competition"
	"crucible/internal/eval/mcq"
	"crucible/internal/identity"
	"crucible/internal/jobs"
	"crucible/internal/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

type options struct {
	postgres    string
	concurrency int
	duration    time.Duration
	perKey      int
	batch       int
	cpuProfile  string
	maxRate     int
	pgStats     bool
}

func run() error {
	var o options
	flag.StringVar(&o.postgres, "postgres", "", "PostgreSQL server URL: run on a fresh database created there (default: a fresh SQLite file)")
	flag.IntVar(&o.concurrency, "concurrency", 32, "client goroutines (and reference writers)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each measured phase")
	flag.IntVar(&o.perKey, "per-key", competition.DefaultMaxEntriesPerKey, "submissions each signing key makes (at most the per-key entry limit, 3)")
	flag.IntVar(&o.batch, "batch", 32, "reference: submissions (rows and jobs) per transaction")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the hub phase (hub and clients) to this file")
	flag.IntVar(&o.maxRate, "max-rate", 12000, "submissions/s the pre-signed requests suffice for over -duration")
	flag.BoolVar(&o.pgStats, "pgstats", false, "with -postgres: also report the database's commits, inserted rows and backend CPU a submission (waits 11 s for its statistics)")
	flag.Parse()
	if o.concurrency < 1 || o.perKey < 1 || o.perKey > competition.DefaultMaxEntriesPerKey || o.batch < 1 || o.duration <= 0 || o.maxRate < 1 {
		return errors.New("-concurrency, -batch, -duration and -max-rate must be positive, -per-key 1..3")
	}
	if o.duration > identity.DefaultWindow/2 {
		// Requests are signed before the phase: their timestamps must
		// stay inside the hub's window to its end.
		return fmt.Errorf("-duration must be at most %s", identity.DefaultWindow/2)
	}
	ctx := context.Background()
	database, drop, err := benchdb.Fresh(ctx, o.postgres, "ingest")
	if err != nil {
		return err
	}
	defer drop()
	a, err := app.Open(ctx, app.Config{Database: database, Listen: "127.0.0.1:0", NoWork: true,
		Quotas: api.Quotas{SubmissionsPerDay: app.DefaultSubmissionsPerDay, OpenSubmissions: app.DefaultOpenSubmissions,
			EntriesPerKey: competition.DefaultMaxEntriesPerKey},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer a.Close()
	c, err := createCompetition(ctx, a.DB)
	if err != nil {
		return err
	}
	hubID, err := a.DB.HubID(ctx)
	if err != nil {
		return err
	}
	ln, err := a.Listen()
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = a.Serve(sctx, ln) }()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency}}
	path := "/api/v1/competitions/" + url.PathEscape(c.ID) + "/submissions"
	signed, err := presign(hubID, path, o)
	if err != nil {
		return err
	}
	post := func(g, n int) error {
		if n >= len(signed[g]) {
			return fmt.Errorf("client %d used its %d pre-signed submissions: raise -max-rate", g, n)
		}
		body, headers := signed[g][n].body, signed[g][n].headers
		req, err := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(got))
		}
		return nil
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	var pg *pgStats
	if o.pgStats && a.DB.Dialect() == store.Postgres {
		if pg, err = startPGStats(ctx, a.DB.SQL()); err != nil {
			return err
		}
	}
	cpu0 := cpuTime()
	hub, err := load(o.concurrency, o.duration, post)
	hubCPU := cpuTime() - cpu0
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	batches, err := batchLine(a, o.duration)
	if err != nil {
		return err
	}
	var pgLine string
	if pg != nil {
		if pgLine, err = pg.report(ctx, hub.Done); err != nil {
			return err
		}
	}
	if err := exactlyOnce(ctx, a.DB, c.ID, hub.Done); err != nil {
		return err
	}
	ref, err := reference(ctx, a.DB, c.ID, o)
	if err != nil {
		return err
	}
	fmt.Printf("database %s, GOMAXPROCS %d, concurrency %d, %s per phase\n", a.DB.Dialect(), runtime.GOMAXPROCS(0), o.concurrency, o.duration)
	fmt.Printf("hub        %8.0f submissions/s  p50 %8s  p99 %8s  process CPU %s a submission\n", hub.Rate, hub.P50, hub.P99,
		(hubCPU / time.Duration(hub.Done)).Round(time.Microsecond))
	fmt.Println(batches)
	fmt.Printf("reference  %8.0f submissions/s  (rows + River InsertManyTx, %d a transaction)\n", ref, o.batch)
	fmt.Printf("ratio hub/reference %.3f (target >= 0.5); hub %.0f/s (target >= 2000)\n", hub.Rate/ref, hub.Rate)
	if pgLine != "" {
		fmt.Println(pgLine)
	}
	return nil
}

// batchLine reports the hub's group commit in the phase from its
// metrics (intake.Metrics): how many submissions a transaction stored,
// how long one took, and how many were committing on average.
func batchLine(a *app.App, phase time.Duration) (string, error) {
	families, err := a.Registry.Gather()
	if err != nil {
		return "", err
	}
	var size, seconds *dto.Histogram
	for _, f := range families {
		switch f.GetName() {
		case "crucible_intake_batch_submissions":
			size = f.GetMetric()[0].GetHistogram()
		case "crucible_intake_batch_seconds":
			seconds = f.GetMetric()[0].GetHistogram()
		}
	}
	if size == nil || seconds == nil || size.GetSampleCount() == 0 {
		return "", errors.New("the hub reported no intake batches")
	}
	n := float64(size.GetSampleCount())
	return fmt.Sprintf("batches    %8.0f  %.1f submissions a batch, %.1f ms a batch, %.2f committing at once on average",
		n, size.GetSampleSum()/n, 1000*seconds.GetSampleSum()/n, seconds.GetSampleSum()/phase.Seconds()), nil
}

// request is one submission signed ahead of the phase.
type request struct {
	body    []byte
	headers map[string]string
}

// presign signs, before the phase, the distinct submissions each client
// posts during it (enough for -max-rate over -duration), each client
// taking a fresh key every -per-key submissions. Competitors sign on their
// own machines: signing in the phase would charge the hub's 2 cores with
// the clients' ed25519 work, which the hub never does. Each request has
// its own nonce and a timestamp of now, inside the hub's window for the
// whole phase; the hub verifies every signature and burns every nonce
// in the phase as usual.
func presign(hubID, path string, o options) ([][]request, error) {
	perClient := int(o.duration.Seconds()*float64(o.maxRate))/o.concurrency + 1
	signed := make([][]request, o.concurrency)
	errs := make([]error, o.concurrency)
	var wg sync.WaitGroup
	for g := range signed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var key *identity.Key
			for n := range perClient {
				if n%o.perKey == 0 {
					if key, errs[g] = identity.NewKey(); errs[g] != nil {
						return
					}
				}
				body, _ := json.Marshal(apiv1.CreateSubmissionRequest{BaseURL: "http://127.0.0.1:9/v1", Model: fmt.Sprintf("model-%d-%d", g, n)})
				headers, err := key.Sign(hubID, http.MethodPost, path, time.Now().Unix(), body)
				if err != nil {
					errs[g] = err
					return
				}
				signed[g] = append(signed[g], request{body, headers})
			}
		}()
	}
	wg.Wait()
	return signed, errors.Join(errs...)
}

// createCompetition stores a small multiple-choice competition that takes
// model endpoints.
func createCompetition(ctx context.Context, db *store.DB) (competition.Competition, error) {
	items := make([]json.RawMessage, 10)
	for i := range items {
		items[i] = json.RawMessage(fmt.Sprintf(`{"question":"q%d","choices":["a","b"],"answer":0}`, i))
	}
	c := competition.Competition{ID: store.NewID("c"), Kind: mcq.Name, Title: "bench", Config: json.RawMessage(`{"mode":"generative"}`),
		DatasetName: "bench", DatasetDigest: "bench", Items: len(items), CreatedBy: "bench", CreatedAt: time.Now()}
	return c, db.CreateCompetition(ctx, c, items)
}

// exactlyOnce checks that the competition has accepted submissions and as
// many evaluation jobs, one per submission.
func exactlyOnce(ctx context.Context, db *store.DB, competitionID string, accepted int) error {
	var subs, jobRows, distinct int
	q := db.SQL()
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM submissions WHERE competition_id = '`+competitionID+`'`).Scan(&subs); err != nil {
		return err
	}
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job WHERE kind = '`+jobs.EvaluateArgs{}.Kind()+`'`).Scan(&jobRows); err != nil {
		return err
	}
	var extract string
	if db.Dialect() == store.Postgres {
		extract = `args->>'submission_id'`
	} else {
		extract = `json_extract(args, '$.submission_id')`
	}
	if err := q.QueryRowContext(ctx, `SELECT COUNT(DISTINCT `+extract+`) FROM river_job WHERE kind = '`+jobs.EvaluateArgs{}.Kind()+`'`).Scan(&distinct); err != nil {
		return err
	}
	if subs != accepted || jobRows != accepted || distinct != accepted {
		return fmt.Errorf("exactly-once broken: %d accepted, %d submission rows, %d jobs for %d submissions", accepted, subs, jobRows, distinct)
	}
	return nil
}

// reference writes the same rows and jobs as the hub, o.batch per
// transaction, from o.concurrency goroutines for o.duration, and returns
// the submissions per second.
func reference(ctx context.Context, db *store.DB, competitionID string, o options) (float64, error) {
	var driver riverdriver.Driver[*sql.Tx]
	if db.Dialect() == store.Postgres {
		driver = riverdatabasesql.New(db.SQL())
	} else {
		driver = riversqlite.New(db.SQL())
	}
	rc, err := river.NewClient(driver, &river.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return 0, err
	}
	write := func(g, n int) error {
		now := time.Now().UTC()
		params := make([]river.InsertManyParams, 0, o.batch)
		return db.InTx(ctx, func(tx *sql.Tx) error {
			for i := 0; i < o.batch; i++ {
				model := competition.ModelSpec{BaseURL: "http://127.0.0.1:9/v1", Model: fmt.Sprintf("ref-%d-%d-%d", g, n, i)}
				s := competition.Submission{ID: store.NewID("s"), CompetitionID: competitionID, Name: model.Model, Submitter: "ref",
					Model: model, Digest: competition.ModelDigest(model), CommittedAt: now, State: competition.StateQueued, ItemsTotal: 10, UpdatedAt: now}
				if err := db.CreateSubmissionTx(ctx, tx, s, ""); err != nil {
					return err
				}
				params = append(params, river.InsertManyParams{Args: jobs.EvaluateArgs{SubmissionID: s.ID}})
			}
			_, err := rc.InsertManyTx(ctx, tx, params)
			return err
		})
	}
	p, err := load(o.concurrency, o.duration, write)
	if err != nil {
		return 0, err
	}
	return p.Rate * float64(o.batch), nil
}

// cpuTime is the CPU time (user and system) this process has used: per
// submission, a measure the box's other load disturbs far less than the
// rate. A database server's own CPU is not in it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// load runs do as loadgen.Run does and fails on any failed call: every
// submission must be accepted.
func load(concurrency int, d time.Duration, do func(g, n int) error) (loadgen.Phase, error) {
	p := loadgen.Run(concurrency, d, do)
	if p.FirstErr != nil {
		return p, fmt.Errorf("%d calls failed, the first: %w", p.Errors, p.FirstErr)
	}
	if p.Done == 0 {
		return p, errors.New("no call succeeded")
	}
	return p, nil
}
