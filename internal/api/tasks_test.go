package api

import (
	"context"
	"crucible/internal/eval/patch"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"crucible/internal/competition"
)

// The task listing is the public view of stored tasks: it never carries a
// task's reference fix or test patch, and only code-fix competitions have
// one.
func TestTaskListingHidesTheReferenceAndTestPatches(t *testing.T) {
	h := newTestHub(t, filepath.Join(t.TempDir(), "api.db"), Quotas{})
	item, _ := json.Marshal(map[string]any{"instance_id": "calc-1", "repo": "/srv/repos/calc", "base_commit": strings.Repeat("a", 40),
		"problem_statement": "Add is wrong", "patch": "+return a + b // SECRET-FIX", "test_patch": "+func TestAdd // SECRET-TEST",
		"FAIL_TO_PASS": `["TestAdd"]`, "PASS_TO_PASS": []string{"TestSub"}, "test_cmd": "go test ./...", "log_parser": "gotest"})
	created := h.clock.Now().UTC()
	c := competition.Competition{ID: "c-fix", Kind: patch.Name, Title: "fixes", Config: json.RawMessage(`{}`),
		DatasetName: "d", DatasetDigest: strings.Repeat("ab", 32), Items: 1, CreatedBy: "k", CreatedAt: created}
	if err := h.db.CreateCompetition(context.Background(), c, []json.RawMessage{item}); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, h.url+"/api/v1/competitions/c-fix/tasks")
	if code != http.StatusOK || strings.Contains(body, "SECRET") || strings.Contains(body, `"patch"`) || strings.Contains(body, "/srv/repos") {
		t.Fatalf("tasks: %d %s, want no reference fix, no test patch and no host path", code, body)
	}
	var tasks []map[string]any
	if err := json.Unmarshal([]byte(body), &tasks); err != nil || len(tasks) != 1 || tasks[0]["repo"] != "calc" ||
		tasks[0]["problem_statement"] != "Add is wrong" || tasks[0]["published_at"] != created.Format("2006-01-02T15:04:05Z07:00") {
		t.Fatalf("tasks %s (%v)", body, err)
	}
	if code, body := get(t, h.url+"/api/v1/competitions/c-fix/tasks/nope/tree"); code != http.StatusNotFound || !strings.Contains(body, "nope") {
		t.Errorf("tree of an unknown task: %d %s", code, body)
	}
	mcq := h.createCompetition(t, newKey(t))
	if code, body := get(t, h.url+"/api/v1/competitions/"+mcq+"/tasks"); code != http.StatusBadRequest || !strings.Contains(body, "code-fix") {
		t.Errorf("tasks of an mcq competition: %d %s", code, body)
	}
}
