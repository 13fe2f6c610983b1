package web_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/preference"
	"crucible/internal/eval/roleplay"
	"crucible/internal/seal"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
	"crucible/internal/web"
)

// roleplayFixture stores a roleplay competition with one scored submission
// whose items carry the judge's detail.
func roleplayFixture(t *testing.T, fresh bool) (*store.DB, competition.Competition) {
	t.Helper()
	ctx := context.Background()
	db := newStore(t)
	cfg := roleplay.CompetitionConfig{Seed: 7, Items: 2, Turns: 3, MaxTokens: 200, PersonaSet: "builtin", PersonaDigest: strings.Repeat("ef", 32),
		Generator: roleplay.EndpointSpec{Model: "gen"}, Reference: roleplay.EndpointSpec{Model: "ref"}, Judge: roleplay.EndpointSpec{Model: "judge"},
		Scoring: roleplay.DefaultScoring(), FreshItems: fresh, ContaminationThreshold: 0.2}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := competition.Competition{ID: "c-rp", Kind: roleplay.Name, Title: "Roleplay arena", Config: raw,
		DatasetName: "builtin", DatasetDigest: strings.Repeat("ab", 32), Items: 2, CreatedBy: "k-owner", CreatedAt: t0}
	if err := db.CreateCompetition(ctx, c, []json.RawMessage{json.RawMessage(`{}`), json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	sub := competition.Submission{ID: "s-rp", CompetitionID: c.ID, Name: "bard", Submitter: "k-bard",
		Model: competition.ModelSpec{BaseURL: "http://127.0.0.1:9/v1", Model: "bard"}, Digest: strings.Repeat("cd", 32),
		CommittedAt: t0, State: competition.StateQueued, ItemsTotal: 2, UpdatedAt: t0}
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, sub, "") }); err != nil {
		t.Fatal(err)
	}
	for i, r := range roleplayResults(t, "PRACTICE") {
		r.Index = i
		if err := db.InsertResult(ctx, sub.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	card := competition.NewCard([]float64{0.7, 0.6}, 2)
	if _, err := storetest.SetState(ctx, db, sub.ID, competition.StateScored, "", &card, t0); err != nil {
		t.Fatal(err)
	}
	return db, c
}

// roleplayResults are two judged items; tag marks their reference replies.
func roleplayResults(t *testing.T, tag string) []eval.Result {
	t.Helper()
	prompt, _ := json.Marshal([]map[string]string{
		{"role": "system", "content": "You are Mira, in a role-play chat. Persona: a lighthouse keeper."},
		{"role": "assistant", "content": "The lamp is lit."},
		{"role": "user", "content": "Who are you <b>really</b>?"},
	})
	detail, _ := json.Marshal(roleplay.Detail{ItemID: "i", Character: "Mira", Reference: tag + "-REFERENCE-REPLY",
		Judge:      roleplay.QualityVerdict{Scores: map[string]float64{"in_character": 8, "relevance": 7, "fluency": 9, "engagement": 6}, Rationale: "Stays in voice & answers."},
		Coherence:  roleplay.CoherenceVerdict{Coherent: true, Reason: "follows the chat"},
		Components: roleplay.Components{Quality: 0.7, Creativity: 0.9, Vibe: 1, Latency: 1, Coherence: 1}})
	var out []eval.Result
	for i := 0; i < 2; i++ {
		out = append(out, eval.Result{Index: i, Prompt: string(prompt), Response: "I keep the light, stranger.", Score: 0.7, Correct: true,
			Started: t0, Ended: t0.Add(time.Second), LatencyMS: 1000, Detail: detail})
	}
	return out
}

// A roleplay submission page shows each item as a chat: the character card
// collapsed, the turns and the reply as bubbles, the judge's grades and
// rationale; never the multiple-choice words or the raw JSON prompt. Its
// competition page describes the configuration line by line.
func TestRoleplayPagesShowChats(t *testing.T) {
	db, _ := roleplayFixture(t, false)
	srv := newServer(t, db)
	code, body := get(t, srv.URL+"/s/s-rp")
	if code != 200 {
		t.Fatalf("submission page: %d\n%s", code, body)
	}
	for _, want := range []string{`class="chats"`, `<details class="chat-card"><summary>Character card`, `class="bubble bubble-user"`,
		`class="bubble bubble-assistant"`, `class="bubble bubble-reply"`, "Who are you &lt;b&gt;really&lt;/b&gt;?",
		"in character</dt><dd>8 / 10", "Stays in voice &amp; answers.", "follows the chat", "PRACTICE-REFERENCE-REPLY"} {
		if !strings.Contains(body, want) {
			t.Errorf("roleplay submission page lacks %q", want)
		}
	}
	for _, bad := range []string{"unparsed", "<dt>Correct</dt>", `[{&#34;role`, `"role":`, "✓ correct"} {
		if strings.Contains(body, bad) {
			t.Errorf("roleplay submission page shows %q", bad)
		}
	}
	code, comp := get(t, srv.URL+"/c/c-rp")
	if code != 200 {
		t.Fatalf("competition page: %d", code)
	}
	for _, want := range []string{"Scoring preset", "quality 0.8 · vibe 0.1", "Judge</dt>"} {
		if !strings.Contains(comp, want) {
			t.Errorf("roleplay competition page lacks %q", want)
		}
	}
	if strings.Contains(comp, `&#34;weights&#34;`) || strings.Contains(comp, `{&#34;`) {
		t.Error("roleplay competition page shows raw JSON configuration")
	}
}

// A preference competition's page ranks its contributors by agreement over
// the closed tasks (κ, Spearman, ICC), counts open and closed tasks, links
// to /label and never tells labelers to submit a model or that nothing is
// scored. An open task's ratings stay out of it until its deadline.
func TestPreferencePageShowsContributorsAndHowToLabel(t *testing.T) {
	ctx := context.Background()
	f := newLabelFixture(t)
	svc := f.svc
	keys := map[string]store.ContributorKey{}
	for _, m := range []string{"ed25519:m1", "ed25519:m2", "ed25519:m3"} {
		if _, err := svc.RequestCopies(ctx, f.comp.ID, m); err != nil {
			t.Fatal(err)
		}
		nk, err := svc.NewContributorKey(ctx, m, "")
		if err != nil {
			t.Fatal(err)
		}
		if keys[m], err = svc.Authenticate(ctx, nk.Secret); err != nil {
			t.Fatal(err)
		}
		for range 2 { // both tasks, in canonical order (every miner agrees)
			a, err := svc.Next(ctx, keys[m])
			if err != nil {
				t.Fatal(err)
			}
			cp, err := svc.Copy(ctx, a.CompetitionID, a.View.TaskID, m)
			if err != nil {
				t.Fatal(err)
			}
			values := make([]int, len(cp.Perm))
			for i, canon := range cp.Perm {
				if cp.Criteria == preference.CriteriaScore {
					values[i] = 10 - 3*canon
				} else {
					values[i] = canon + 1
				}
			}
			if _, err := svc.Submit(ctx, keys[m], a.CompetitionID, a.View.TaskID, values); err != nil {
				t.Fatal(err)
			}
		}
	}
	ui, err := web.New(web.Config{Store: seal.Public{DB: f.db}, Kinds: builtinKinds(t), Labeling: svc})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)

	_, open := get(t, srv.URL+"/c/"+f.comp.ID)
	if !strings.Contains(open, "0 tasks have closed and 2 are open") || strings.Contains(open, "ed25519:m1") {
		t.Errorf("before the deadline the page must count 2 open tasks and rank nobody\n%s", open)
	}
	f.clk.Advance(3 * time.Hour) // past the tasks' 2h deadline
	code, body := get(t, srv.URL+"/c/"+f.comp.ID)
	if code != 200 {
		t.Fatalf("preference page: %d\n%s", code, body)
	}
	for _, want := range []string{`id="preference-contributors"`, "ed25519:m1", "ed25519:m3", "κ", "Spearman ρ", "ICC(2,1)",
		"2 tasks have closed and 0 are open", `href="/label"`, "1.000"} {
		if !strings.Contains(body, want) {
			t.Errorf("preference page lacks %q", want)
		}
	}
	for _, bad := range []string{"submit model", "No submission has been scored yet", "once a submission has been scored"} {
		if strings.Contains(body, bad) {
			t.Errorf("preference page says %q", bad)
		}
	}
}

