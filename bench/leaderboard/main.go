// Command leaderboard measures GET /api/v1/competitions/{id}/leaderboard
// against its reference: Go's net/http serving the same JSON bytes from
// memory. It opens a hub (no workers) on a fresh SQLite file, or with
// -postgres on a fresh PostgreSQL database it creates on that server and
// drops at the end; seeds one multiple-choice competition with
// -submissions scored submissions of -items results each (written straight
// through the store, in batches, each scored in its own transaction as a
// worker scores); then drives the hub and the reference in turn for
// -rounds alternating rounds, -concurrency client goroutines for -duration
// each, and prints the median requests/s and p99 of each and their ratio
// (target: >= 10,000 req/s, p99 <= 10 ms, ratio >= 0.5).
//
//	go run ./bench/leaderboard [-submissions 2000] [-items 10] [-concurrency 32] [-duration 5s] [-rounds 3]
//	go run ./bench/leaderboard -postgres 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable' -submissions 20000
//
// With -limit N it reads the first page of N rows (?limit=N) instead of the
// whole board, and the reference serves that page's bytes.
//
// The setting, 100,000 submissions and 10,000,000 result rows:
//
//	go run ./bench/leaderboard -submissions 100000 -items 100 -limit 100 -same-digest
//
// Result rows are generated inside the database, one statement per seeding
// transaction, so seeding takes minutes, not hours. -same-digest gives every
// submission one digest: the copy check (quadratic over distinct
// submissions until copies are marked incrementally) then marks each a copy
// of the first in linear time, and the first read finishes. -cpuprofile
// writes a CPU profile of the first round's hub phase (hub, load generator
// and all: they share the process).
//
// It also prints the first (uncached) read's time: that is what every read
// cost before leaderboards were cached under the competition's version.
// The hub, the reference and the load generator share the machine's CPUs.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"crucible/bench/internal/benchdb"
	"crucible/bench/internal/loadgen"
	"crucible/internal/app"
	"crucible/internal/competition"
	"crucible/internal/eval/mcq"
	"crucible/internal/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "leaderboard:", err)
		os.Exit(1)
	}
}

type options struct {
	postgres    string
	submissions int
	items       int
	concurrency int
	duration    time.Duration
	rounds      int
	seedBatch   int
	limit       int
	sameDigest  bool
	cpuprofile  string
}

