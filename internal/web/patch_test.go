package web_test

import (
	"context"
	"crucible/internal/eval/patch"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/store/storetest"
)

// A code-fix competition's pages: the tasks page shows statements and the
// checkout command but never a task's reference fix or test patch; the
// leaderboard ranks submitters by % resolved; a submission's page shows the
// verdict, each deciding test and the judge's log, escaped.
func TestPatchCompetitionPages(t *testing.T) {
	ctx := context.Background()
	db := newStore(t)
	const secretFix, secretTest = "+\treturn a + b // SECRET-FIX", "+func TestAdd(t *testing.T) { // SECRET-TEST"
	task := func(id, statement string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"instance_id": id, "repo": "sha256:" + strings.Repeat("ab", 32), "base_commit": strings.Repeat("c", 40),
			"problem_statement": statement, "patch": secretFix, "test_patch": secretTest,
			"FAIL_TO_PASS": []string{"TestAdd"}, "PASS_TO_PASS": []string{"TestSub"}, "test_cmd": []string{"go", "test", "./..."}, "log_parser": "gotest"})
		return b
	}
	c := competition.Competition{ID: "c-fix", Kind: patch.Name, Title: "calc fixes", Config: json.RawMessage(`{}`),
		DatasetName: "tasks", DatasetDigest: strings.Repeat("ab", 32), Items: 2, CreatedBy: "k-owner", CreatedAt: t0}
	if err := db.CreateCompetition(ctx, c, []json.RawMessage{task("calc-1", "Add(1, 2) = -1 <script>x</script>"), task("calc-2", "Mul is wrong")}); err != nil {
		t.Fatal(err)
	}
	verdict := func(resolved bool, status string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"applied": true, "apply_method": "git apply", "resolved": resolved,
			"FAIL_TO_PASS": map[string]string{"TestAdd": status}, "PASS_TO_PASS": map[string]string{"TestSub": "PASSED"},
			"log": []string{"checkout: fine", "test: <b>log</b> line"}})
		return b
	}
	submit := func(id, taskID string, resolved bool, status string, at int) {
		sub := competition.Submission{ID: id, CompetitionID: c.ID, Name: taskID, Submitter: "k-alice-0123456789abcdef",
			Patch: &competition.PatchSpec{Task: taskID, Diff: "diff --git a/calc.go b/calc.go\n"}, Digest: strings.Repeat("cd", 32),
			CommittedAt: t0.Add(time.Duration(at) * time.Minute), State: competition.StateQueued, ItemsTotal: 1, UpdatedAt: t0}
		if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, sub, "") }); err != nil {
			t.Fatal(err)
		}
		r := eval.Result{Index: 0, Prompt: "statement", Response: sub.Patch.Diff, Prediction: "unresolved", Correct: resolved, Started: t0, Ended: t0, Detail: verdict(resolved, status)}
		if resolved {
			r.Prediction, r.Score = "resolved", 0.9
		}
		if err := db.InsertResult(ctx, id, r); err != nil {
			t.Fatal(err)
		}
		scores, n, err := db.ItemScores(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		card := competition.NewCard(scores, n)
		if _, err := storetest.SetState(ctx, db, id, competition.StateScored, "", &card, t0); err != nil {
			t.Fatal(err)
		}
	}
	submit("s-good", "calc-1", true, "PASSED", 1)
	submit("s-bad", "calc-2", false, "FAILED", 2)
	srv := newServer(t, db)

	code, body := get(t, srv.URL+"/c/c-fix/tasks")
	if code != 200 {
		t.Fatalf("tasks page: %d %s", code, body)
	}
	for _, want := range []string{"calc-1", "calc-2", "Add(1, 2) = -1 &lt;script&gt;x&lt;/script&gt;", "Mul is wrong", "TestAdd", "TestSub",
		"crucible patch checkout --server URL --competition c-fix --task calc-1 --dir calc-1", strings.Repeat("c", 40)} {
		if !strings.Contains(body, want) {
			t.Errorf("tasks page lacks %q", want)
		}
	}
	code, board := get(t, srv.URL+"/c/c-fix")
	if code != 200 || !strings.Contains(board, `href="/c/c-fix/tasks"`) || !strings.Contains(board, "50.0% resolved") || !strings.Contains(board, "1 / 2") {
		t.Errorf("competition page: %d, want a tasks link and the submitter at 1 / 2 (50.0%% resolved)\n%s", code, board)
	}
	code, good := get(t, srv.URL+"/s/s-good")
	if code != 200 || !strings.Contains(good, "✓ resolved") || !strings.Contains(good, "&lt;b&gt;log&lt;/b&gt; line") || !strings.Contains(good, `<span class="verdict ok">PASSED</span>`) {
		t.Errorf("resolved submission page: %d\n%s", code, good)
	}
	code, bad := get(t, srv.URL+"/s/s-bad")
	if code != 200 || !strings.Contains(bad, "✗ unresolved") || !strings.Contains(bad, `<span class="verdict bad">FAILED</span>`) {
		t.Errorf("unresolved submission page: %d\n%s", code, bad)
	}
	for page, b := range map[string]string{"tasks": body, "competition": board, "submission": good} {
		if strings.Contains(b, "SECRET-FIX") || strings.Contains(b, "SECRET-TEST") {
			t.Errorf("the %s page shows the reference fix or the test patch", page)
		}
	}
	if code, _ := get(t, srv.URL+"/c/nope/tasks"); code != 404 {
		t.Errorf("tasks of an unknown competition: %d, want 404", code)
	}
}
