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
// It prints the median items/s of each and their ratio (target ≥ 0.95),
// and the median CPU time per item of each (client and server both run in
// this process), whose ratio plain/eval is what the CPU-bound items/s
// ratio tends to on an idle machine and stays readable on a shared one.
//
// With -mode task the workload is an lm-eval generate_until task (-task,
// default the gsm8k preset, with its few-shot prompts) through the task
// Evaluator (render nothing, send the /v1/completions generation with stop,
// cut at the until strings, filter, match, marshal the Detail) against the
// baseline server's oracle policy for that task, and the plain phase posts
// the same completion requests.
//
//	go run ./bench/eval-throughput [-mode mcq|task] [-task gsm8k] [-items 20000] [-concurrency 32] [-rounds 3] [-delay 0]
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
	"syscall"
	"time"

	"crucible/internal/eval"
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
	mode := flag.String("mode", "mcq", "mcq (Social IQa chat requests through the mcq Evaluator) or task (an lm-eval\n"+
		"generate_until task's completion requests through the task Evaluator)")
	taskRef := flag.String("task", "gsm8k", "with -mode task: a task file or preset (generate_until)")
	items := flag.Int("items", 20000, "requests per measured phase (dataset items are repeated to reach it)")
	concurrency := flag.Int("concurrency", 32, "concurrent requests in both phases")
	rounds := flag.Int("rounds", 3, "measured rounds per phase (alternating); the median is reported")
	dataset := flag.String("dataset", "", "with -mode mcq: Social IQa-style JSONL (default ../shared/data/siqa/dev.jsonl relative to the repo root)")
	delay := flag.Duration("delay", 0, "baseline server delay per request, simulating model latency (0 = CPU-bound)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of each measured round to FILE.eval.N and FILE.plain.N\n"+
		"(each phase alone), e.g. for go tool pprof -diff_base 'FILE.plain.*' FILE.eval.*")
	flag.Parse()

	var w *workload
	var err error
	switch *mode {
	case "mcq":
		w, err = mcqWorkload(*dataset, *items, *delay)
	case "task":
		w, err = taskWorkload(*taskRef, *items, *delay)
	default:
		err = fmt.Errorf("-mode %q: want mcq or task", *mode)
	}
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: w.server, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	base := "http://" + ln.Addr().String() + "/v1"
	client, err := inference.New(inference.Config{BaseURL: base})
	if err != nil {
		return err
	}
	ev, err := w.evaluator(client)
	if err != nil {
		return err
	}
	bodies := w.bodies
	plainClient := &http.Client{Transport: inference.NewTransport()}
	url := base + w.path

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

	fmt.Printf("mode %s, %s, %d requests per phase, concurrency %d, server delay %v, GOMAXPROCS %d\n",
		*mode, w.describe, *items, *concurrency, *delay, runtime.GOMAXPROCS(0))

	warm := min(*items, 2000)
	if _, _, err := runEval(warm); err != nil {
		return fmt.Errorf("warm-up eval: %w", err)
	}
	if _, err := runPlain(warm); err != nil {
		return fmt.Errorf("warm-up plain: %w", err)
	}

	evalProf, plainProf := newPhaseProfile(*cpuprofile, "eval"), newPhaseProfile(*cpuprofile, "plain")
	var evalRates, plainRates, evalCPU, plainCPU []float64
	for r := 1; r <= *rounds; r++ {
		if err := evalProf.start(); err != nil {
			return err
		}
		m0 := memStats()
		c0 := cpuTime()
		d, s, err := runEval(*items)
		if err != nil {
			return fmt.Errorf("eval round %d: %w", r, err)
		}
		c1 := cpuTime()
		evalMem := memStats().sub(m0)
		if err := evalProf.stop(); err != nil {
			return err
		}
		evalCPU = append(evalCPU, float64((c1-c0).Microseconds())/float64(*items))
		if s.Items != *items {
			return fmt.Errorf("eval round %d: %d results, want %d", r, s.Items, *items)
		}
		er := float64(*items) / d.Seconds()
		evalRates = append(evalRates, er)
		if err := plainProf.start(); err != nil {
			return err
		}
		m1 := memStats()
		c1 = cpuTime()
		pd, err := runPlain(*items)
		if err != nil {
			return fmt.Errorf("plain round %d: %w", r, err)
		}
		plainCPU = append(plainCPU, float64((cpuTime()-c1).Microseconds())/float64(*items))
		plainMem := memStats().sub(m1)
		if err := plainProf.stop(); err != nil {
			return err
		}
		pr := float64(*items) / pd.Seconds()
		plainRates = append(plainRates, pr)
		fmt.Printf("round %d: eval %8.0f items/s (score %.3f, %5.1f µs CPU/item)   plain %8.0f req/s (%5.1f µs CPU/req)\n",
			r, er, s.Mean, evalCPU[r-1], pr, plainCPU[r-1])
		fmt.Printf("         allocated per item (client and server): eval %s   plain %s\n",
			evalMem.per(*items), plainMem.per(*items))
	}
	em, pm := median(evalRates), median(plainRates)
	ec, pc := median(evalCPU), median(plainCPU)
	fmt.Printf("median: eval %.0f items/s, plain %.0f req/s, ratio eval/plain %.3f (target >= 0.95)\n", em, pm, em/pm)
	fmt.Printf("median CPU (client and server, this process): eval %.1f µs/item, plain %.1f µs/req, ratio plain/eval %.3f\n", ec, pc, pc/ec)
	return nil
}

// phaseProfile profiles one phase's rounds. The runtime profiles one
// interval at a time, so each round writes a file of its own
// (FILE.eval.1, FILE.plain.1, ...), and the other phase's rounds stay out;
// go tool pprof merges the files it is given.
type phaseProfile struct {
	prefix string // "": not profiling
	round  int
	f      *os.File
}

func newPhaseProfile(file, phase string) *phaseProfile {
	if file == "" {
		return &phaseProfile{}
	}
	return &phaseProfile{prefix: file + "." + phase}
}

func (p *phaseProfile) start() error {
	if p.prefix == "" {
		return nil
	}
	p.round++
	f, err := os.Create(fmt.Sprintf("%s.%d", p.prefix, p.round))
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	p.f = f
	return nil
}

func (p *phaseProfile) stop() error {
	if p.f == nil {
		return nil
	}
	pprof.StopCPUProfile()
	err := p.f.Close()
	p.f = nil
	return err
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

// mem is the allocation counters of runtime.MemStats: unlike CPU time, a
// phase's allocation per item does not vary with the machine's load.
type mem struct{ bytes, objects, gcs uint64 }

func memStats() mem {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mem{ms.TotalAlloc, ms.Mallocs, uint64(ms.NumGC)}
}

func (m mem) sub(o mem) mem { return mem{m.bytes - o.bytes, m.objects - o.objects, m.gcs - o.gcs} }

func (m mem) per(n int) string {
	return fmt.Sprintf("%5.0f B, %4.1f allocs, %d GCs", float64(m.bytes)/float64(n), float64(m.objects)/float64(n), m.gcs)
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
