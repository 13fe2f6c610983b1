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
	"slices"
	"strings"
	"sync"
	"time"

	"crucible/bench/internal/benchdb"
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
	fmt.Printf("database %s, seeded %d scored submissions × %d results in %s\n", a.DB.Dialect(), o.submissions, o.items, time.Since(start).Round(time.Millisecond))
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

	var hub, ref []phase
	for i := 0; i < o.rounds; i++ {
		for _, t := range []struct {
			url string
			out *[]phase
		}{{hubURL, &hub}, {refURL, &ref}} {
			p, err := load(client, t.url, o.concurrency, o.duration)
			if err != nil {
				return err
			}
			*t.out = append(*t.out, p)
		}
	}
	h, r := median(hub), median(ref)
	fmt.Printf("GOMAXPROCS %d, concurrency %d, %d rounds of %s\n", runtime.GOMAXPROCS(0), o.concurrency, o.rounds, o.duration)
	fmt.Printf("hub        %9.0f req/s  p50 %8s  p99 %8s  errors %d\n", h.rps, h.p50, h.p99, h.errors)
	fmt.Printf("reference  %9.0f req/s  p50 %8s  p99 %8s  errors %d\n", r.rps, r.p50, r.p99, r.errors)
	fmt.Printf("ratio hub/reference %.3f (target >= 0.5); hub p99 %s (target <= 10ms)\n", h.rps/r.rps, h.p99)
	return nil
}

// seed creates a competition and o.submissions scored submissions with
// o.items results each, o.seedBatch submissions per transaction.
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
	insert := resultInsert(db.Dialect(), o.items)
	at := c.CreatedAt
	for done := 0; done < o.submissions; {
		n := min(o.seedBatch, o.submissions-done)
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			for k := 0; k < n; k++ {
				i := done + k
				s := competition.Submission{ID: store.NewID("s"), CompetitionID: c.ID, Name: fmt.Sprintf("model-%d", i), Submitter: "bench",
					Digest: fmt.Sprintf("digest-%d", i), CommittedAt: at.Add(time.Duration(i) * time.Millisecond), State: competition.StateQueued,
					ItemsTotal: o.items, UpdatedAt: at}
				if err := db.CreateSubmissionTx(ctx, tx, s, ""); err != nil {
					return err
				}
				var args []any
				correct := 0
				for j := 0; j < o.items; j++ {
					// Distinct responses per submission: no row is a copy.
					ok := (i+j)%3 != 0
					if ok {
						correct++
					}
					args = append(args, s.ID, j, "prompt", fmt.Sprintf("answer %d-%d", i, j), "A", b2i(ok), float64(b2i(ok)), 0, 0, 1, 10, 1, "{}")
				}
				if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
					return fmt.Errorf("insert results: %w", err)
				}
				score := float64(correct) / float64(o.items)
				card := &competition.Card{Score: score, CILow: max(0, score-0.1), CIHigh: min(1, score+0.1), Items: o.items, Correct: correct}
				for _, ev := range []competition.Event{competition.EventStart, competition.EventComplete} {
					if _, err := db.AdvanceSubmissionTx(ctx, tx, s.ID, ev, "", card, at); err != nil {
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

// b2i is a boolean column's value (0/1 INTEGER on both databases).
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// resultInsert is one multi-row INSERT of n item results in dialect's
// placeholders.
func resultInsert(dialect store.Dialect, n int) string {
	const cols = 13
	var b strings.Builder
	b.WriteString(`INSERT INTO item_results (submission_id, idx, prompt, response, prediction, correct, score, started_at, ended_at,
		latency_ms, prompt_tokens, completion_tokens, detail) VALUES `)
	for r := 0; r < n; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for c := 0; c < cols; c++ {
			if c > 0 {
				b.WriteString(", ")
			}
			if dialect == store.Postgres {
				fmt.Fprintf(&b, "$%d", r*cols+c+1)
			} else {
				b.WriteString("?")
			}
		}
		b.WriteString(")")
	}
	return b.String()
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

// phase is one measured run against one target.
type phase struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

// load runs concurrency goroutines getting u (reading every body) for d.
func load(client *http.Client, u string, concurrency int, d time.Duration) (phase, error) {
	var mu sync.Mutex
	var all []time.Duration
	var errs int
	var firstErr error
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	start := time.Now()
	for g := 0; g < concurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			bad := 0
			var lastErr error
			for time.Now().Before(end) {
				t := time.Now()
				if _, err := fetch(client, u); err != nil {
					bad++
					lastErr = err
					continue
				}
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			all = append(all, lat...)
			errs += bad
			if firstErr == nil {
				firstErr = lastErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(all) == 0 {
		return phase{}, fmt.Errorf("no request to %s succeeded: %v", u, firstErr)
	}
	slices.Sort(all)
	return phase{rps: float64(len(all)) / elapsed.Seconds(), p50: all[len(all)/2], p99: all[len(all)*99/100], errors: errs}, nil
}

// median returns the phase with the median throughput.
func median(ps []phase) phase {
	s := slices.Clone(ps)
	slices.SortFunc(s, func(a, b phase) int {
		switch {
		case a.rps < b.rps:
			return -1
		case a.rps > b.rps:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}
