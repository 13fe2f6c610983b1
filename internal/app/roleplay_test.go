package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/eval/roleplay"
	"crucible/internal/eval/roleplay/roleplaytest"
	"crucible/internal/identity"
	"crucible/internal/incentive"
	"crucible/internal/store/storetest"
	"crucible/internal/weights"
)

// TestRoleplayCompetition runs a model competition with the baseline
// persona and judge policies acting as generator, reference and judge.
func TestRoleplayCompetition(t *testing.T) {
	h, err := roleplaytest.New("persona", "persona-plus", "persona-ref", "persona-incoherent", "judge", "judge-garbage")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	models := &http.Server{Handler: h}
	go models.Serve(ln)
	t.Cleanup(func() { models.Close() })
	modelURL := "http://" + ln.Addr().String() + "/v1"
	// The same models at a second address: the copycat's (an exact
	// re-submission of a model is refused).
	copyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	copies := &http.Server{Handler: h}
	go copies.Serve(copyLn)
	t.Cleanup(func() { copies.Close() })
	copyURL := "http://" + copyLn.Addr().String() + "/v1"

	// One-minute epochs starting at a minute boundary; the fake clock stays
	// within the ±5 min signature window of the real one.
	t0 := time.Now().UTC().Truncate(time.Minute)
	clk := clock.NewFake(t0.Add(time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.Open(ctx, app.Config{Database: storetest.Databases(t)[0].URL, Listen: "127.0.0.1:0", Clock: clk, MaxAttempts: 2,
		AllowEndpoints: loopback, EpochLength: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srvLn, err := a.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Serve(ctx, srvLn) }()
	defer func() { cancel(); <-done }()
	key, _ := identity.NewKey()
	c, _ := client.New(client.Config{Server: "http://" + srvLn.Addr().String(), Key: key})

	config := func(seed int64, judge string) *roleplay.CompetitionConfig {
		return &roleplay.CompetitionConfig{Seed: seed, Items: 6, Turns: 2,
			Generator: roleplay.EndpointSpec{BaseURL: modelURL, Model: "baseline-persona"},
			Reference: roleplay.EndpointSpec{BaseURL: modelURL, Model: "baseline-persona-ref"},
			Judge:     roleplay.EndpointSpec{BaseURL: modelURL, Model: judge}}
	}
	comp, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "roleplay", Title: "characters", Roleplay: config(7, "baseline-judge")})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "roleplay", Title: "same seed", Roleplay: config(7, "baseline-judge")})
	if err != nil {
		t.Fatal(err)
	}
	if comp.DatasetDigest != again.DatasetDigest || comp.Items != 6 {
		t.Fatalf("the same seed planned different items: %s vs %s", comp.DatasetDigest, again.DatasetDigest)
	}
	submitAt := func(compID, name, base, model string) error {
		clk.Advance(time.Second) // commit order is time order
		_, err := c.Submit(ctx, compID, apiv1.CreateSubmissionRequest{Name: name, BaseURL: base, Model: model})
		return err
	}
	submit := func(compID, name, model string) {
		if err := submitAt(compID, name, modelURL, model); err != nil {
			t.Fatal(err)
		}
	}
	submit(comp.ID, "leader", "baseline-persona")
	if err := submitAt(comp.ID, "resubmitted", modelURL, "baseline-persona"); err == nil || !strings.Contains(err.Error(), "already entered") {
		t.Fatalf("the same model entered twice: %v", err)
	}
	if err := submitAt(comp.ID, "copycat", copyURL, "baseline-persona"); err != nil { // the same answers from elsewhere: a copy
		t.Fatal(err)
	}
	submit(comp.ID, "better", "baseline-persona-plus")
	submit(comp.ID, "incoherent", "baseline-persona-incoherent")
	submit(again.ID, "leader-again", "baseline-persona")
	// The same models under Dippy's win-rate rule.
	dippyCfg := config(7, "baseline-judge")
	dippyCfg.WinRate = incentive.PresetDippy
	dippy, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "roleplay", Title: "dippy rule", Roleplay: dippyCfg})
	if err != nil {
		t.Fatal(err)
	}
	submit(dippy.ID, "leader", "baseline-persona")
	submit(dippy.ID, "better", "baseline-persona-plus")
	submit(dippy.ID, "incoherent", "baseline-persona-incoherent")
	wait := func(compID string) map[string]competition.Submission {
		waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		subs, err := c.WaitScored(waitCtx, compID, 100*time.Millisecond, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]competition.Submission{}
		for _, s := range subs {
			out[s.Name] = s
		}
		return out
	}
	subs, others, dippySubs := wait(comp.ID), wait(again.ID), wait(dippy.ID)
	for _, s := range subs {
		if s.State != competition.StateScored {
			t.Fatalf("%s ended %s: %s", s.Name, s.State, s.Reason)
		}
	}
	if subs["incoherent"].Card.Score != 0 {
		t.Errorf("an incoherent model scored %v, want 0", subs["incoherent"].Card.Score)
	}
	if l, a := subs["leader"].Card.Score, others["leader-again"].Card.Score; l != a || l <= 0 {
		t.Errorf("the same model on the same seed scored %v and %v", l, a)
	}

	// Close the epoch: the copy earns nothing, the better late model beats
	// the leader by more than ε = 1%.
	clk.Set(t0.Add(2 * time.Minute))
	n := a.Epochs.Of(t0)
	rec, err := a.Epochs.Close(ctx, comp.ID, n)
	if err != nil {
		t.Fatal(err)
	}
	id := func(name string) string { return subs[name].ID }
	if rec.Copies[id("copycat")] != id("leader") || rec.Weights[id("copycat")] != 0 {
		t.Errorf("copycat: copy of %q, weight %v; want a copy of the leader with weight 0", rec.Copies[id("copycat")], rec.Weights[id("copycat")])
	}
	if rec.WinRates[id("better")] <= rec.WinRates[id("leader")] || rec.Weights[id("better")] <= rec.Weights[id("leader")] {
		t.Errorf("at ε=0.01 the better late model should lead: win rates %v", rec.WinRates)
	}
	// Crucible's softmax leaves the zero-scored model a sliver of weight;
	// Dippy's rule gives it exactly 0 and counts one comparison per pair.
	if rec.WinRate == nil || rec.WinRate.Preset != incentive.PresetCrucible || !(rec.Weights[id("incoherent")] > 0) {
		t.Errorf("crucible epoch: rule %+v, incoherent weight %v; want crucible and a weight above 0", rec.WinRate, rec.Weights[id("incoherent")])
	}
	drec, err := a.Epochs.Close(ctx, dippy.ID, n)
	if err != nil {
		t.Fatal(err)
	}
	did := func(name string) string { return dippySubs[name].ID }
	if drec.WinRate == nil || drec.WinRate.Preset != incentive.PresetDippy || drec.Temperature != 0.075 || drec.Weights[did("incoherent")] != 0 {
		t.Errorf("dippy epoch: rule %+v, T %v, incoherent weight %v; want dippy, 0.075 and exactly 0", drec.WinRate, drec.Temperature, drec.Weights[did("incoherent")])
	}
	if w := drec.WinRates[did("better")]; w != 0 && w != 0.5 && w != 1 {
		t.Errorf("dippy win rate %v: one comparison per pair of three models gives 0, 0.5 or 1", w)
	}
	printed, err := c.Weights(ctx, comp.ID, n)
	if err != nil || printed.Weights[id("better")] != rec.Weights[id("better")] {
		t.Fatalf("weights over the API: %+v, %v", printed, err)
	}
	// With a 5% advantage for the earlier model the leader keeps its items.
	strict := weights.New(weights.Config{DB: a.DB, Kinds: a.Kinds, Clock: clk, Length: time.Minute, Epsilon: 0.05})
	clk.Set(t0.Add(3 * time.Minute))
	rec5, err := strict.Close(ctx, comp.ID, n+1)
	if err != nil {
		t.Fatal(err)
	}
	if rec5.WinRates[id("leader")] <= rec5.WinRates[id("better")] {
		t.Errorf("at ε=0.05 the earlier leader should keep the lead: win rates %v", rec5.WinRates)
	}

	// The local eval gives the server's score.
	rc, err := json.Marshal(config(7, "baseline-judge"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := app.LocalEval(ctx, app.LocalEvalConfig{Kind: roleplay.Name, Options: map[string]json.RawMessage{"roleplay": rc},
		BaseURL: modelURL, Model: "baseline-persona"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Score != subs["leader"].Card.Score || rep.Digest != comp.DatasetDigest || len(rep.Components) == 0 {
		t.Errorf("local eval scored %v on items %s (components %v); the server %v on %s", rep.Score, rep.Digest, rep.Components, subs["leader"].Card.Score, comp.DatasetDigest)
	}

	// A judge that answers garbage is an infrastructure failure, retried at
	// low priority, never a score.
	bad, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "roleplay", Title: "bad judge", Roleplay: config(8, "baseline-judge-garbage")})
	if err != nil {
		t.Fatal(err)
	}
	submit(bad.ID, "victim", "baseline-persona")
	victim := wait(bad.ID)["victim"]
	if victim.State != competition.StateInfraFailed || victim.Card != nil || !strings.Contains(victim.Reason, "judge") {
		t.Fatalf("garbage judge: state %s, card %v, reason %q; want infra_failed with the judge named and no score", victim.State, victim.Card, victim.Reason)
	}
	var attempts int
	// The victim is the only submission of this database that needed a retry.
	if err := a.DB.SQL().QueryRowContext(ctx, `SELECT attempt FROM river_job WHERE priority = 4 AND kind = 'evaluate_submission'`).Scan(&attempts); err != nil {
		t.Fatalf("no low-priority retry job for the victim: %v", err)
	}
	if attempts != 2 {
		t.Errorf("the retry job ran %d times, want MaxAttempts = 2", attempts)
	}
}
