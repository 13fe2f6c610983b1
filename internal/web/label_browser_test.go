package web_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestLabelBrowser drives /label in headless Chromium with the keyboard
// only: it logs in with a contributor key, moves the last response to the
// top with its Move up button, submits, checks the stored (de-obfuscated)
// ranking, scores the next task with a slider, and checks that a
// submission after the deadline is refused. Screenshots go to
// testout/screenshots/label-*.png.
func TestLabelBrowser(t *testing.T) {
	chromium := findChromium()
	if chromium == "" {
		t.Skipf("browser test skipped: no Chromium found (install Debian's chromium, or set %s to a Chrome/Chromium binary)", EnvChromium)
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	shots := screenshotDir(t)
	f := newLabelFixture(t)

	// Bounded waits only: the test fails rather than hangs, and asserts no timing.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := startChromium(t, ctx, chromium, 1100, 900)
	do := func(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(b, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
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
	shownOrder := func(t *testing.T) []string {
		t.Helper()
		return evalJS[[]string](t, b, `[...document.querySelectorAll('#ranking > li')].map(li => li.dataset.id)`)
	}
	selected := func(t *testing.T) []string {
		t.Helper()
		return evalJS[[]string](t, b, `[...document.querySelectorAll('#ranking select.rank')].map(s => s.value)`)
	}

	t.Run("a contributor logs in with the keyboard", func(t *testing.T) {
		do(t, "open /label", chromedp.Navigate(f.server.URL+"/label"), chromedp.WaitVisible(chromedp.CSS("#key")))
		do(t, "type the key and press Enter",
			chromedp.Focus(chromedp.CSS("#key")),
			chromedp.SendKeys(chromedp.CSS("#key"), f.key),
			chromedp.KeyEvent(kb.Enter),
			chromedp.WaitVisible(chromedp.CSS("#ranking")))
		if cookie := evalJS[string](t, b, `document.cookie`); strings.Contains(cookie, "cck_") {
			t.Fatalf("the key is readable from JavaScript: %q", cookie)
		}
	})

	var before []string
	t.Run("the keyboard moves the last response to the top", func(t *testing.T) {
		before = shownOrder(t)
		if len(before) != 3 {
			t.Fatalf("%d responses shown, want 3", len(before))
		}
		if !evalJS[bool](t, b, `[...document.querySelectorAll('button.move')].every(b => !b.hidden)`) {
			t.Fatal("the Move buttons stay hidden: label.js did not run")
		}
		last := `#ranking > li:last-child button.move[data-move="-1"]`
		do(t, "focus the last response's Move up", chromedp.Focus(chromedp.CSS(last)))
		do(t, "press Enter twice", chromedp.KeyEvent(kb.Enter), chromedp.KeyEvent(kb.Enter))
		want := []string{before[2], before[0], before[1]}
		if got := shownOrder(t); !slices.Equal(got, want) {
			t.Fatalf("order after two Move up: %v, want %v", got, want)
		}
		if got := selected(t); !slices.Equal(got, []string{"1", "2", "3"}) {
			t.Fatalf("rank selects %v, want 1, 2, 3 in the new order", got)
		}
		if focused := evalJS[string](t, b, `document.activeElement.closest('li').dataset.id`); focused != before[2] {
			t.Fatalf("focus moved to %s, want it to stay on the moved response %s", focused, before[2])
		}
		do(t, "Alt+Down moves the second response down",
			chromedp.Focus(chromedp.CSS(`#ranking > li:nth-child(2) select.rank`)),
			chromedp.KeyEvent(kb.ArrowDown, chromedp.KeyModifiers(chromedp.ModifierAlt)))
		want = []string{before[2], before[1], before[0]}
		if got := shownOrder(t); !slices.Equal(got, want) {
			t.Fatalf("order after Alt+Down: %v, want %v", got, want)
		}
		if got := selected(t); !slices.Equal(got, []string{"1", "2", "3"}) {
			t.Fatalf("rank selects after Alt+Down %v, want 1, 2, 3", got)
		}
		screenshot(t, "label-01-ranking")
	})
	t.Run("submitting stores the ranking in canonical order", func(t *testing.T) {
		final := shownOrder(t)
		do(t, "submit with the keyboard",
			chromedp.Focus(chromedp.CSS(`#label-form button[type=submit]`)),
			chromedp.KeyEvent(kb.Enter),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=notice]`)))
		cp, err := f.svc.Copy(context.Background(), f.comp.ID, f.shown["rank-me"], labelMiner)
		if err != nil {
			t.Fatal(err)
		}
		shownIndex := map[string]int{}
		for i, r := range cp.Responses {
			shownIndex[r.ID] = i
		}
		want := make([]int, 3)
		for rank, id := range final {
			want[cp.Perm[shownIndex[id]]] = rank + 1
		}
		ratings, err := f.db.PreferenceRatings(context.Background(), f.comp.ID)
		if err != nil || len(ratings) != 1 {
			t.Fatalf("ratings %+v %v", ratings, err)
		}
		if !slices.Equal(ratings[0].Values, want) {
			t.Fatalf("stored %v, want %v (the browser order %v mapped to canonical)", ratings[0].Values, want, final)
		}
	})
	t.Run("a slider scores with the arrow keys", func(t *testing.T) {
		do(t, "wait for the scoring task", chromedp.WaitVisible(chromedp.CSS(`#scores`)))
		do(t, "raise the first score", chromedp.Focus(chromedp.CSS(`#scores input[type=range]`)),
			chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(kb.ArrowRight))
		if v := evalJS[string](t, b, `document.querySelector('#scores output').value`); v != "8" {
			t.Fatalf("slider shows %s after three Right arrows from 5, want 8", v)
		}
		screenshot(t, "label-02-scores")
	})
	t.Run("a submission after the deadline is refused", func(t *testing.T) {
		f.clk.Set(f.comp.CreatedAt.Add(3 * time.Hour))
		do(t, "submit late",
			chromedp.Focus(chromedp.CSS(`#label-form button[type=submit]`)),
			chromedp.KeyEvent(kb.Enter),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=problem]`)))
		msg := evalJS[string](t, b, `document.querySelector('[data-testid=problem]').textContent`)
		if !strings.Contains(msg, "Too late") || !strings.Contains(msg, "not recorded") {
			t.Fatalf("late message %q", msg)
		}
		if ratings, _ := f.db.PreferenceRatings(context.Background(), f.comp.ID); len(ratings) != 1 {
			t.Fatalf("%d ratings stored, want only the in-time one", len(ratings))
		}
		screenshot(t, "label-03-late")
	})
}
