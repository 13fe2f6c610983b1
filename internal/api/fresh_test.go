package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/roleplay"
	"crucible/internal/eval/roleplay/roleplaytest"
	"crucible/internal/identity"
	"crucible/internal/seal"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// TestFreshRoleplayItemsDefeatOverfitting replays the attack on a roleplay
// competition whose items were planned once from a public seed: a model
// that memorised those items (it answers them like the best policy and
// everything else with nonsense) tops the board. With fresh_items every
// epoch's items come from a secret seed: before the epoch ends no route or
// page shows them, its seed or anyone's results on them; after, the seed
// hashes to the published commitment and plans exactly the items (digest
// equal), the next epoch's items differ, both models are evaluated again,
// the epoch's weights compare fresh items only, and the memoriser is
// flagged by the contamination check while the honest model is not.
func TestFreshRoleplayItemsDefeatOverfitting(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) { testFreshRoleplay(t, d.URL) })
	}
}

func testFreshRoleplay(t *testing.T, database string) {
	h, err := roleplaytest.New("persona", "persona-plus", "persona-ref", "persona-incoherent", "judge")
	if err != nil {
		t.Fatal(err)
	}
	models := httptest.NewServer(h)
	t.Cleanup(models.Close)
	// The memoriser: the best policy on the practice items it has seen,
	// nonsense on anything else.
	var memorised atomic.Pointer[[][]byte]
	memorised.Store(&[][]byte{})
	memoriser := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/chat/completions") {
			body, _ := io.ReadAll(r.Body)
			var req map[string]any
			_ = json.Unmarshal(body, &req)
			req["model"] = "baseline-persona-incoherent"
			for _, seen := range *memorised.Load() {
				if bytes.Contains(body, seen) {
					req["model"] = "baseline-persona-plus"
				}
			}
			body, _ = json.Marshal(req)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(memoriser.Close)
	mirror := httptest.NewServer(h) // the honest model behind another address: a copy by its answers
	t.Cleanup(mirror.Close)

	// One-minute epochs from a minute boundary; the fake clock stays within
	// the ±5 min signature window of the real one.
	t0 := time.Now().UTC().Truncate(time.Minute)
	clk := clock.NewFake(t0.Add(time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, app.Config{Database: database, Listen: "127.0.0.1:0", Clock: clk, MaxAttempts: 2,
		AllowEndpoints: "127.0.0.0/8", EpochLength: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := a.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; a.Close() })
	base := "http://" + ln.Addr().String()
	var honest, cheat, copier *client.Client
	for _, c := range []**client.Client{&honest, &cheat, &copier} {
		k, _ := identity.NewKey()
		if *c, err = client.New(client.Config{Server: base, Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	hub := &sealHub{app: a, clock: clk, base: base, models: models.URL, operator: honest, competitor: cheat}

	cfg := roleplay.CompetitionConfig{Seed: 7, Items: 6, Turns: 2, FreshItems: true,
		Generator: roleplay.EndpointSpec{BaseURL: models.URL + "/v1", Model: "baseline-persona"},
		Reference: roleplay.EndpointSpec{BaseURL: models.URL + "/v1", Model: "baseline-persona-ref"},
		Judge:     roleplay.EndpointSpec{BaseURL: models.URL + "/v1", Model: "baseline-judge"}}
	comp, err := honest.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "roleplay", Title: "fresh characters", Roleplay: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := a.DB.GetCompetition(ctx, comp.ID)
	if err != nil {
		t.Fatal(err)
	}
	practice := roleplayItems(t, a, stored)
	var seen [][]byte
	for _, it := range practice {
		seen = append(seen, jsonText(it.LastUser()))
	}
	memorised.Store(&seen)

	clk.Advance(time.Second)
	if _, err := honest.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{Name: "honest", BaseURL: models.URL + "/v1", Model: "baseline-persona"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if _, err := cheat.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{Name: "memoriser", BaseURL: memoriser.URL + "/v1", Model: "baseline-persona-plus"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if _, err := copier.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{Name: "copy", BaseURL: mirror.URL + "/v1", Model: "baseline-persona"}); err != nil {
		t.Fatal(err)
	}
	waitCtx, waitCancel := context.WithTimeout(ctx, 2*time.Minute)
	defer waitCancel()
	scored, err := honest.WaitScored(waitCtx, comp.ID, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	subs := map[string]competition.Submission{}
	var list []competition.Submission
	for _, s := range scored {
		if s.State != competition.StateScored {
			t.Fatalf("%s ended %s: %s", s.Name, s.State, s.Reason)
		}
		subs[s.Name] = s
		list = append(list, s)
	}
	// The attack on the public items works: the memoriser leads the practice set.
	if subs["memoriser"].Card.Score <= subs["honest"].Card.Score {
		t.Fatalf("on the practice items the memoriser scored %v, the honest model %v; the attack should lead", subs["memoriser"].Card.Score, subs["honest"].Card.Score)
	}

	n := a.Epochs.Of(clk.Now())
	freshEvaluations(t, a, comp.ID, n, 3)
	epochN, err := a.DB.RoleplayEpoch(ctx, comp.ID, n)
	if err != nil {
		t.Fatal(err)
	}

	// Before the epoch ends: the commitment is public, nothing else is.
	views := getJSON[[]seal.EpochView](t, base+"/api/v1/competitions/"+comp.ID+"/roleplay-epochs")
	if len(views) != 1 || views[0].SeedSHA256 != epochN.SeedSHA256 || views[0].Seed != nil || views[0].ItemsDigest != "" {
		t.Fatalf("open epoch shown as %+v; want the commitment %s only", views, epochN.SeedSHA256)
	}
	hub.epoch = fmt.Sprint(n)
	needles := freshNeedles(t, a, comp.ID, practice, epochN, list)
	bodies := hub.walk(t, comp.ID, list)
	t.Logf("searched %d responses for %d current-epoch values", len(bodies), len(needles))
	for _, b := range bodies {
		for _, nd := range needles {
			if loc := nd.re.FindStringIndex(b.body); loc != nil {
				t.Errorf("GET %s (%d) shows %s before the epoch ends: …%s…", b.path, b.code, nd.what, excerpt(b.body, loc))
			}
		}
	}

	// The epoch ends: the seed is revealed and checks out.
	clk.Set(t0.Add(time.Minute + time.Second))
	view := getJSON[seal.EpochView](t, fmt.Sprintf("%s/api/v1/competitions/%s/roleplay-epochs/%d", base, comp.ID, n))
	if view.Seed == nil || roleplay.SeedCommitment(*view.Seed) != epochN.SeedSHA256 {
		t.Fatalf("after the epoch: seed %v does not hash to the commitment %s", view.Seed, epochN.SeedSHA256)
	}
	cfgStored, err := kinds.RoleplayConfig(stored)
	if err != nil {
		t.Fatal(err)
	}
	again, err := kinds.FreshRoleplayItems(ctx, cfgStored, practice, *view.Seed, kinds.Egress{HTTPClient: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	if roleplay.Digest(again) != view.ItemsDigest || len(view.Items) != cfg.Items || len(view.Evaluations) != 3 {
		t.Fatalf("the revealed seed plans items %s; the epoch published %s with %d items and %d evaluations",
			roleplay.Digest(again), view.ItemsDigest, len(view.Items), len(view.Evaluations))
	}
	// What `crucible roleplay verify-epoch` runs, on what the API serves.
	served, err := honest.Competition(ctx, comp.ID)
	if err != nil {
		t.Fatal(err)
	}
	servedView, err := cheat.RoleplayEpoch(ctx, comp.ID, n)
	if err != nil {
		t.Fatal(err)
	}
	check, err := app.VerifyRoleplayEpoch(ctx, app.VerifyEpochConfig{Competition: served, Epoch: servedView})
	if err != nil || !check.OK() {
		t.Fatalf("verify-epoch: %+v, %v; want every check to pass", check, err)
	}
	forged := *servedView.Seed + 1 // a hub that swapped the seed after the fact
	servedView.Seed = &forged
	if check, err := app.VerifyRoleplayEpoch(ctx, app.VerifyEpochConfig{Competition: served, Epoch: servedView}); err != nil || check.OK() || check.CommitmentOK {
		t.Fatalf("verify-epoch accepted a seed that does not match the commitment: %+v, %v", check, err)
	}
	after := hub.walk(t, comp.ID, list)
	for _, it := range again {
		if !anyContains(after, "/api/", string(jsonText(it.LastUser()))) {
			t.Errorf("after the epoch its item %s is not shown", it.ID)
		}
	}

	// Contamination: the memoriser's practice score is far above its fresh one.
	rows := getJSON[[]seal.Contamination](t, base+"/api/v1/competitions/"+comp.ID+"/contamination")
	flags := map[string]seal.Contamination{}
	for _, r := range rows {
		flags[r.Name] = r
		if r.FreshScore != nil {
			t.Logf("%s: practice %.4f, fresh %.4f, gap %.4f, flagged %v", r.Name, r.PracticeScore, *r.FreshScore, *r.ContaminationGap, r.Flagged)
		}
	}
	if m := flags["memoriser"]; !m.Flagged || m.ContaminationGap == nil || *m.ContaminationGap <= m.Threshold || m.Threshold != roleplay.DefaultContaminationThreshold {
		t.Errorf("memoriser: %+v; want flagged with a gap above %v", m, roleplay.DefaultContaminationThreshold)
	}
	if h := flags["honest"]; h.Flagged || h.FreshScore == nil {
		t.Errorf("honest model: %+v; want a fresh score and no flag", h)
	}
	type boardRow struct {
		Name    string `json:"name"`
		Flagged bool   `json:"flagged"`
	}
	for _, row := range getJSON[[]boardRow](t, base+"/api/v1/competitions/"+comp.ID+"/leaderboard") {
		if row.Flagged != (row.Name == "memoriser") {
			t.Errorf("leaderboard row %s flagged %v", row.Name, row.Flagged)
		}
	}
	page := "/c/" + comp.ID
	if !anyContains(after, page, "contaminated") || !anyContains(after, page, fmt.Sprint(*view.Seed)) {
		t.Errorf("after the epoch the competition page shows no contamination flag or no revealed seed")
	}

	// The epoch's weights compare fresh items: the honest model wins.
	rec, err := a.Epochs.Close(ctx, comp.ID, n)
	if err != nil {
		t.Fatal(err)
	}
	hid, mid, cid := subs["honest"].ID, subs["memoriser"].ID, subs["copy"].ID
	if rec.Scores[mid] != *flags["memoriser"].FreshScore || rec.Weights[hid] <= rec.Weights[mid] {
		t.Errorf("epoch %d record: scores %v, weights %v; want fresh scores with the honest model ahead", n, rec.Scores, rec.Weights)
	}
	// The copy rule holds on re-evaluations: each model is its own
	// submission, and the later model with the same answers is the copy.
	if len(rec.Copies) != 1 || rec.Copies[cid] != hid || rec.Weights[cid] != 0 {
		t.Errorf("epoch %d copies %v, the copy's weight %v; want only %s as a copy of %s, weighing 0", n, rec.Copies, rec.Weights[cid], cid, hid)
	}

	// The next epoch: new items, both models evaluated again, the earlier
	// epoch's evaluations kept.
	freshEvaluations(t, a, comp.ID, n+1, 3)
	next, err := a.DB.RoleplayEpoch(ctx, comp.ID, n+1)
	if err != nil {
		t.Fatal(err)
	}
	if next.ItemsDigest == epochN.ItemsDigest || next.SeedSHA256 == epochN.SeedSHA256 {
		t.Errorf("epoch %d reuses epoch %d's items (%s)", n+1, n, next.ItemsDigest)
	}
	if e, err := a.DB.FreshEvals(ctx, comp.ID, n); err != nil || len(e) != 3 {
		t.Errorf("epoch %d kept %d evaluations (%v); want 3", n, len(e), err)
	}
}

// freshEvaluations runs the periodic task that opens the current epoch and
// enqueues its evaluations, and waits for the queue's workers to store want
// of them.
func freshEvaluations(t *testing.T, a *app.App, id string, n int64, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.EvaluateFresh(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		evals, err := a.DB.FreshEvals(ctx, id, n)
		if err != nil {
			t.Fatalf("epoch %d: %d of %d models evaluated: %v", n, len(evals), want, err)
		}
		if len(evals) == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("epoch %d: %d of %d models evaluated", n, len(evals), want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func roleplayItems(t *testing.T, a *app.App, c competition.Competition) []roleplay.Item {
	t.Helper()
	raw, err := a.DB.CompetitionItems(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	items, err := kinds.RoleplayItems(c, raw)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// jsonText is s as a JSON string's content.
func jsonText(s string) []byte {
	b, _ := json.Marshal(s)
	return b[1 : len(b)-1]
}

// freshNeedles are the open epoch's texts that the practice items and
// results do not also hold — its generated turns, the reference replies and
// the models' replies — and its seed, as responses would print them.
func freshNeedles(t *testing.T, a *app.App, id string, practice []roleplay.Item, e store.RoleplayEpoch, subs []competition.Submission) []needle {
	t.Helper()
	ctx := context.Background()
	public := map[string]bool{}
	for _, it := range practice {
		for _, turn := range it.Conversation {
			public[turn.Content] = true
		}
	}
	for _, sub := range subs {
		results, err := a.DB.Results(ctx, sub.ID, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			public[r.Response] = true
			var d roleplay.Detail
			_ = json.Unmarshal(r.Detail, &d)
			public[d.Reference] = true
		}
	}
	var out []needle
	add := func(what, s string) {
		if s != "" && !public[s] {
			public[s] = true
			out = append(out, text(what, html.EscapeString(s)), text(what, string(jsonText(s))))
		}
	}
	c, err := a.DB.GetCompetition(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	items, err := kinds.RoleplayItems(c, e.Items)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		for _, turn := range it.Conversation {
			add("a turn of fresh item "+it.ID, turn.Content)
		}
	}
	prompts := len(out)
	evals, err := a.DB.FreshEvals(ctx, id, e.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evals {
		for _, r := range ev.Results {
			var d roleplay.Detail
			_ = json.Unmarshal(r.Detail, &d)
			add(fmt.Sprintf("the reference reply to fresh item %d", r.Index), d.Reference)
			add(fmt.Sprintf("a model's reply to fresh item %d", r.Index), r.Response)
		}
	}
	if prompts < 4 || len(out) < prompts+4 {
		t.Fatalf("only %d fresh prompt and %d fresh reply texts differ from the practice set's; the walk would prove little", prompts/2, (len(out)-prompts)/2)
	}
	return append(out, number("the epoch seed", fmt.Sprint(e.Seed)), text("the epoch's items id prefix", fmt.Sprintf("rp-%d-", e.Seed)))
}

func getJSON[T any](t *testing.T, url string) T {
	t.Helper()
	var v T
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return v
}
