package roleplay_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"crucible/internal/eval"
	"crucible/internal/eval/roleplay"
	"crucible/internal/eval/roleplay/roleplaytest"
	"crucible/internal/eval/runner"
	"crucible/internal/incentive"
	"crucible/internal/inference"
)

// baseline starts a model server with every roleplay policy.
func baselineClient(t *testing.T) *inference.Client {
	t.Helper()
	h, err := roleplaytest.New()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := inference.New(inference.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func plan(t *testing.T, c *inference.Client, seed int64, items int) []roleplay.Item {
	t.Helper()
	its, err := roleplay.Plan(context.Background(), roleplay.PlanConfig{
		Seed: seed, Items: items, Generator: roleplay.Endpoint{Client: c, Model: roleplay.BaselineGenerator},
	})
	if err != nil {
		t.Fatal(err)
	}
	return its
}

type run struct {
	results    []eval.Result // by index
	total      float64
	components map[string]float64
	scores     []float64 // ItemScores, by index
}

// evaluate scores model on items the way server and local eval do: eval.Run
// with concurrency, then Aggregate.
func evaluate(t *testing.T, cfg roleplay.Config) (run, error) {
	t.Helper()
	ev, err := roleplay.NewEvaluator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var rs []eval.Result
	err = runner.Run(context.Background(), ev, runner.Config{Concurrency: 4, Sink: func(r eval.Result) error {
		rs = append(rs, r)
		return nil
	}})
	if err != nil {
		return run{}, err
	}
	slices.SortFunc(rs, func(a, b eval.Result) int { return a.Index - b.Index })
	out := run{results: rs}
	if out.total, out.components, err = roleplay.Aggregate(rs, cfg.Scoring); err != nil {
		t.Fatal(err)
	}
	if out.scores, err = roleplay.ItemScores(rs, cfg.Scoring); err != nil {
		t.Fatal(err)
	}
	return out, nil
}

func config(c *inference.Client, items []roleplay.Item, model string) roleplay.Config {
	return roleplay.Config{
		Items:     items,
		Model:     roleplay.Endpoint{Client: c, Model: model},
		Reference: roleplay.Endpoint{Client: c, Model: roleplay.BaselineReference},
		Judge:     roleplay.Endpoint{Client: c, Model: roleplay.BaselineJudge},
	}
}

func TestTheSameSeedPlansIdenticalItems(t *testing.T) {
	c := baselineClient(t)
	a, b := plan(t, c, 42, 12), plan(t, c, 42, 12)
	if !reflect.DeepEqual(a, b) || roleplay.Digest(a) != roleplay.Digest(b) {
		t.Fatal("two plans from seed 42 differ")
	}
	if roleplay.Digest(plan(t, c, 43, 12)) == roleplay.Digest(a) {
		t.Fatal("seeds 42 and 43 planned the same items")
	}
	seen := map[string]bool{}
	for _, it := range a {
		if n := len(it.Conversation); n != 4 || it.Conversation[n-1].Role != roleplay.RoleUser {
			t.Fatalf("item %s: want greeting, opener, character turn, generated user turn; got %+v", it.ID, it.Conversation)
		}
		seen[it.Character.Name] = true
	}
	if len(seen) != 12 {
		t.Fatalf("12 items cover %d of the 12 personas, want all", len(seen))
	}
}

func TestItemsSurviveAJSONRoundTrip(t *testing.T) {
	c := baselineClient(t)
	items := plan(t, c, 5, 6)
	raw, err := json.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	var back []roleplay.Item
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(items, back) {
		t.Fatal("items changed through JSON")
	}
}

func TestTheSameSeedGivesIdenticalScores(t *testing.T) {
	c := baselineClient(t)
	first, err := evaluate(t, config(c, plan(t, c, 9, 12), "baseline-persona"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := evaluate(t, config(c, plan(t, c, 9, 12), "baseline-persona"))
	if err != nil {
		t.Fatal(err)
	}
	if first.total != second.total || !reflect.DeepEqual(first.components, second.components) || !reflect.DeepEqual(first.scores, second.scores) {
		t.Fatalf("totals %v vs %v, components %v vs %v", first.total, second.total, first.components, second.components)
	}
	for i := range first.results {
		a, b := first.results[i], second.results[i]
		if a.Score != b.Score || a.Response != b.Response || string(a.Detail) != string(b.Detail) {
			t.Fatalf("item %d: %v %q vs %v %q", i, a.Score, a.Response, b.Score, b.Response)
		}
	}
	if first.total <= 0 {
		t.Fatal("the baseline persona should score above 0")
	}
}

func TestComponentsAreEachInTheUnitInterval(t *testing.T) {
	c := baselineClient(t)
	items := plan(t, c, 3, 12)
	for _, model := range []string{"baseline-persona", "baseline-persona-plus", "baseline-persona-ref", "baseline-persona-incoherent"} {
		t.Run(model, func(t *testing.T) {
			cfg := config(c, items, model)
			cfg.Params = 7_000_000_000
			r, err := evaluate(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, res := range r.results {
				var d roleplay.Detail
				if err := json.Unmarshal(res.Detail, &d); err != nil {
					t.Fatal(err)
				}
				cs := d.Components
				for name, v := range map[string]float64{"quality": cs.Quality, "creativity": cs.Creativity, "vibe": cs.Vibe,
					"latency": cs.Latency, "size": cs.Size, "coherence": cs.Coherence, "score": res.Score} {
					if v < 0 || v > 1 {
						t.Errorf("item %d: %s = %v", res.Index, name, v)
					}
				}
				if res.Correct != (res.Score > 0) {
					t.Errorf("item %d: Correct %v with score %v", res.Index, res.Correct, res.Score)
				}
			}
			for name, v := range r.components {
				if v < 0 || v > 1 {
					t.Errorf("component mean %s = %v", name, v)
				}
			}
		})
	}
}

func TestAGarbageJudgeIsAnInfrastructureErrorNotAScore(t *testing.T) {
	c := baselineClient(t)
	items := plan(t, c, 1, 4)
	tests := []struct {
		name, judge string
		sentinel    error
	}{
		{"a judge answering prose is retried, not scored", "baseline-judge-garbage", roleplay.ErrJudgeOutput},
		{"a judge model that does not exist is retried, not failed", "baseline-no-such-judge", roleplay.ErrInfrastructure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(c, items, "baseline-persona")
			cfg.Judge.Model = tt.judge
			ev, err := roleplay.NewEvaluator(cfg)
			if err != nil {
				t.Fatal(err)
			}
			res, err := ev.Evaluate(context.Background(), 0)
			if err == nil {
				t.Fatalf("got a score (%v) from a broken judge", res.Score)
			}
			if !errors.Is(err, tt.sentinel) || !errors.Is(err, roleplay.ErrInfrastructure) {
				t.Fatalf("err = %v, want %v and ErrInfrastructure", err, tt.sentinel)
			}
			if inference.IsPermanent(err) {
				t.Fatalf("err = %v is permanent; a broken judge must be retried", err)
			}
			var sunk int
			runErr := runner.Run(context.Background(), ev, runner.Config{Sink: func(eval.Result) error { sunk++; return nil }})
			if runErr == nil || inference.IsPermanent(runErr) || sunk != 0 {
				t.Fatalf("eval.Run: err %v (permanent %v), %d results stored", runErr, inference.IsPermanent(runErr), sunk)
			}
		})
	}
}

func TestAWrongSubmittedModelNameIsPermanent(t *testing.T) {
	c := baselineClient(t)
	ev, err := roleplay.NewEvaluator(config(c, plan(t, c, 1, 2), "baseline-no-such-model"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ev.Evaluate(context.Background(), 0)
	if !inference.IsPermanent(err) || errors.Is(err, roleplay.ErrInfrastructure) {
		t.Fatalf("err = %v: a wrong model name is the submitter's deterministic failure", err)
	}
}

func TestAnIncoherentModelScoresZero(t *testing.T) {
	c := baselineClient(t)
	r, err := evaluate(t, config(c, plan(t, c, 11, 12), "baseline-persona-incoherent"))
	if err != nil {
		t.Fatal(err)
	}
	if r.total != 0 || r.components["coherence"] != 0 {
		t.Fatalf("total %v, coherence %v; want 0, 0", r.total, r.components["coherence"])
	}
	for i, res := range r.results {
		if res.Score != 0 || res.Correct || r.scores[i] != 0 {
			t.Fatalf("item %d scored %v / %v", i, res.Score, r.scores[i])
		}
	}
	if r.components["vibe"] == 0 && r.components["latency"] == 0 {
		t.Fatal("the other components are still recorded")
	}
}

func TestCopyingTheReferenceEarnsNoCreativity(t *testing.T) {
	c := baselineClient(t)
	items := plan(t, c, 2, 12)
	copycat, err := evaluate(t, config(c, items, roleplay.BaselineReference))
	if err != nil {
		t.Fatal(err)
	}
	own, err := evaluate(t, config(c, items, "baseline-persona"))
	if err != nil {
		t.Fatal(err)
	}
	if copycat.components["creativity"] != 0 || copycat.total >= own.total/2 {
		t.Fatalf("the reference's own replies: creativity %v, total %v (own voice %v)",
			copycat.components["creativity"], copycat.total, own.total)
	}
}

func TestTheSlightlyBetterPersonaWinsOnlyBeyondEpsilon(t *testing.T) {
	c := baselineClient(t)
	items := plan(t, c, 21, 24)
	leader, err := evaluate(t, config(c, items, "baseline-persona"))
	if err != nil {
		t.Fatal(err)
	}
	late, err := evaluate(t, config(c, items, "baseline-persona-plus"))
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := 10.0, 0.0
	for i := range items {
		if leader.scores[i] <= 0 {
			t.Fatalf("item %d: leader scored %v", i, leader.scores[i])
		}
		r := late.scores[i]/leader.scores[i] - 1
		lo, hi = min(lo, r), max(hi, r)
	}
	if lo <= 0 || hi > 0.10 {
		t.Fatalf("persona-plus is better by %.2f%%..%.2f%% per item; want strictly better and at most 10%%", 100*lo, 100*hi)
	}
	t.Logf("persona-plus beats persona by %.2f%%..%.2f%% per item", 100*lo, 100*hi)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cs := []incentive.Contender{
		{ID: "leader", CommittedAt: t0, Scores: leader.scores},
		{ID: "late", CommittedAt: t0.Add(time.Hour), Scores: late.scores},
	}
	if w := incentive.WinRates(cs, lo/2); w["late"] != 1 {
		t.Errorf("with ε below its margin the late model should win every item: %v", w)
	}
	if w := incentive.WinRates(cs, hi*2); w["leader"] != 1 {
		t.Errorf("with ε above its margin the leader should keep every item: %v", w)
	}
}

func TestStoredReferencesNeedNoReferenceModel(t *testing.T) {
	c := baselineClient(t)
	items := plan(t, c, 4, 6)
	full, err := evaluate(t, config(c, items, "baseline-persona"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		var d roleplay.Detail
		if err := json.Unmarshal(full.results[i].Detail, &d); err != nil {
			t.Fatal(err)
		}
		items[i].Reference = d.Reference
	}
	cfg := config(c, items, "baseline-persona")
	cfg.Reference = roleplay.Endpoint{}
	stored, err := evaluate(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if stored.total != full.total {
		t.Fatalf("stored references changed the total: %v vs %v", stored.total, full.total)
	}
}

func TestNewEvaluatorRejectsIncompleteConfigs(t *testing.T) {
	c := baselineClient(t)
	items := []roleplay.Item{{ID: "x", Character: roleplay.Character{Name: "A"}, Conversation: []roleplay.Turn{{Role: roleplay.RoleUser, Content: "hi"}}}}
	tests := []struct {
		name string
		edit func(*roleplay.Config)
		want string
	}{
		{"no items", func(cfg *roleplay.Config) { cfg.Items = nil }, "Items is empty"},
		{"no judge", func(cfg *roleplay.Config) { cfg.Judge = roleplay.Endpoint{} }, "judge client is nil"},
		{"no reference", func(cfg *roleplay.Config) { cfg.Reference.Model = "" }, "reference model name is empty"},
		{"a conversation ending with the character", func(cfg *roleplay.Config) {
			cfg.Items = []roleplay.Item{{ID: "y", Conversation: []roleplay.Turn{{Role: roleplay.RoleCharacter, Content: "hi"}}}}
		}, "must end with a user message"},
		{"bad weights", func(cfg *roleplay.Config) { cfg.Scoring.Weights.Quality = -1 }, "weight quality"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(c, items, "baseline-persona")
			tt.edit(&cfg)
			_, err := roleplay.NewEvaluator(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPlanConcurrencyDoesNotChangeTheItems(t *testing.T) {
	c := baselineClient(t)
	gen := roleplay.Endpoint{Client: c, Model: roleplay.BaselineGenerator}
	one, err := roleplay.Plan(context.Background(), roleplay.PlanConfig{Seed: 8, Items: 10, Turns: 3, Generator: gen, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	many, err := roleplay.Plan(context.Background(), roleplay.PlanConfig{Seed: 8, Items: 10, Turns: 3, Generator: gen, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	if roleplay.Digest(one) != roleplay.Digest(many) || len(one[0].Conversation) != 6 {
		t.Fatal("concurrency changed the plan, or three turns did not give six messages")
	}
}

func TestPlanReportsAGeneratorFailure(t *testing.T) {
	c := baselineClient(t)
	_, err := roleplay.Plan(context.Background(), roleplay.PlanConfig{Seed: 1, Items: 3, Generator: roleplay.Endpoint{Client: c, Model: "baseline-missing"}})
	if !inference.IsPermanent(err) || !strings.Contains(err.Error(), "plan item") {
		t.Fatalf("err = %v, want the generator's 404 with the item named", err)
	}
	if _, err := roleplay.Plan(context.Background(), roleplay.PlanConfig{Seed: 1, Items: 3}); err == nil {
		t.Fatal("planning generated turns without a generator should fail")
	}
	its, err := roleplay.Plan(context.Background(), roleplay.PlanConfig{Seed: 1, Items: 3, Turns: 1})
	if err != nil || len(its[0].Conversation) != 2 {
		t.Fatalf("one turn needs no generator: %v", err)
	}
}

func TestCompetitionConfigValidation(t *testing.T) {
	ep := roleplay.EndpointSpec{BaseURL: "http://127.0.0.1:8000/v1", Model: "m"}
	good := roleplay.CompetitionConfig{Seed: 1, Generator: ep, Reference: ep, Judge: ep}.WithDefaults()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*roleplay.CompetitionConfig)
	}{
		{"a missing judge is rejected", func(c *roleplay.CompetitionConfig) { c.Judge = roleplay.EndpointSpec{} }},
		{"zero items are rejected", func(c *roleplay.CompetitionConfig) { c.Items = 0 }},
		{"bad scoring is rejected", func(c *roleplay.CompetitionConfig) { c.Scoring.Thresholds.MinCoherent = 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			if c.Validate() == nil {
				t.Fatal("Validate accepted it")
			}
		})
	}
}

// The attack: a model memorises the public practice conversations. Fresh
// items planned with the practice items in Avoid never open as one of them
// does (card and opener), so a generator at temperature 0 cannot rebuild
// one; without Avoid, some seeds do (which is what makes this test able to
// fail).
func TestPlanAvoidsThePracticeOpenings(t *testing.T) {
	practice, err := roleplay.Plan(context.Background(), roleplay.PlanConfig{Seed: 7, Items: 6, Turns: 1})
	if err != nil {
		t.Fatal(err)
	}
	opening := func(it roleplay.Item) [2]string { return [2]string{it.Character.Name, it.Conversation[1].Content} }
	public := map[[2]string]bool{}
	for _, it := range practice {
		public[opening(it)] = true
	}
	repeatedWithout := 0
	for seed := int64(1000); seed < 1200; seed++ {
		without, err := roleplay.Plan(context.Background(), roleplay.PlanConfig{Seed: seed, Items: 6, Turns: 1})
		if err != nil {
			t.Fatal(err)
		}
		with, err := roleplay.Plan(context.Background(), roleplay.PlanConfig{Seed: seed, Items: 6, Turns: 1, Avoid: practice})
		if err != nil {
			t.Fatal(err)
		}
		for i, it := range with {
			if public[opening(without[i])] {
				repeatedWithout++
			}
			if public[opening(it)] {
				t.Fatalf("seed %d item %d opens as a practice item does: %q", seed, i, opening(it))
			}
			if it.Character.Name != without[i].Character.Name {
				t.Fatalf("seed %d item %d: Avoid changed the card, not only the opener", seed, i)
			}
		}
	}
	if repeatedWithout == 0 {
		t.Fatal("no seed repeated a practice opening without Avoid: the test shows nothing")
	}
	t.Logf("without Avoid, %d fresh items of 1,200 opened as a practice item", repeatedWithout)
}

// A competition's own persona set whose cards have one opener each: every
// fresh item would open as the practice item of its card does, so the
// opener comes from DefaultOpeners instead, and the card stays.
func TestPlanAvoidsThePracticeOpeningsOfOneOpenerCards(t *testing.T) {
	var personas []roleplay.Character
	for _, name := range []string{"Ada", "Bo", "Cy"} {
		personas = append(personas, roleplay.Character{Name: name, Persona: "p", Greeting: "Hello, I am " + name + ".",
			Openers: []string{"What brings you here, " + name + "?"}})
	}
	practice, err := roleplay.Plan(context.Background(), roleplay.PlanConfig{Seed: 7, Items: 3, Turns: 1, Personas: personas})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := roleplay.Plan(context.Background(), roleplay.PlanConfig{Seed: 8, Items: 6, Turns: 1, Personas: personas, Avoid: practice})
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range fresh {
		if o := it.Conversation[1].Content; !slices.Contains(roleplay.DefaultOpeners(), o) {
			t.Errorf("fresh item %d (%s) opens with %q, its practice opening; want one of DefaultOpeners", i, it.Character.Name, o)
		}
	}
}
