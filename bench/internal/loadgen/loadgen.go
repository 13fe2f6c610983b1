// Package loadgen is the closed-loop load generator the benchmarks share:
// a fixed number of goroutines each call the target back to back for a
// fixed time, and the phase reports throughput and latency percentiles.
package loadgen

import (
	"slices"
	"sync"
	"time"
)

// Phase is one measured run.
type Phase struct {
	// Done is how many calls succeeded; Rate is Done per second of the phase.
	Done     int
	Rate     float64
	P50, P99 time.Duration // of the successful calls
	// Errors counts failed calls; FirstErr is one of them (nil if none).
	Errors   int
	FirstErr error
}

// Run runs concurrency goroutines for d, goroutine g making its n-th call
// as do(g, n) as soon as its previous one returned.
func Run(concurrency int, d time.Duration, do func(g, n int) error) Phase {
	var mu sync.Mutex
	var p Phase
	var all []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for g := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			bad := 0
			var firstErr error
			for n := 0; time.Now().Before(end); n++ {
				t := time.Now()
				if err := do(g, n); err != nil {
					bad++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			all = append(all, lat...)
			p.Errors += bad
			if p.FirstErr == nil {
				p.FirstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(all) > 0 {
		slices.Sort(all)
		p.Done, p.Rate = len(all), float64(len(all))/elapsed.Seconds()
		p.P50, p.P99 = all[len(all)/2], all[len(all)*99/100]
	}
	return p
}

// Median returns the phase with the median rate.
func Median(ps []Phase) Phase {
	s := slices.Clone(ps)
	slices.SortFunc(s, func(a, b Phase) int {
		switch {
		case a.Rate < b.Rate:
			return -1
		case a.Rate > b.Rate:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}