// operatorStore reads submissions unsealed, as an operator's view would:
// the only way a page is handed a patch's diff.
type operatorStore struct{ seal.Public }

func (s operatorStore) GetSubmission(ctx context.Context, id string) (competition.Submission, error) {
	return s.DB.GetSubmission(ctx, id)
}

// A patch's diff is coloured line by line where the store shows it, and
// the public page, whose store seals diffs, shows only its sha256 and size.
func TestPatchDiffIsColouredOnlyWhereTheSealShowsIt(t *testing.T) {
	ctx := context.Background()
	db := newStore(t)
	c := competition.Competition{ID: "c-fix", Kind: "patch", Title: "fixes", Config: json.RawMessage(`{}`),
		DatasetName: "tasks", DatasetDigest: strings.Repeat("ab", 32), Items: 1, CreatedBy: "k-owner", CreatedAt: t0}
	if err := db.CreateCompetition(ctx, c, []json.RawMessage{json.RawMessage(`{"instance_id":"t1"}`)}); err != nil {
		t.Fatal(err)
	}
	diff := "diff --git a/calc.go b/calc.go\n--- a/calc.go\n+++ b/calc.go\n@@ -1 +1 @@\n-return a - b\n+return a + b // <fix>\n"
	sub := competition.Submission{ID: "s-fix", CompetitionID: c.ID, Name: "t1", Submitter: "k-alice",
		Patch: &competition.PatchSpec{Task: "t1", Diff: diff}, Digest: strings.Repeat("cd", 32),
		CommittedAt: t0, State: competition.StateQueued, ItemsTotal: 1, UpdatedAt: t0}
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, sub, "") }); err != nil {
		t.Fatal(err)
	}
	_, public := get(t, newServer(t, db).URL+"/s/s-fix")
	if strings.Contains(public, "return a") || strings.Contains(public, "dl-add") || !strings.Contains(public, "sha256") {
		t.Errorf("the public page shows the sealed diff\n%s", public)
	}
	ui, err := web.New(web.Config{Store: operatorStore{seal.Public{DB: db}}, Kinds: builtinKinds(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)
	_, body := get(t, srv.URL+"/s/s-fix")
	for _, want := range []string{`<span class="dl dl-add">&#43;return a &#43; b // &lt;fix&gt;</span>`, `<span class="dl dl-del">-return a - b</span>`,
		`<span class="dl dl-hunk">@@ -1 &#43;1 @@</span>`, `<span class="dl dl-file">&#43;&#43;&#43; b/calc.go</span>`} {
		if !strings.Contains(body, want) {
			t.Errorf("operator's page lacks %s", want)
		}
	}
	for _, bad := range []string{"<dt>Model</dt>", "<dt>Server</dt>"} {
		if strings.Contains(body, bad) {
			t.Errorf("a patch page has an empty %s row", bad)
		}
	}
}

// A pool charts its payouts: before settlement as its rule would split the
// escrow over the public board, with no shake-up chart (the private ranks
// are sealed); after settlement what was paid and each entrant's move from
// public to private rank.
func TestPoolChartsPayoutsAndTheShakeUpOnlyAfterSettlement(t *testing.T) {
	f := newPoolFixture(t)
	f.clock.Set(poolStart.Add(11 * time.Hour))
	srv := f.server(t)
	_, open := get(t, srv.URL+"/c/"+f.open)
	if !strings.Contains(open, `id="payout-chart"`) || !strings.Contains(open, "Payouts if the private items ranked as the public board does") {
		t.Errorf("an open pool with a public board has no projected payout chart\n%s", open)
	}
	if strings.Contains(open, `id="shakeup-chart"`) || strings.Contains(open, "private rank") {
		t.Error("an open pool shows a public → private shake-up")
	}
	_, settled := get(t, srv.URL+"/c/"+f.settled)
	for _, want := range []string{`id="payout-chart"`, `<rect class="bar"`, `id="shakeup-chart"`, "public 1 → private 1", "baseline-oracle"} {
		if !strings.Contains(settled, want) {
			t.Errorf("a settled pool's page lacks %q", want)
		}
	}
	if strings.Contains(settled, "Payouts if the private items") {
		t.Error("a settled pool's payout chart is still a projection")
	}
}

// A fresh-items epoch's page shows nothing but the seed's commitment while
// the epoch runs — no reply, no reference reply — and once it has ended
// every model's chats with the reference replies they were judged against.
func TestFreshEpochPageRevealsReferenceRepliesOnlyAfterTheEpoch(t *testing.T) {
	ctx := context.Background()
	db, c := roleplayFixture(t, true)
	end := t0.Add(time.Hour)
	if _, err := db.PutRoleplayEpoch(ctx, store.RoleplayEpoch{CompetitionID: c.ID, Epoch: 3, Seed: 99, SeedSHA256: strings.Repeat("5e", 32),
		Items: []json.RawMessage{json.RawMessage(`{}`)}, ItemsDigest: strings.Repeat("d1", 32), Start: t0, End: end}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutFreshEval(ctx, store.FreshEval{CompetitionID: c.ID, Epoch: 3, SubmissionID: "s-rp", Score: 0.5,
		Results: roleplayResults(t, "FRESH"), EvaluatedAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(t0.Add(30 * time.Minute))
	ui, err := web.New(web.Config{Store: seal.Public{DB: db}, Clock: clk, Kinds: builtinKinds(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)

	code, running := get(t, srv.URL+"/c/c-rp/fresh/3")
	if code != 200 || !strings.Contains(running, `id="sealed"`) || !strings.Contains(running, strings.Repeat("5e", 32)) {
		t.Fatalf("a running epoch's page: %d, want the commitment and a sealed notice\n%s", code, running)
	}
	for _, bad := range []string{"FRESH-REFERENCE-REPLY", "I keep the light", `class="chats"`, strings.Repeat("d1", 32)} {
		if strings.Contains(running, bad) {
			t.Errorf("a running epoch's page shows %q", bad)
		}
	}
	clk.Set(end)
	_, ended := get(t, srv.URL+"/c/c-rp/fresh/3")
	for _, want := range []string{"FRESH-REFERENCE-REPLY", `class="bubble bubble-reference"`, `class="bubble bubble-reply"`, "fresh score 0.500", strings.Repeat("d1", 32)} {
		if !strings.Contains(ended, want) {
			t.Errorf("an ended epoch's page lacks %q", want)
		}
	}
	if code, _ := get(t, srv.URL+"/c/c-rp/fresh/x"); code != 400 {
		t.Errorf("a malformed epoch: %d, want 400", code)
	}
	if code, _ := get(t, srv.URL+"/c/c-rp/fresh/4"); code != 404 {
		t.Errorf("an epoch that does not exist: %d, want 404", code)
	}
}

// A competition weighted in epochs shows the pairwise win-rate matrix of
// its leaders, item by item as its kind scores them; one with a single
// model, or a kind without epochs, shows none.
func TestRoleplayCompetitionShowsTheWinRateMatrix(t *testing.T) {
	ctx := context.Background()
	db, c := roleplayFixture(t, false)
	srv := newServer(t, db)
	if _, body := get(t, srv.URL+"/c/c-rp"); strings.Contains(body, `id="win-rates"`) {
		t.Error("a matrix of one model")
	}
	sub := competition.Submission{ID: "s-rp2", CompetitionID: c.ID, Name: "mumbler", Submitter: "k-mumble",
		Model: competition.ModelSpec{BaseURL: "http://127.0.0.1:9/v1", Model: "mumbler"}, Digest: strings.Repeat("ce", 32),
		CommittedAt: t0.Add(time.Minute), State: competition.StateQueued, ItemsTotal: 2, UpdatedAt: t0}
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return db.CreateSubmissionTx(ctx, tx, sub, "") }); err != nil {
		t.Fatal(err)
	}
	for i, r := range roleplayResults(t, "WEAK") {
		var d roleplay.Detail
		if err := json.Unmarshal(r.Detail, &d); err != nil {
			t.Fatal(err)
		}
		d.Components.Quality = 0.1
		r.Detail, _ = json.Marshal(d)
		r.Index, r.Score = i, 0.1
		if err := db.InsertResult(ctx, sub.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	card := competition.NewCard([]float64{0.1, 0.1}, 2)
	if _, err := storetest.SetState(ctx, db, sub.ID, competition.StateScored, "", &card, t0); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, srv.URL+"/c/c-rp")
	i := strings.Index(body, `id="win-rates"`)
	if i < 0 {
		t.Fatalf("no win-rate matrix on a roleplay competition with two models\n%s", body)
	}
	table := body[i:]
	table = table[:strings.Index(table, "</table>")]
	// bard (row 1) beats mumbler on both items; mumbler wins none.
	for _, want := range []string{`<a href="/s/s-rp">bard</a></th><td class="num"><span class="muted">—</span></td><td class="num">100.0%</td>`,
		`<a href="/s/s-rp2">mumbler</a></th><td class="num">0.0%</td>`} {
		if !strings.Contains(table, want) {
			t.Errorf("matrix lacks %s\n%s", want, table)
		}
	}
	if _, mcq := get(t, newServer(t, newFixture(t).db).URL+"/c/c-test"); strings.Contains(mcq, `id="win-rates"`) {
		t.Error("a multiple-choice competition (no epochs) shows a win-rate matrix")
	}
}
