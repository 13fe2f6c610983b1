package main

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/competition"
	"crucible/internal/eval/preference"
)

// prefTasks are organic tasks whose responses are listed best first.
const prefTasks = `{"id":"capital","instruction":"What is the capital of France?","responses":["Paris is the capital of France.","The capital of France is Lyon.","France."]}
{"id":"sort","instruction":"How do I sort a list in Python?","responses":["Use sorted(xs) for a new list or xs.sort() to sort in place.","Use xs.sort().","Python cannot sort lists."]}
`

// bestFirst is the quality order of every response text above.
var bestFirst = map[string]int{
	"Paris is the capital of France.": 1, "The capital of France is Lyon.": 2, "France.": 3,
	"Use sorted(xs) for a new list or xs.sort() to sort in place.": 1, "Use xs.sort().": 2, "Python cannot sort lists.": 3,
}

func TestPreferenceCommandsOverARealServer(t *testing.T) {
	dir := t.TempDir()
	dataset := filepath.Join(dir, "tasks.jsonl")
	if err := os.WriteFile(dataset, []byte(prefTasks), 0o644); err != nil {
		t.Fatal(err)
	}
	server := serveInProcess(t)
	keys := map[string]string{}
	for _, who := range []string{"validator", "m1", "m2", "m3"} {
		keys[who] = filepath.Join(dir, who+".key")
		if _, stderr, code := crucible(t, "keys", "new", "--out", keys[who]); code != 0 {
			t.Fatal(stderr)
		}
	}

	var comp competition.Competition
	out, stderr, code := crucible(t, "competition", "create", "--kind", "preference", "--server", server, "--key", keys["validator"],
		"--dataset", dataset, "--title", "Helpful answers", "--ttl", "1h", "--json")
	if code != 0 {
		t.Fatal(stderr)
	}
	if err := json.Unmarshal([]byte(out), &comp); err != nil {
		t.Fatal(err)
	}
	if comp.Kind != preference.Name || comp.Items != 2 {
		t.Fatalf("competition %+v", comp)
	}

	t.Run("competition show prints the scoring rules", func(t *testing.T) {
		out, stderr, code := crucible(t, "competition", "show", "--server", server, "--competition", comp.ID)
		if code != 0 || !strings.Contains(out, "KappaThreshold") && !strings.Contains(out, "kappa") || !strings.Contains(out, "organic") {
			t.Fatalf("exit %d\n%s%s", code, out, stderr)
		}
	})
	t.Run("a bad dataset line is reported with its number", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.jsonl")
		if err := os.WriteFile(bad, []byte(prefTasks+`{"id":"x","instruction":"i","responses":["only one"]}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := crucible(t, "competition", "create", "--kind=preference", "--server", server, "--key", keys["validator"],
			"--dataset", bad, "--title", "Bad")
		if code != 1 || !strings.Contains(stderr, "line 3") {
			t.Fatalf("exit %d, %q", code, stderr)
		}
	})

	secrets := map[string]string{}
	for _, m := range []string{"m1", "m2", "m3"} {
		out, stderr, code := crucible(t, "keys", "contributor", "new", "--server", server, "--miner-key", keys[m], "--label", "person-"+m, "--json")
		if code != 0 {
			t.Fatal(stderr)
		}
		var nk apiv1.NewContributorKey
		if err := json.Unmarshal([]byte(out), &nk); err != nil || !strings.HasPrefix(nk.Secret, "cck_") {
			t.Fatalf("new key %s: %v", out, err)
		}
		secrets[m] = nk.Secret
		if _, stderr, code := crucible(t, "preference", "copies", "--server", server, "--key", keys[m], "--competition", comp.ID); code != 0 {
			t.Fatal(stderr)
		}
	}
	t.Run("contributor keys are listed without secrets and revoked", func(t *testing.T) {
		out, stderr, code := crucible(t, "keys", "contributor", "new", "--server", server, "--miner-key", keys["m1"], "--json")
		if code != 0 {
			t.Fatal(stderr)
		}
		var extra apiv1.NewContributorKey
		_ = json.Unmarshal([]byte(out), &extra)
		if _, stderr, code := crucible(t, "keys", "contributor", "revoke", "--server", server, "--miner-key", keys["m1"], "--id", extra.ID); code != 0 {
			t.Fatal(stderr)
		}
		out, stderr, code = crucible(t, "keys", "contributor", "list", "--server", server, "--miner-key", keys["m1"])
		if code != 0 || !strings.Contains(out, "person-m1") || strings.Contains(out, "cck_") || strings.Count(out, "\n") != 3 {
			t.Fatalf("exit %d\n%s%s", code, out, stderr)
		}
		if _, stderr, code := crucible(t, "keys", "contributor", "revoke", "--server", server, "--miner-key", keys["m2"], "--id", extra.ID); code != 1 || !strings.Contains(stderr, "404") {
			t.Fatalf("another miner revoking: exit %d, %q", code, stderr)
		}
	})

	// Each miner's contributor ranks every task on /label by quality, seeing
	// the miner's own shuffled, reformatted copy.
	for _, m := range []string{"m1", "m2", "m3"} {
		labelAll(t, server, secrets[m])
	}

	// The attack: a labeller (or anyone) reads the open tasks' synthetic
	// ground truth through a public preview, or probes it one rating at a
	// time through the previewed scores. Open tasks are sealed: the public
	// routes refuse a preview, and the signed one is for the creator.
	t.Run("open tasks' ground truth is not readable before the deadline", func(t *testing.T) {
		for _, path := range []string{"/preference/export?format=rankings&preview=true", "/preference/epoch?preview=true"} {
			resp, err := http.Get(server + "/api/v1/competitions/" + comp.ID + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || strings.Contains(string(body), "ground_truth") || strings.Contains(string(body), "kappa") {
				t.Fatalf("anonymous GET %s: %d %s; want 403 and nothing scored", path, resp.StatusCode, body)
			}
		}
		for _, args := range [][]string{
			{"preference", "score", "--server", server, "--competition", comp.ID, "--preview", "--key", keys["m1"]},
			{"export", "preferences", "--server", server, "--competition", comp.ID, "--format", "rankings", "--preview", "--key", keys["m1"]},
		} {
			if out, stderr, code := crucible(t, args...); code == 0 || !strings.Contains(stderr, "403") || strings.Contains(out, "ground_truth") {
				t.Fatalf("a miner's preview %v: exit %d, %q %q; want 403", args[:2], code, out, stderr)
			}
		}
		if _, stderr, code := crucible(t, "preference", "score", "--server", server, "--competition", comp.ID, "--preview"); code == 0 || !strings.Contains(stderr, "--key") {
			t.Fatalf("an unsigned preview: exit %d, %q; want a request for --key", code, stderr)
		}
	})
	t.Run("preference score trusts the agreeing miners", func(t *testing.T) {
		out, stderr, code := crucible(t, "preference", "score", "--server", server, "--competition", comp.ID, "--preview", "--key", keys["validator"], "--json")
		if code != 0 {
			t.Fatal(stderr)
		}
		var rep apiv1.PreferenceEpoch
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Epoch.Miners) != 3 || rep.Open != 2 {
			t.Fatalf("epoch %+v", rep)
		}
		for _, m := range rep.Epoch.Miners {
			if !m.Trusted || m.Reward <= 0 || m.Tasks != 2 {
				t.Fatalf("miner %+v: want trusted with a reward for 2 tasks", m)
			}
		}
		if out, _, _ := crucible(t, "preference", "score", "--server", server, "--competition", comp.ID); !strings.Contains(out, "0 closed, 2 open") {
			t.Fatalf("the closed-only epoch should say both tasks are open:\n%s", out)
		}
		for _, format := range []string{"dpo", "csv"} {
			if out, stderr, code := crucible(t, "export", "preferences", "--server", server, "--competition", comp.ID, "--format", format); code != 1 || !strings.Contains(stderr, "nothing to export") {
				t.Fatalf("export %s with nothing closed: exit %d, %q %q; want exit 1 saying why it is empty", format, code, out, stderr)
			}
		}
	})
	t.Run("the DPO export round-trips with every pair, best response chosen", func(t *testing.T) {
		out, stderr, code := crucible(t, "export", "preferences", "--server", server, "--competition", comp.ID, "--format", "dpo", "--preview", "--key", keys["validator"])
		if code != 0 {
			t.Fatal(stderr)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 6 {
			t.Fatalf("%d pairs, want 3 per task:\n%s", len(lines), out)
		}
		for _, l := range lines {
			var p preference.DPOPair
			if err := json.Unmarshal([]byte(l), &p); err != nil {
				t.Fatal(err)
			}
			if bestFirst[p.Chosen] == 0 || bestFirst[p.Chosen] >= bestFirst[p.Rejected] {
				t.Fatalf("pair chooses %q over %q", p.Chosen, p.Rejected)
			}
		}
		out, _, _ = crucible(t, "export", "preferences", "--server", server, "--competition", comp.ID, "--format", "dpo", "--pairs", "adjacent", "--preview", "--key", keys["validator"])
		if n := strings.Count(out, "\n"); n != 4 {
			t.Fatalf("%d adjacent pairs, want 2 per task", n)
		}
	})
	t.Run("the CSV export has a row per response", func(t *testing.T) {
		out, stderr, code := crucible(t, "export", "preferences", "--server", server, "--competition", comp.ID, "--format", "csv", "--preview", "--key", keys["validator"])
		if code != 0 {
			t.Fatal(stderr)
		}
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil || len(rows) != 7 || rows[0][0] != "task_id" {
			t.Fatalf("csv %d rows, %v:\n%s", len(rows), err, out)
		}
	})
	t.Run("preference close waits for the deadlines, and a reward needs funds", func(t *testing.T) {
		_, stderr, code := crucible(t, "preference", "close", "--server", server, "--competition", comp.ID, "--key", keys["validator"])
		if code != 1 || !strings.Contains(stderr, "open until") {
			t.Fatalf("an early close: exit %d, %q", code, stderr)
		}
		_, stderr, code = crucible(t, "competition", "create", "--kind", "preference", "--server", server, "--key", keys["m1"],
			"--dataset", dataset, "--title", "Unfunded", "--reward", "100", "--asset", "USDC")
		if code != 1 || !strings.Contains(stderr, "insufficient") {
			t.Fatalf("an unfunded reward: exit %d, %q", code, stderr)
		}
	})
	t.Run("the leaderboard marks a copy", func(t *testing.T) {
		var b strings.Builder
		printLeaderboard(&b, []competition.Row{{Rank: 1, SubmissionID: "s-a", Name: "original"}, {Rank: 2, SubmissionID: "s-b", Name: "clone", CopyOf: "s-a"}})
		if lines := strings.Split(b.String(), "\n"); !strings.HasSuffix(strings.TrimSpace(lines[2]), "copy of s-a") || strings.Contains(lines[1], "copy") {
			t.Fatalf("leaderboard:\n%s", b.String())
		}
	})
	t.Run("an unknown export format is a usage error", func(t *testing.T) {
		if _, stderr, code := crucible(t, "export", "preferences", "--competition", comp.ID, "--format", "xml"); code != 2 || !strings.Contains(stderr, "dpo") {
			t.Fatalf("exit %d, %q", code, stderr)
		}
	})
}

// labelAll logs in on /label with a contributor key and ranks every open
// task by quality through the rank selects, as a browser without
// JavaScript would.
func labelAll(t *testing.T, server, secret string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := hc.PostForm(server+"/label/login", url.Values{"key": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for range 2 {
		resp, err := hc.Get(server + "/label")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		form := url.Values{}
		form.Set("competition", attr(t, string(page), `name="competition" value="`))
		form.Set("task", attr(t, string(page), `name="task" value="`))
		// Each response is an <li data-id=...> with its text in .response-text.
		rest := string(page)
		for {
			i := strings.Index(rest, `<li class="response" data-id="`)
			if i < 0 {
				break
			}
			rest = rest[i:]
			id := attr(t, rest, `data-id="`)
			text := between(rest, `<div class="response-text">`, `</div>`)
			rank := bestFirst[strings.Join(strings.Fields(unescape(text)), " ")]
			if rank == 0 {
				t.Fatalf("unknown response text %q", text)
			}
			form.Set("rank_"+id, strconv.Itoa(rank))
			rest = rest[1:]
		}
		resp, err = hc.PostForm(server+"/label/submit", form)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "was recorded") {
			t.Fatalf("submit %v: %s", form, body)
		}
	}
}

func attr(t *testing.T, s, prefix string) string {
	t.Helper()
	i := strings.Index(s, prefix)
	if i < 0 {
		t.Fatalf("no %s in the page", prefix)
	}
	s = s[i+len(prefix):]
	return s[:strings.Index(s, `"`)]
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	return s[:strings.Index(s, b)]
}

func unescape(s string) string {
	return strings.NewReplacer("&#39;", "'", "&#34;", `"`, "&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(s)
}
