package web_test

import (
	"context"
	"crucible/internal/weights"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// browserSession is a headless Chromium tab with the helpers the pool and
// epoch browser test uses.
type browserSession struct {
	b     context.Context
	base  string
	shots string
}

// newBrowserSession starts Chromium (skipping the test when there is none)
// for pages under base; it stops when the test ends.
func newBrowserSession(t *testing.T, ctx context.Context, base string) *browserSession {
	t.Helper()
	chromium := findChromium()
	if chromium == "" {
		t.Skipf("browser test skipped: no Chromium found (install Debian's chromium, or set %s to a Chrome/Chromium binary)", EnvChromium)
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	b := startChromium(t, ctx, chromium, 1280, 900)
	return &browserSession{b: b, base: base, shots: screenshotDir(t)}
}

func (s *browserSession) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(s.b, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// open loads path and waits for sel to be visible.
func (s *browserSession) open(t *testing.T, path, sel string) {
	t.Helper()
	s.do(t, "open "+path, chromedp.Navigate(s.base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

func (s *browserSession) text(t *testing.T, sel string) string {
	t.Helper()
	v, err := chromedp.Run(s.b, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(v)
}

// texts returns the trimmed text of every element matching sel.
func (s *browserSession) texts(t *testing.T, sel string) []string {
	t.Helper()
	return evalJS[[]string](t, s.b, `[...document.querySelectorAll(`+jsString(sel)+`)].map(e => e.textContent.trim())`)
}

func (s *browserSession) count(t *testing.T, sel string) int {
	t.Helper()
	return evalJS[int](t, s.b, `document.querySelectorAll(`+jsString(sel)+`).length`)
}

func (s *browserSession) screenshot(t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(s.b, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(s.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

func (s *browserSession) scheme(t *testing.T, dark bool) {
	t.Helper()
	scheme := "light"
	if dark {
		scheme = "dark"
	}
	_, err := chromedp.Call(s.b, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
	if err != nil {
		t.Fatalf("emulate %s scheme: %v", scheme, err)
	}
}

// choose picks value in the select sel and submits its form, waiting until
// the page's query string holds want.
func (s *browserSession) choose(t *testing.T, sel, value, want string) {
	t.Helper()
	s.do(t, "choose "+value+" in "+sel,
		chromedp.SetValue(chromedp.CSS(sel), value),
		chromedp.Click(chromedp.CSS(sel+" ~ button[type=submit]")))
	// The click navigates: poll from Go, since a page-side poll dies with
	// the page it ran in.
	cond := `location.search.includes(` + jsString(want) + `) && document.readyState === 'complete'`
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if ok, err := chromedp.Run(s.b, chromedp.Evaluate[bool](cond)); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page for %s did not load", want)
		}
	}
}

// selected is the text of the chosen option of the select sel.
func (s *browserSession) selected(t *testing.T, sel string) string {
	t.Helper()
	return evalJS[string](t, s.b, `document.querySelector(`+jsString(sel)+`).selectedOptions[0].textContent.trim()`)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return `'` + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + `'`
}

// TestBrowserPoolsAndEpochs runs three pools with pool.Service on a fake clock
// (settled, running, upcoming) and closes three epochs of a competition, then
// opens their pages in headless Chromium: it checks the payouts, walks the
// snapshot history and the epochs with the selects (no JavaScript needed),
// and saves screenshots under testout/screenshots/.
func TestBrowserPoolsAndEpochs(t *testing.T) {
	if findChromium() == "" || testing.Short() {
		newBrowserSession(t, context.Background(), "") // skips with the reason
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := newPoolFixture(t)
	f.clock.Set(poolStart.Add(11 * time.Hour))
	srv := f.server(t)
	s := newBrowserSession(t, ctx, srv.URL)
	s.scheme(t, false)

	t.Run("the home page lists the pools with their funds, schedule and state", func(t *testing.T) {
		s.open(t, "/", "#pools")
		pools := s.texts(t, "#pools tbody th a")
		phases := s.texts(t, "#pools .phase")
		want := []string{"SIQA weekend pool", "SIQA next month", "SIQA prize pool"}
		if strings.Join(pools, ",") != strings.Join(want, ",") || strings.Join(phases, ",") != "running,upcoming,settled" {
			t.Fatalf("pools %v in phases %v, want %v running, upcoming, settled", pools, phases, want)
		}
		s.screenshot(t, "09-pools-home")
	})

	t.Run("a settled pool shows the private ranking, the payouts and the public snapshots", func(t *testing.T) {
		s.open(t, "/c/"+f.settled, "#payouts")
		names := s.texts(t, "#payouts tbody th.name a")
		paid := s.texts(t, "#payouts td.payout")
		// top-k:60,30 of 1,000: the oracle takes 600; the other two take 300
		// and 0, or 150 each when they tie on the (randomly seeded) private items.
		if len(names) != 3 || names[0] != "baseline-oracle" || paid[0] != "600" || (paid[1]+paid[2] != "3000" && paid[1]+paid[2] != "150150") {
			t.Fatalf("payouts %v to %v, want 600 to the oracle first, then 300 and 0 (or 150 each)", paid, names)
		}
		if n := s.count(t, "#at option"); n != len(f.snapshots) {
			t.Fatalf("%d snapshots offered, want %d", n, len(f.snapshots))
		}
		if got := s.selected(t, "#at"); !strings.HasSuffix(got, "(latest)") {
			t.Fatalf("selected snapshot %q, want the latest", got)
		}
		s.screenshot(t, "10-pool-settled")
	})

	t.Run("the snapshot select shows an earlier public leaderboard", func(t *testing.T) {
		s.open(t, "/c/"+f.settled, "#at")
		first := f.snapshots[0].UTC().Format(time.RFC3339Nano)
		s.choose(t, "#at", first, "at=")
		s.do(t, "leaderboard", chromedp.WaitVisible(chromedp.CSS("#leaderboard")))
		if got := s.selected(t, "#at"); got != "2026-12-01 01:00:00 UTC" {
			t.Fatalf("after choosing the first snapshot the select shows %q", got)
		}
		// One hour in, only the two first entrants had public items evaluated.
		if rows := s.count(t, "#leaderboard tbody tr"); rows != 2 {
			t.Fatalf("the first snapshot has %d rows, want the 2 entrants of the first hour", rows)
		}
		s.screenshot(t, "11-pool-snapshot-history")
	})

	t.Run("a running pool shows its budget and public board, nothing private", func(t *testing.T) {
		s.open(t, "/c/"+f.open, "#leaderboard")
		if phase, budget := s.text(t, "[data-testid=phase]"), s.text(t, "[data-testid=budget]"); phase != "running" || !strings.HasPrefix(budget, "440 of 440") {
			t.Fatalf("phase %q, budget %q; want running, 440 of 440", phase, budget)
		}
		if s.count(t, "#payouts") != 0 || s.count(t, "#entrants a[href^='/s/']") != 0 {
			t.Fatal("an open pool's page shows payouts or links to entrants' item results")
		}
		s.screenshot(t, "12-pool-running")
	})

	t.Run("a pool page has a dark scheme", func(t *testing.T) {
		s.scheme(t, true)
		defer s.scheme(t, false)
		s.open(t, "/c/"+f.settled, "#payouts")
		if bg := evalJS[string](t, s.b, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(20, 23, 26)" {
			t.Fatalf("dark background %s", bg)
		}
		s.screenshot(t, "13-pool-settled-dark")
	})

	t.Run("/epochs draws the latest weights with win rates and copies", func(t *testing.T) {
		s.open(t, "/epochs", "figure.weights")
		bars := s.count(t, ".epoch-comp figure.weights g.wbar")
		rows := s.count(t, "table.epoch-table tbody tr")
		copies := s.count(t, "table.epoch-table tr.copy")
		if bars != 5 || rows != 5 || copies != 1 {
			t.Fatalf("%d bars, %d rows, %d copies; want 5, 5, 1", bars, rows, copies)
		}
		// Rows go by weight, the heaviest first, as the epoch recorded them.
		var rec weights.Record
		if err := f.db.EpochRecord(ctx, f.epochComp, f.epochs[2], &rec); err != nil {
			t.Fatal(err)
		}
		names := s.texts(t, "table.epoch-table tbody th.name")
		for i := 1; i < len(names); i++ {
			if w, prev := rec.Weights["s-"+names[i]], rec.Weights["s-"+names[i-1]]; w > prev {
				t.Fatalf("%s (%.3f) ranks below %s (%.3f)", names[i], w, names[i-1], prev)
			}
		}
		// Time priority: the later, better sharp-gemma wins only the items
		// where it beats chatty-mistral, so the earlier model keeps the lead.
		if names[0] != "chatty-mistral" {
			t.Fatalf("heaviest submission %q, want chatty-mistral", names[0])
		}
		// The validator consensus epoch: three UIDs, two validators.
		if uids, vals := s.count(t, "#consensus-miners tbody tr"), s.count(t, "#consensus-validators tbody tr"); uids != 3 || vals != 2 {
			t.Fatalf("consensus shows %d UIDs and %d validators, want 3 and 2", uids, vals)
		}
		if got := s.selected(t, "#consensus"); !strings.HasPrefix(got, itoa(f.consensus)+":") {
			t.Fatalf("consensus epoch %q selected, want %d", got, f.consensus)
		}
		s.screenshot(t, "14-epochs")
	})

	t.Run("an earlier epoch is one choice away", func(t *testing.T) {
		s.open(t, "/epochs/"+f.epochComp, "#epoch")
		first := f.epochs[0]
		s.choose(t, "#epoch", itoa(first), "epoch="+itoa(first))
		s.do(t, "weights", chromedp.WaitVisible(chromedp.CSS("figure.weights")))
		names := s.texts(t, "table.epoch-table tbody th.name")
		// Ties go to the earlier commit: warm-llama wins the items both get
		// right, chatty-mistral only those it alone gets right.
		if strings.Join(names, ",") != "warm-llama,chatty-mistral" {
			t.Fatalf("epoch %d ranks %v, want warm-llama then chatty-mistral", first, names)
		}
		s.screenshot(t, "15-epoch-earlier")
	})

	t.Run("the epochs page has a dark scheme", func(t *testing.T) {
		s.scheme(t, true)
		defer s.scheme(t, false)
		s.open(t, "/epochs/"+f.epochComp, "figure.weights")
		s.screenshot(t, "16-epoch-dark")
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
