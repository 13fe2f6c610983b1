package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/identity"
	"crucible/internal/store/storetest"
)

// TestAPredictionsCompetitionScoresFilesAndHidesItsTargets, on SQLite and
// PostgreSQL: a GSM8K task competition taking predictions publishes its
// prompts, refuses a malformed file with its line and a model, scores a
// file with the score `eval --predictions` gives, refuses the same file
// from another key, and ranks it. The attack: a competitor fetches every
// GET route of the API's OpenAPI document and every web page, before
// submitting and after its file is scored, and must find no target.
func TestAPredictionsCompetitionScoresFilesAndHidesItsTargets(t *testing.T) {
	dir := t.TempDir()
	preds, _, targets := gsm8kResponses(t, dir)
	rows := "../../internal/eval/task/testdata/gsm8k/test.jsonl"
	keys := map[string]string{}
	for _, who := range []string{"owner", "me", "copier"} {
		keys[who] = filepath.Join(dir, who+".key")
		if _, stderr, code := crucible(t, "keys", "new", "--out", keys[who]); code != 0 {
			t.Fatal(stderr)
		}
	}
	for _, db := range storetest.Databases(t) {
		t.Run(db.Name, func(t *testing.T) {
			url := serveInProcess(t, "--database", db.URL)
			create := func(extra ...string) (string, string, int) {
				return crucible(t, append([]string{"competition", "create", "--server", url, "--key", keys["owner"], "--kind", "task",
					"--title", "GSM8K, hidden", "--submissions", "predictions", "--json"}, extra...)...)
			}
			if _, stderr, code := create("--task", "social_iqa"); code == 0 || !strings.Contains(stderr, "generate_until tasks only") {
				t.Fatalf("a multiple_choice predictions competition: exit %d, %q; want it refused", code, stderr)
			}
			if _, stderr, code := create("--task", gsm8kTask, "--data", rows); code == 0 || !strings.Contains(stderr, "num_fewshot must be 0") {
				t.Fatalf("5-shot: exit %d, %q; want it refused (the examples are hidden rows)", code, stderr)
			}
			out, stderr, code := create("--task", gsm8kTask, "--data", rows, "--num-fewshot", "0")
			if code != 0 {
				t.Fatalf("competition create: exit %d: %s", code, stderr)
			}
			var comp competition.Competition
			if err := json.Unmarshal([]byte(out), &comp); err != nil || comp.Items != 10 {
				t.Fatalf("created %s, %v; want 10 items", out, err)
			}

			seen := fetchEverything(t, url, comp.ID, "")
			out, stderr, code = crucible(t, "task", "prompts", "--server", url, "--competition", comp.ID)
			if n := strings.Count(out, "\n"); code != 0 || n != 10 || !strings.Contains(out, `"doc_id":9`) || !strings.Contains(out, "John wins an award at work") {
				t.Fatalf("task prompts: exit %d, %d lines, %s; want the 10 prompts", code, n, stderr)
			}
			seen += out

			submit := func(key, file string) (string, string, int) {
				return crucible(t, "submit", "predictions", "--server", url, "--key", keys[key], "--competition", comp.ID, "--file", file, "--json")
			}
			bad := filepath.Join(dir, "bad.jsonl")
			lines := strings.SplitAfter(readFile(t, preds), "\n")
			if err := os.WriteFile(bad, []byte(lines[0]+lines[1]+lines[1]), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, stderr, code := submit("me", bad); code == 0 || !strings.Contains(stderr, "predictions.jsonl:3: doc_id 1 again (first on line 2)") {
				t.Fatalf("a duplicate doc_id: exit %d, %q; want it refused with its line", code, stderr)
			}
			if _, stderr, code := crucible(t, "submit", "model", "--server", url, "--key", keys["me"], "--competition", comp.ID,
				"--base-url", "http://127.0.0.1:1/v1", "--model", "m"); code == 0 || !strings.Contains(stderr, "predictions are required") {
				t.Fatalf("a model: exit %d, %q; want it refused", code, stderr)
			}
			out, stderr, code = submit("me", preds)
			var sub competition.Submission
			if code != 0 || json.Unmarshal([]byte(out), &sub) != nil || sub.Predictions == nil || sub.Predictions.Bytes != len(readFile(t, preds)) {
				t.Fatalf("submit predictions: exit %d, %s %s", code, out, stderr)
			}
			if _, stderr, code := submit("copier", preds); code == 0 || !strings.Contains(stderr, "409") || !strings.Contains(stderr, "copy of "+sub.ID) {
				t.Fatalf("the same file from another key: exit %d, %q; want a 409 naming the original", code, stderr)
			}

			key, err := identity.Load(keys["me"])
			if err != nil {
				t.Fatal(err)
			}
			c, err := client.New(client.Config{Server: url, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			subs, err := c.WaitScored(wctx, comp.ID, 50*time.Millisecond, nil)
			if err != nil || len(subs) != 1 || subs[0].State != competition.StateScored {
				t.Fatalf("submissions %+v, %v; want one scored", subs, err)
			}
			out, stderr, code = crucible(t, "leaderboard", "--server", url, "--competition", comp.ID, "--json")
			var lb []competition.Row
			if code != 0 || json.Unmarshal([]byte(out), &lb) != nil || len(lb) != 1 || lb[0].SubmissionID != sub.ID || lb[0].Score != 0.5 || lb[0].Correct != 5 {
				t.Fatalf("leaderboard: exit %d, %s %s; want the file at 0.5, as eval --predictions scores it", code, out, stderr)
			}

			// The same responses reordered are another file but still a copy
			// (competition.CopyRule over the preset's 50 rows): it earns nothing.
			out, stderr, code = create("--task", "gsm8k", "--num-fewshot", "0")
			var preset competition.Competition
			if code != 0 || json.Unmarshal([]byte(out), &preset) != nil || preset.Items != 50 {
				t.Fatalf("preset competition: exit %d, %s %s", code, out, stderr)
			}
			var file, reordered strings.Builder
			for i := range 30 {
				line := fmt.Sprintf(`{"doc_id": %d, "response": "#### %d"}`+"\n", i, i)
				file.WriteString(line)
				reordered.WriteString(fmt.Sprintf(`{"response": "#### %d", "doc_id": %d}`+"\n", 29-i, 29-i))
			}
			var ids []string
			for _, e := range [][2]string{{"me", file.String()}, {"copier", reordered.String()}} {
				who, text := e[0], e[1]
				path := filepath.Join(dir, who+"-preset.jsonl")
				if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
				out, stderr, code := crucible(t, "submit", "predictions", "--server", url, "--key", keys[who], "--competition", preset.ID, "--file", path, "--json")
				var s competition.Submission
				if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
					t.Fatalf("submit %s: exit %d, %s", who, code, stderr)
				}
				ids = append(ids, s.ID)
				// The later entry is the copy: wait for the first before the second.
				if _, err := c.WaitScored(wctx, preset.ID, 50*time.Millisecond, nil); err != nil {
					t.Fatal(err)
				}
			}
			out, stderr, code = crucible(t, "leaderboard", "--server", url, "--competition", preset.ID, "--json")
			lb = nil
			if code != 0 || json.Unmarshal([]byte(out), &lb) != nil || len(lb) != 2 {
				t.Fatalf("leaderboard: exit %d, %s %s", code, out, stderr)
			}
			for _, r := range lb {
				if want := map[string]string{ids[0]: "", ids[1]: ids[0]}[r.SubmissionID]; r.CopyOf != want {
					t.Errorf("leaderboard %s; want the reordered file marked a copy of the first", out)
				}
			}

			seen += fetchEverything(t, url, comp.ID, sub.ID)
			for i, tgt := range targets {
				first, _, _ := strings.Cut(tgt, "\n")
				if strings.Contains(seen, first) {
					t.Errorf("target %d (%q) is exposed", i, first)
				}
			}
			if !strings.Contains(seen, "John wins an award at work") || !strings.Contains(seen, sub.ID) {
				t.Errorf("the fetches saw neither the prompts nor the submission: nothing was checked")
			}
		})
	}
}

// fetchEverything GETs every route of the API's OpenAPI document, the
// competition's, submission sub's (if set) and pool's ids filled in, and
// the web pages of both, and returns all their text: JSON string values
// and unescaped HTML.
func fetchEverything(t *testing.T, url, comp, sub string) string {
	t.Helper()
	get := func(path string) []byte {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(get("/api/v1/openapi.json"), &doc); err != nil {
		t.Fatal(err)
	}
	fill := regexp.MustCompile(`\{[a-z_]+\}`)
	var paths []string
	for p, ops := range doc.Paths {
		if _, ok := ops["get"]; !ok || p == "/api/v1/openapi.json" {
			continue
		}
		id := comp
		if strings.HasPrefix(p, "/api/v1/submissions/") {
			id = sub
		}
		if id == "" {
			continue
		}
		paths = append(paths, fill.ReplaceAllString(strings.Replace(p, "{id}", id, 1), "0")+"?limit=1000")
	}
	paths = append(paths, "/", "/c/"+comp, "/c/"+comp+"/tasks", "/c/"+comp+"/leaderboard.csv")
	if sub != "" {
		paths = append(paths, "/s/"+sub, "/s/"+sub+"/progress")
	}
	var text strings.Builder
	for _, p := range paths {
		b := get(p)
		var v any
		if json.Unmarshal(b, &v) == nil {
			jsonStrings(v, &text)
		} else {
			text.WriteString(html.UnescapeString(string(b)))
		}
		text.WriteString("\n")
	}
	return text.String()
}

// jsonStrings writes every string (and object key) in v to w.
func jsonStrings(v any, w *strings.Builder) {
	switch x := v.(type) {
	case string:
		w.WriteString(x + "\n")
	case []any:
		for _, e := range x {
			jsonStrings(e, w)
		}
	case map[string]any:
		for k, e := range x {
			w.WriteString(k + "\n")
			jsonStrings(e, w)
		}
	}
}
