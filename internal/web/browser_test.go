package web_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/identity"
	"crucible/internal/web"
)

// EnvChromium names a variable that points the browser test at a Chromium
// (or Chrome) binary when none is on PATH under a usual name.
const EnvChromium = "CRUCIBLE_CHROMIUM"

// startChromium launches headless Chromium with the flags this machine
// needs (no sandbox as root; no background networking, which the closed
// network refuses) and a fresh profile; it stops when the test ends.
func startChromium(t *testing.T, ctx context.Context, chromium string, width, height int) context.Context {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	t.Cleanup(cancelAlloc)
	b, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(b); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return b
}

// findChromium returns the browser to drive, or "" when there is none.
func findChromium() string {
	if p := os.Getenv(EnvChromium); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// screenshotDir is testout/screenshots at the repository root.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
	out := filepath.Join(dir, "testout", "screenshots")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBrowser runs the demo in-process, then opens every page in headless
// Chromium: it checks the leaderboard order against the demo's own result,
// watches a slow submission's progress update in place, and saves a
// screenshot of each page under testout/screenshots/.
func TestBrowser(t *testing.T) {
	chromium := findChromium()
	if chromium == "" {
		t.Skipf("browser test skipped: no Chromium found (install Debian's chromium, or set %s to a Chrome/Chromium binary)", EnvChromium)
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	shots := screenshotDir(t)

	// Bounded waits only: the test fails rather than hangs, and asserts no timing.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The demo, kept serving, exactly as `crucible demo --serve` shows it.
	type ready struct {
		url  string
		rows []competition.Row
	}
	readyc := make(chan ready, 1)
	demoCtx, stopDemo := context.WithCancel(ctx)
	demoDone := make(chan error, 1)
	go func() {
		_, err := app.Demo(demoCtx, app.DemoConfig{
			Keep:  true,
			Ready: func(url string, rows []competition.Row) { readyc <- ready{url, rows} },
		})
		demoDone <- err
	}()
	t.Cleanup(func() {
		stopDemo()
		if err := <-demoDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("demo: %v", err)
		}
	})
	var demo ready
	select {
	case demo = <-readyc:
	case err := <-demoDone:
		demoDone <- err
		t.Fatalf("demo ended before it was ready: %v", err)
	case <-ctx.Done():
		t.Fatal("demo was not ready in time")
	}
	if len(demo.rows) != len(app.DemoPolicies) || demo.rows[0].Name != "baseline-oracle" {
		t.Fatalf("demo leaderboard %+v: want every baseline, oracle first", demo.rows)
	}

	// The browser.
	b := startChromium(t, ctx, chromium, 1280, 900)

	do := func(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(b, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(t *testing.T, sel string) string {
		t.Helper()
		s, err := chromedp.Run(b, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	screenshot := func(t *testing.T, name string) {
		t.Helper()
		png, err := chromedp.Run(b, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(shots, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", path)
	}
	// waitFor polls a JavaScript condition; the overall test deadline bounds it.
	waitFor := func(t *testing.T, what, cond string) {
		t.Helper()
		_, err := chromedp.Run(b, chromedp.Poll[chromedp.Void](cond,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(2*time.Minute)))
		if err != nil {
			t.Fatalf("wait for %s: %v", what, err)
		}
	}
	darkMode := func(t *testing.T, dark bool) {
		t.Helper()
		scheme := "light"
		if dark {
			scheme = "dark"
		}
		_, err := chromedp.Call(b, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		if err != nil {
			t.Fatalf("emulate %s scheme: %v", scheme, err)
		}
	}
	open := func(t *testing.T, path, sel string) {
		t.Helper()
		do(t, "open "+path, chromedp.Navigate(demo.url+path), chromedp.WaitVisible(chromedp.CSS(sel)))
	}
	darkMode(t, false)

	compID := ""
	t.Run("the home page lists the demo competition", func(t *testing.T) {
		open(t, "/", "#competitions")
		title := text(t, "#competitions tbody th a")
		href := evalJS[string](t, b, `document.querySelector('#competitions tbody th a').getAttribute('href')`)
		if title != "Social IQa sample (demo)" || !strings.HasPrefix(href, "/c/") {
			t.Fatalf("first competition %q at %q, want the demo's", title, href)
		}
		if !evalJS[bool](t, b, `typeof htmx === 'object'`) {
			t.Fatal("htmx did not load from /static/htmx.min.js")
		}
		compID = strings.TrimPrefix(href, "/c/")
		screenshot(t, "01-competitions")
	})
	if compID == "" {
		t.FailNow()
	}

	t.Run("the keyboard reaches the skip link first", func(t *testing.T) {
		open(t, "/", "#competitions")
		do(t, "press Tab", chromedp.KeyEvent(kb.Tab))
		if focused := evalJS[string](t, b, `document.activeElement.textContent.trim()`); focused != "Skip to content" {
			t.Fatalf("first Tab focuses %q, want the skip link", focused)
		}
	})

	t.Run("the competition page ranks the baselines as the demo did", func(t *testing.T) {
		open(t, "/c/"+compID, "#leaderboard")
		names := evalJS[[]string](t, b, `[...document.querySelectorAll('#leaderboard tbody th.name a')].map(a => a.textContent.trim())`)
		bars := evalJS[int](t, b, `document.querySelectorAll('#leaderboard svg.bar').length`)
		ties := evalJS[int](t, b, `document.querySelectorAll('#leaderboard tr.tie').length`)
		points := evalJS[int](t, b, `document.querySelectorAll('figure.chart g.point').length`)
		var want []string
		wantTies := 0
		for _, r := range demo.rows {
			want = append(want, r.Name)
			if r.Tie {
				wantTies++
			}
		}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Fatalf("leaderboard in the browser %v, want %v", names, want)
		}
		if bars != len(want) || points != len(want) || ties != wantTies {
			t.Fatalf("%d interval bars, %d chart points, %d tie rows; want %d, %d, %d", bars, points, ties, len(want), len(want), wantTies)
		}
		screenshot(t, "02-competition")
	})

	t.Run("the competition page has a dark scheme", func(t *testing.T) {
		darkMode(t, true)
		defer darkMode(t, false)
		open(t, "/c/"+compID, "#leaderboard")
		if bg := evalJS[string](t, b, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(20, 23, 26)" {
			t.Fatalf("dark background %s, want rgb(20, 23, 26)", bg)
		}
		screenshot(t, "03-competition-dark")
	})

	t.Run("the oracle's page shows its score card and paged items", func(t *testing.T) {
		open(t, "/s/"+demo.rows[0].SubmissionID, "#results")
		state, score := text(t, "[data-testid=state]"), text(t, "dl.card .big")
		rows := evalJS[int](t, b, `document.querySelectorAll('#results tbody tr').length`)
		if state != "scored" || score != "1.000" || rows != web.ResultsPerPage {
			t.Fatalf("state %q, score %q, %d result rows; want scored, 1.000, %d", state, score, rows, web.ResultsPerPage)
		}
		do(t, "open the first prompt",
			chromedp.Click(chromedp.CSS("#results tbody tr:first-child summary")),
			chromedp.WaitVisible(chromedp.CSS("#results tbody tr:first-child details pre")))
		screenshot(t, "04-submission-oracle")
		next := evalJS[string](t, b, `document.querySelector('.pager a[rel=next]').href`)
		do(t, "follow the next-page link", chromedp.Navigate(next), chromedp.WaitVisible(chromedp.CSS("#results")))
		if items := text(t, "#items-h + p"); !strings.HasPrefix(items, "Items 21–40 of 300") {
			t.Fatalf("second page says %q, want items 21–40 of 300", items)
		}
	})

	// A slow model: a submission that takes a few seconds to evaluate.
	ds, err := mcq.Parse(strings.NewReader(string(app.SampleDataset)), "siqa-sample")
	if err != nil {
		t.Fatal(err)
	}
	slow, err := mcqtest.New(mcqtest.Config{Policies: []string{"overlap"}, Key: ds, Delay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	slowSrv := httptest.NewServer(slow)
	defer slowSrv.Close()
	key, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Server: demo.url, Key: key})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a running submission's progress updates without a reload", func(t *testing.T) {
		sub, err := c.Submit(ctx, compID, apiv1.CreateSubmissionRequest{Name: "slow-overlap", BaseURL: slowSrv.URL + "/v1", Model: "baseline-overlap"})
		if err != nil {
			t.Fatal(err)
		}
		open(t, "/s/"+sub.ID, "[data-testid=progress-text]")
		first := text(t, "[data-testid=progress-text]")
		if strings.HasPrefix(first, "300 of 300") {
			t.Fatalf("the submission finished before the page loaded (%q); the model server is not slow enough to watch", first)
		}
		evalJS[bool](t, b, `window.crucibleSamePage = true`)
		waitFor(t, "the progress to move", fmt.Sprintf(`document.querySelector('[data-testid=progress-text]').textContent.trim() !== %q`, first))
		later := text(t, "[data-testid=progress-text]")
		if !evalJS[bool](t, b, `window.crucibleSamePage === true`) {
			t.Fatal("the page reloaded: progress must update in place")
		}
		t.Logf("progress went from %q to %q in place", first, later)
		screenshot(t, "05-submission-running")
		waitFor(t, "the evaluation to finish", `document.querySelector('[data-testid=state]').textContent.trim() === 'scored'`)
		do(t, "score card", chromedp.WaitVisible(chromedp.CSS("dl.card")))
		if !evalJS[bool](t, b, `window.crucibleSamePage === true && document.querySelector('#progress[hx-get]') === null`) {
			t.Fatal("after the evaluation the page was reloaded or still polls")
		}
		screenshot(t, "06-submission-finished-live")
		reload := evalJS[string](t, b, `document.querySelector('#progress .hint a').href`)
		do(t, "follow the reload link", chromedp.Navigate(reload), chromedp.WaitVisible(chromedp.CSS("#results")))
		if rows := evalJS[int](t, b, `document.querySelectorAll('#results tbody tr').length`); rows != web.ResultsPerPage {
			t.Fatalf("%d result rows after the reload, want %d", rows, web.ResultsPerPage)
		}
	})

	t.Run("a failed submission's page shows why", func(t *testing.T) {
		sub, err := c.Submit(ctx, compID, apiv1.CreateSubmissionRequest{Name: "wrong-model-name", BaseURL: slowSrv.URL + "/v1", Model: "no-such-model"})
		if err != nil {
			t.Fatal(err)
		}
		open(t, "/s/"+sub.ID, "#progress")
		waitFor(t, "the failure", `document.querySelector('.reason pre') !== null`)
		if reason := text(t, ".reason pre"); !strings.Contains(reason, `does not serve "no-such-model"`) {
			t.Fatalf("failure reason %q, want the submit check's refusal of the model name", reason)
		}
		screenshot(t, "07-submission-failed")
	})

	t.Run("an unknown submission is a readable 404 page", func(t *testing.T) {
		open(t, "/s/s-missing", "h1")
		if h1 := text(t, "h1"); !strings.HasPrefix(h1, "404") {
			t.Fatalf("heading %q, want a 404 page", h1)
		}
		screenshot(t, "08-not-found")
	})
}

// evalJS evaluates a JavaScript expression in the page and decodes its value.
func evalJS[T any](t *testing.T, b context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}
