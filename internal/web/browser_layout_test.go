package web_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/patch"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// addPatchCompetition stores a code-fix competition of one task with one
// resolved submission.
func addPatchCompetition(t *testing.T, db *store.DB) (comp, sub string) {
	t.Helper()
	ctx := context.Background()
	item, _ := json.Marshal(map[string]any{"instance_id": "calc-1", "repo": "sha256:" + strings.Repeat("ab", 32), "base_commit": strings.Repeat("c", 40),
		"problem_statement": "Add(1, 2) returns -1: the sign of the second operand is flipped somewhere in the parser.", "patch": "+fix", "test_patch": "+test",
		"FAIL_TO_PASS": []string{"TestAdd"}, "PASS_TO_PASS": []string{"TestSub"}, "test_cmd": []string{"go", "test", "./..."}, "log_parser": "gotest"})
	c := competition.Competition{ID: "c-fix", Kind: patch.Name, Title: "calc fixes", Config: json.RawMessage(`{}`),
		DatasetName: "tasks", DatasetDigest: strings.Repeat("ab", 32), Items: 1, CreatedBy: "ed25519:owner", CreatedAt: t0}
	if err := db.CreateCompetition(ctx, c, []json.RawMessage{item}); err != nil {
		t.Fatal(err)
	}
	s := competition.Submission{ID: "s-fix", CompetitionID: c.ID, Name: "calc-1", Submitter: "ed25519:alice0123456789abcdef",
		Patch: &competition.PatchSpec{Task: "calc-1", Diff: "diff --git a/calc.go b/calc.go\n-\treturn a - b\n+\treturn a + b\n"}, Digest: strings.Repeat("cd", 32),
		CommittedAt: t0.Add(time.Minute), State: competition.StateQueued, ItemsTotal: 1, UpdatedAt: t0}
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, s, "") }); err != nil {
		t.Fatal(err)
	}
	verdict, _ := json.Marshal(map[string]any{"applied": true, "apply_method": "git apply", "resolved": true,
		"FAIL_TO_PASS": map[string]string{"TestAdd": "PASSED"}, "PASS_TO_PASS": map[string]string{"TestSub": "PASSED"},
		"log": []string{"checkout: fine", "go test ./...: ok"}})
	r := eval.Result{Index: 0, Prompt: "statement", Response: s.Patch.Diff, Prediction: "resolved", Correct: true, Score: 0.9, Started: t0, Ended: t0, Detail: verdict}
	if err := db.InsertResult(ctx, s.ID, r); err != nil {
		t.Fatal(err)
	}
	card := competition.NewCard([]float64{0.9}, 1)
	if _, err := storetest.SetState(ctx, db, s.ID, competition.StateScored, "", &card, t0); err != nil {
		t.Fatal(err)
	}
	return c.ID, s.ID
}

// TestBrowserLayoutHasNoHorizontalOverflow opens every kind of page at a
// desktop (1280 px) and a phone (390 px) width in one headless Chromium:
// no page may scroll sideways (tables turn into cards or scroll inside
// their own box), and each is saved as testout/screenshots/<page>-<width>.png
// for people to look at.
func TestBrowserLayoutHasNoHorizontalOverflow(t *testing.T) {
	if findChromium() == "" || testing.Short() {
		newBrowserSession(t, context.Background(), "") // skips with the reason
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// One store with an mcq, a roleplay and a code-fix competition; the pool
	// fixture for pools, epochs and validators; the label fixture for /label
	// and a preference competition.
	f := newFixture(t)
	addRoleplay(t, f.db)
	fixComp, fixSub := addPatchCompetition(t, f.db)
	main := newServer(t, f.db).URL
	pools := newPoolFixture(t)
	pools.clock.Set(poolStart.Add(11 * time.Hour))
	poolSrv := pools.server(t).URL
	lab := newLabelFixture(t)
	labSrv := lab.server.URL

	type page struct {
		name, url, sel string
	}
	pages := []page{
		{"home", main + "/", "#competitions"},
		{"competition-mcq", main + "/c/" + f.comp, "#leaderboard"},
		{"competition-mcq-sorted", main + "/c/" + f.comp + "?sort=submitter&dir=asc", "#leaderboard"},
		{"competition-roleplay", main + "/c/" + roleplayComp, "#leaderboard"},
		{"competition-patch", main + "/c/" + fixComp, "#leaderboard"},
		{"tasks-patch", main + "/c/" + fixComp + "/tasks", "h1"},
		{"submission-mcq", main + "/s/" + f.best, "#results"},
		{"submission-failed", main + "/s/" + f.failed, ".reason"},
		{"submission-running", main + "/s/" + f.running, "#progress"},
		{"submission-roleplay", main + "/s/s-rp-alice", "#progress"},
		{"submission-patch", main + "/s/" + fixSub, "#verdict"},
		{"not-found", main + "/s/s-missing", "h1"},
		{"home-pools", poolSrv + "/", "#pools"},
		{"pool-settled", poolSrv + "/c/" + pools.settled, "#payouts"},
		{"pool-running", poolSrv + "/c/" + pools.open, "#leaderboard"},
		{"pool-upcoming", poolSrv + "/c/" + pools.upcoming, "h1"},
		{"epochs-validators", poolSrv + "/epochs", "#consensus-miners"},
		{"epoch", poolSrv + "/epochs/" + pools.epochComp, "figure.weights"},
		{"competition-preference", labSrv + "/c/" + lab.comp.ID, "h1"},
		{"label-login", labSrv + "/label", "#login"},
	}
	s := newBrowserSession(t, ctx, "")
	s.scheme(t, false)
	for _, width := range []int64{1280, 390} {
		_, err := chromedp.Call(s.b, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: width, Height: 900, DeviceScaleFactor: 1, Mobile: width < 600})
		if err != nil {
			t.Fatalf("emulate a %d px screen: %v", width, err)
		}
		for _, p := range pages {
			t.Run(fmt.Sprintf("%s at %d px", p.name, width), func(t *testing.T) {
				s.do(t, "open "+p.url, chromedp.Navigate(p.url), chromedp.WaitVisible(chromedp.CSS(p.sel)))
				// A phone widens its layout viewport to fit content that
				// overflows, so innerWidth is checked too, not only against it.
				scroll, inner := evalJS[int](t, s.b, `document.scrollingElement.scrollWidth`), evalJS[int](t, s.b, `innerWidth`)
				if scroll > inner || int64(inner) != width {
					wide := evalJS[[]string](t, s.b, fmt.Sprintf(`[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > %d + 1).slice(-5).map(e => e.tagName + '.' + e.className + ': ' + e.textContent.trim().slice(0, 40))`, width))
					t.Errorf("the page scrolls sideways: %d px wide, window %d px, want %d; too wide: %q", scroll, inner, width, wide)
				}
				s.screenshot(t, fmt.Sprintf("%s-%d", p.name, width))
			})
		}
	}
	t.Run("a logged-in labeller's task at 390 px", func(t *testing.T) {
		s.do(t, "log in", chromedp.Navigate(labSrv+"/label"), chromedp.WaitVisible(chromedp.CSS("#key")),
			chromedp.SendKeys(chromedp.CSS("#key"), lab.key), chromedp.Submit(chromedp.CSS("#key")),
			chromedp.WaitVisible(chromedp.CSS("[data-testid=contributor]")))
		if scroll := evalJS[int](t, s.b, `document.scrollingElement.scrollWidth`); scroll > 390 {
			t.Errorf("the labelling page scrolls sideways: %d px wide", scroll)
		}
		s.screenshot(t, "label-task-390")
	})
}
