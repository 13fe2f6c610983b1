package main

// This file holds the load generator: one target driven at a fixed
// concurrency, the request bodies and the medians over rounds.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"crucible/internal/eval/mcq"
	"crucible/internal/inference"
)

// spread is a measure's median over rounds and its range.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// spreadOf summarises one value per round (at least one). With an even
// count the median is the mean of the middle two.
func spreadOf(v []float64) spread {
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	m := v[n/2]
	if n%2 == 0 {
		m = (v[n/2-1] + v[n/2]) / 2
	}
	return spread{Median: m, Min: v[0], Max: v[n-1]}
}

// median takes the per-measure medians of a target's rounds.
func median(name string, rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return spreadOf(v).Median
	}
	out := result{Target: name}
	out.RPS = pick(func(r result) float64 { return r.RPS })
	out.P50ms = pick(func(r result) float64 { return r.P50ms })
	out.P99ms = pick(func(r result) float64 { return r.P99ms })
	out.CPUusReq = pick(func(r result) float64 { return r.CPUusReq })
	for _, r := range rs {
		out.Errors += r.Errors
	}
	return out
}

// load runs concurrency goroutines posting bodies to t for d. With res
// non-nil it records throughput, latency percentiles, errors and the
// proxy processes' CPU time per request.
func load(client *http.Client, t target, bodies [][]byte, concurrency int, d time.Duration, res *result) {
	var stop atomic.Bool
	var errs atomic.Int64
	lat := make([][]time.Duration, concurrency)
	var wg sync.WaitGroup
	var cpu0 time.Duration
	if res != nil && t.pids != nil {
		cpu0 = cpuTime(t.pids())
	}
	begin := time.Now()
	for g := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := t.urls[g%len(t.urls)] + "/v1/chat/completions"
			mine := make([]time.Duration, 0, 4096)
			buf := make([]byte, 32<<10)
			for i := g; !stop.Load(); i += concurrency {
				body := bodies[i%len(bodies)]
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				for {
					if _, err := resp.Body.Read(buf); err != nil {
						if err != io.EOF {
							errs.Add(1)
						}
						break
					}
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			lat[g] = mine
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(begin)
	if res == nil {
		return
	}
	var merged []time.Duration
	for _, l := range lat {
		merged = append(merged, l...)
	}
	slices.Sort(merged)
	*res = result{Target: t.name, Errors: errs.Load(), RPS: float64(len(merged)) / elapsed.Seconds()}
	if n := len(merged); n > 0 {
		res.P50ms = ms(merged[n/2])
		res.P99ms = ms(merged[min(n-1, n*99/100)])
	}
	if t.pids != nil && len(merged) > 0 {
		res.CPUusReq = float64((cpuTime(t.pids()) - cpu0).Microseconds()) / float64(len(merged))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// renderBodies renders every item as the evaluator's chat request.
func renderBodies(tmpl *template.Template, ds *mcq.Dataset) ([][]byte, error) {
	zero := 0.0
	var bodies [][]byte
	for _, it := range ds.Items {
		p, err := mcq.Render(tmpl, it)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(inference.ChatRequest{
			Model: model, Messages: []inference.ChatMessage{{Role: "user", Content: p}},
			MaxTokens: mcq.DefaultMaxTokens, Temperature: &zero,
		})
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, b)
	}
	return bodies, nil
}

// writeNginxConf writes an nginx configuration proxying listen to servers