func run() error {
	var o options
	flag.StringVar(&o.postgres, "postgres", "", "PostgreSQL server URL: run on a fresh database created there (default: a fresh SQLite file)")
	flag.IntVar(&o.submissions, "submissions", 2000, "scored submissions to seed (100000 for the issue's target)")
	flag.IntVar(&o.items, "items", 10, "items (result rows) per submission")
	flag.IntVar(&o.concurrency, "concurrency", 32, "client goroutines")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each measured phase")
	flag.IntVar(&o.rounds, "rounds", 3, "alternating rounds of hub and reference")
	flag.IntVar(&o.seedBatch, "seed-batch", 500, "submissions per seeding transaction")
	flag.IntVar(&o.limit, "limit", 0, "read a page of this many rows (?limit=N, 1..1000) instead of the whole board")
	flag.BoolVar(&o.sameDigest, "same-digest", false, "give every submission one digest, so marking copies is linear (each a copy of the first)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the first hub phase to this file")
	flag.Parse()
	if o.submissions < 1 || o.items < 1 || o.items > 1000 || o.concurrency < 1 || o.rounds < 1 || o.seedBatch < 1 {
		return errors.New("-submissions, -items (1..1000), -concurrency, -rounds and -seed-batch must be positive")
	}
	ctx := context.Background()
	database, drop, err := benchdb.Fresh(ctx, o.postgres, "leaderboard")
	if err != nil {
		return err
	}
	defer drop()
	// The first read computes the board from scratch, which takes minutes at
	// tens of thousands of submissions on a loaded machine: the write
	// timeout must not cut it off.
	a, err := app.Open(ctx, app.Config{Database: database, Listen: "127.0.0.1:0", NoWork: true,
		Timeouts: app.Timeouts{Write: time.Hour}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer a.Close()
	start := time.Now()
	id, err := seed(ctx, a.DB, o)
	if err != nil {
		return err
	}
	seeded := time.Since(start)
	var results int64
	if err := a.DB.SQL().QueryRowContext(ctx, `SELECT count(*) FROM item_results`).Scan(&results); err != nil {
		return err
	}
	if results != int64(o.submissions)*int64(o.items) {
		return fmt.Errorf("seeded %d result rows, want %d", results, o.submissions*o.items)
	}
	fmt.Printf("database %s, seeded %d scored submissions, %d result rows in %s\n", a.DB.Dialect(), o.submissions, results, seeded.Round(time.Millisecond))
	ln, err := a.Listen()
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = a.Serve(sctx, ln) }()
	hubURL := "http://" + ln.Addr().String() + "/api/v1/competitions/" + url.PathEscape(id) + "/leaderboard"
	want := o.submissions
	if o.limit > 0 {
		hubURL += fmt.Sprintf("?limit=%d", o.limit)
		want = min(o.limit, o.submissions)
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency}}
	t0 := time.Now()
	body, err := fetch(client, hubURL)
	if err != nil {
		return err
	}
	fmt.Printf("first (uncached) read: %s, %d bytes\n", time.Since(t0).Round(time.Microsecond), len(body))
	var rows []competition.Row
	if err := json.Unmarshal(body, &rows); err != nil || len(rows) != want {
		return fmt.Errorf("leaderboard has %d rows (%v), want %d", len(rows), err, want)
	}
	refURL, closeRef, err := reference(body)
	if err != nil {
		return err
	}
	defer closeRef()

	var hub, ref []loadgen.Phase
	for i := 0; i < o.rounds; i++ {
		for _, t := range []struct {
			url string
			out *[]loadgen.Phase
		}{{hubURL, &hub}, {refURL, &ref}} {
			profile := i == 0 && t.out == &hub && o.cpuprofile != ""
			if profile {
				f, err := os.Create(o.cpuprofile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
			}
			p := loadgen.Run(o.concurrency, o.duration, func(int, int) error {
				_, err := fetch(client, t.url)
				return err
			})
			if profile {
				pprof.StopCPUProfile()
			}
			if p.Done == 0 {
				return fmt.Errorf("no request to %s succeeded: %v", t.url, p.FirstErr)
			}
			*t.out = append(*t.out, p)
		}
	}
	h, r := loadgen.Median(hub), loadgen.Median(ref)
	fmt.Printf("GOMAXPROCS %d, concurrency %d, %d rounds of %s\n", runtime.GOMAXPROCS(0), o.concurrency, o.rounds, o.duration)
	fmt.Printf("hub        %9.0f req/s  p50 %8s  p99 %8s  errors %d\n", h.Rate, h.P50, h.P99, h.Errors)
	fmt.Printf("reference  %9.0f req/s  p50 %8s  p99 %8s  errors %d\n", r.Rate, r.P50, r.P99, r.Errors)
	fmt.Printf("ratio hub/reference %.3f (target >= 0.5); hub p99 %s (target <= 10ms)\n", h.Rate/r.Rate, h.P99)
	return nil
}

// seed creates a competition and o.submissions scored submissions with
// o.items results each, o.seedBatch submissions per transaction: each is
// created and scored through the store as a worker scores it (which bumps
// the leaderboard version), and a batch's results are generated by one
// statement inside the database.
func seed(ctx context.Context, db *store.DB, o options) (string, error) {
	items := make([]json.RawMessage, o.items)
	for i := range items {
		items[i] = json.RawMessage(fmt.Sprintf(`{"question":"q%d","choices":["a","b"],"answer":0}`, i))
	}
	c := competition.Competition{ID: store.NewID("c"), Kind: mcq.Name, Title: "bench", Config: json.RawMessage(`{"mode":"generative"}`),
		DatasetName: "bench", DatasetDigest: "bench", CreatedBy: "bench", CreatedAt: time.Now()}
	if err := db.CreateCompetition(ctx, c, items); err != nil {
		return "", err
	}
	insert := resultInsert(db.Dialect())
	at := c.CreatedAt
	for done := 0; done < o.submissions; {
		n := min(o.seedBatch, o.submissions-done)
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			ids := make([]string, n)
			for k := range ids {
				i := done + k
				digest := fmt.Sprintf("digest-%d", i)
				if o.sameDigest {
					digest = "digest"
				}
				// Ids in seeding order (store.NewID's are random): the
				// results' primary key then grows at its end instead of
				// at random pages, which made seeding 10,000,000 rows
				// take over 10 minutes.
				s := competition.Submission{ID: fmt.Sprintf("s-bench%08d", i), CompetitionID: c.ID, Name: fmt.Sprintf("model-%d", i), Submitter: "bench",
					Digest: digest, CommittedAt: at.Add(time.Duration(i) * time.Millisecond), State: competition.StateQueued,
					ItemsTotal: o.items, UpdatedAt: at}
				if err := db.CreateSubmissionTx(ctx, tx, s, ""); err != nil {
					return err
				}
				ids[k] = s.ID
			}
			if err := insertResults(ctx, tx, db.Dialect(), insert, ids, done, o.items); err != nil {
				return err
			}
			for k, id := range ids {
				correct := 0
				for j := 0; j < o.items; j++ {
					correct += b2i(correct3(done+k, j))
				}
				score := float64(correct) / float64(o.items)
				card := &competition.Card{Score: score, CILow: max(0, score-0.1), CIHigh: min(1, score+0.1), Items: o.items, Correct: correct}
				for _, ev := range []competition.Event{competition.EventStart, competition.EventComplete} {
					if _, err := db.AdvanceSubmissionTx(ctx, tx, id, ev, "", card, at); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return "", err
		}
		done += n
	}
	return c.ID, nil
}

// correct3 is whether submission i answers item j correctly: two items in
// three, shifted by submission, so scores differ between submissions.
func correct3(i, j int) bool { return (i+j)%3 != 0 }

// b2i is a boolean column's value (0/1 INTEGER on both databases).
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// resultInsert generates items result rows for each submission it is
// given (ids with their submission numbers), inside the database: the
// response "answer i-j" is distinct per submission, so no two submissions'
// responses agree, and correct follows correct3.
func resultInsert(dialect store.Dialect) string {
	const cols = `INSERT INTO item_results (submission_id, idx, prompt, response, prediction, correct, score, started_at, ended_at,
		latency_ms, prompt_tokens, completion_tokens, detail) `
	const row = `'prompt', 'answer ' || s.n || '-' || g.j, 'A', CASE WHEN (s.n + g.j) % 3 <> 0 THEN 1 ELSE 0 END,
		CASE WHEN (s.n + g.j) % 3 <> 0 THEN 1.0 ELSE 0.0 END, 0, 0, 1, 10, 1, '{}'`
	if dialect == store.Postgres {
		return cols + `SELECT s.id, g.j, ` + row + `
		FROM unnest($1::text[], $2::bigint[]) AS s(id, n) CROSS JOIN generate_series(0, $3::integer - 1) AS g(j)`
	}
	return `WITH RECURSIVE g(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM g WHERE j + 1 < ?2),
		s(id, n) AS (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1)) ` +
		cols + `SELECT s.id, g.j, ` + row + ` FROM s, g`
}

// insertResults runs resultInsert for ids, numbered from first.
func insertResults(ctx context.Context, tx *sql.Tx, dialect store.Dialect, insert string, ids []string, first, items int) error {
	nums := make([]int64, len(ids))
	for k := range ids {
		nums[k] = int64(first + k)
	}
	var err error
	if dialect == store.Postgres {
		_, err = tx.ExecContext(ctx, insert, ids, nums, items)
	} else {
		pairs := make([][2]any, len(ids))
		for k, id := range ids {
			pairs[k] = [2]any{id, nums[k]}
		}
		var js []byte
		if js, err = json.Marshal(pairs); err == nil {
			_, err = tx.ExecContext(ctx, insert, string(js), items)
		}
	}
	if err != nil {
		return fmt.Errorf("insert results: %w", err)
	}
	return nil
}

// reference serves body from memory with net/http, as the hub sends it.
func reference(body []byte) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/", func() { srv.Close() }, nil
}

func fetch(client *http.Client, u string) ([]byte, error) {
	resp, err := client.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return body, err
}
