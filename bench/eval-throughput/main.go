// Command eval-throughput measures how close the evaluation engine comes to
// a bare HTTP load generator against the same model server. It starts the
// deterministic baseline server (oracle policy) on a loopback listener, then
// alternates two measured phases over identical requests:
//
//   - eval: eval.Run with the mcq Evaluator (render the prompt, send the chat
//     request with the inference client, decode, extract the answer, record
//     a Result through the sink);
//   - plain: goroutines posting the same pre-rendered chat JSON with net/http
//     and draining the bodies.
//
// It prints the median items/s of each and their ratio (target ≥ 0.95).
//
//	go run ./bench/eval-throughput [-items 20000] [-concurrency 32] [-rounds 3] [-delay 0]
//
// With -delay 0 the server answers instantly, so client and server compete
// for the same CPUs and the ratio measures the engine's CPU cost per item
// (decode the response, render, encode, extract) against a client that does
// none of it. A -delay of a few milliseconds simulates model latency, the
// regime real evaluations run in, and measures scheduling overhead instead.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"crucible/internal/eval"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/eval/runner"
	"crucible/internal/inference"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "eval-throughput:", err)
		os.Exit(1)
	}
}

func run() error {
	items := flag.Int("items", 20000, "requests per measured phase (dataset items are repeated to reach it)")
	concurrency := flag.Int("concurrency", 32, "concurrent requests in both phases")
	rounds := flag.Int("rounds", 3, "measured rounds per phase (alternating); the median is reported")
	dataset := flag.String("dataset", "", "Social IQa-style JSONL (default ../shared/data/siqa/dev.jsonl relative to the repo root)")
	delay := flag.Duration("delay", 0, "baseline server delay per request, simulating model latency (0 = CPU-bound)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured rounds to this file")
	flag.Parse()

	path := *dataset
	if path == "" {
		root, err := repoRoot()
		if err != nil {
			return err
		}
		path = filepath.Join(root, "..", "shared", "data", "siqa", "dev.jsonl")
	}
	ds, err := mcq.ParseFile(path)
	if err != nil {
		return err
	}

	// Baseline server on a real loopback listener.
	h, err := mcqtest.New(mcqtest.Config{Policies: []string{mcqtest.PolicyOracle}, Key: ds, Delay: *delay})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	base := "http://" + ln.Addr().String() + "/v1"
	const model = "baseline-oracle"

	// The workload: dataset items repeated to reach -items.
	work := &mcq.Dataset{Name: ds.Name + "-repeated", Items: make([]mcq.Item, *items)}
	for i := range work.Items {
		work.Items[i] = ds.Items[i%len(ds.Items)]
	}

	client, err := inference.New(inference.Config{BaseURL: base})
	if err != nil {
		return err
	}
	ev, err := mcq.NewEvaluator(mcq.Config{Client: client, Model: model, Dataset: work})
	if err != nil {
		return err
	}

	// Identical pre-rendered request bodies for the plain load generator.
	tmpl := mcq.MustDefaultTemplate()
	zero := 0.0
	bodies := make([][]byte, len(work.Items))
	for i, it := range work.Items {
		p, err := mcq.Render(tmpl, it)
		if err != nil {
			return err
		}
		bodies[i], err = json.Marshal(inference.ChatRequest{
			Model: model, Messages: []inference.ChatMessage{{Role: "user", Content: p}},
			MaxTokens: mcq.DefaultMaxTokens, Temperature: &zero,
		})
		if err != nil {
			return err
		}
	}
	plainClient := &http.Client{Transport: inference.NewTransport()}
	url := base + "/chat/completions"

	runEval := func(n int) (time.Duration, eval.Summary, error) {
		var correct, done int
		start := time.Now()
		err := runner.Run(context.Background(), &limited{ev, n}, runner.Config{
			Concurrency: *concurrency,
			Sink: func(r eval.Result) error {
				done++
				if r.Correct {
					correct++
				}
				return nil
			},
		})
		d := time.Since(start)
		s := eval.Summary{Items: done, Correct: correct}
		if done > 0 {
			s.Mean = float64(correct) / float64(done)
		}
		return d, s, err
	}
	runPlain := func(n int) (time.Duration, error) {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, *concurrency)
		start := time.Now()
		for range *concurrency {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i]))
					if err != nil {
						errs <- err
						return
					}
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", "application/json")
					resp, err := plainClient.Do(req)
					if err != nil {
						errs <- err
						return
					}
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK {
						errs <- errors.Join(err, fmt.Errorf("status %d", resp.StatusCode))
						return
					}
				}
			})
		}
		wg.Wait()
		d := time.Since(start)
		close(errs)
		return d, <-errs
	}

	fmt.Printf("dataset %s: %d items (digest %.12s…), %d requests per phase, concurrency %d, server delay %v, GOMAXPROCS %d\n",
		ds.Name, len(ds.Items), ds.Digest, *items, *concurrency, *delay, runtime.GOMAXPROCS(0))

	warm := min(*items, 2000)
	if _, _, err := runEval(warm); err != nil {
		return fmt.Errorf("warm-up eval: %w", err)
	}
	if _, err := runPlain(warm); err != nil {
		return fmt.Errorf("warm-up plain: %w", err)
	}

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var evalRates, plainRates []float64
	for r := 1; r <= *rounds; r++ {
		d, s, err := runEval(*items)
		if err != nil {
			return fmt.Errorf("eval round %d: %w", r, err)
		}
		if s.Items != *items {
			return fmt.Errorf("eval round %d: %d results, want %d", r, s.Items, *items)
		}
		er := float64(*items) / d.Seconds()
		evalRates = append(evalRates, er)
		pd, err := runPlain(*items)
		if err != nil {
			return fmt.Errorf("plain round %d: %w", r, err)
		}
		pr := float64(*items) / pd.Seconds()
		plainRates = append(plainRates, pr)
		fmt.Printf("round %d: eval %8.0f items/s (accuracy %.3f)   plain %8.0f req/s\n", r, er, s.Mean, pr)
	}
	em, pm := median(evalRates), median(plainRates)
	fmt.Printf("median: eval %.0f items/s, plain %.0f req/s, ratio eval/plain %.3f (target >= 0.95)\n", em, pm, em/pm)
	return nil
}

// limited evaluates the first n items of an Evaluator.
type limited struct {
	eval.Evaluator
	n int
}

func (l *limited) Len() int { return l.n }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// repoRoot finds the directory holding go.mod, from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory; pass -dataset")
		}
		dir = parent
	}
}
