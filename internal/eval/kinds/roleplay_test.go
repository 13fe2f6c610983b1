package kinds

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"crucible/internal/baseline"
	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/roleplay"
	"crucible/internal/eval/roleplay/roleplaytest"
	"crucible/internal/eval/runner"
)

// roleplayServer serves every roleplay baseline policy, the persona
// declaring params parameters in /v1/models (0: none).
func roleplayServer(t *testing.T, params int64) string {
	t.Helper()
	ps, err := roleplaytest.Policies(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ps {
		if ps[i].Name == roleplaytest.PolicyPersona {
			ps[i].Params = params
		}
	}
	srv := httptest.NewServer(baseline.New(baseline.Config{Policies: ps}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// roleplayCompetition is a competition created with the roleplay flags of
// `competition create` (args after the defaults) against the model server
// at url, with its items planned.
func roleplayCompetition(t *testing.T, url string, args ...string) (competition.Competition, []roleplay.Item) {
	t.Helper()
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	rf := AddRoleplayFlags(fs)
	if err := fs.Parse(append([]string{"--items", "4", "--turns", "1"}, args...)); err != nil {
		t.Fatal(err)
	}
	opts, err := rf.Options(url)
	if err != nil {
		t.Fatal(err)
	}
	var cfg roleplay.CompetitionConfig
	if err := json.Unmarshal(opts["roleplay"], &cfg); err != nil {
		t.Fatal(err)
	}
	egress := Egress{HTTPClient: &http.Client{}}
	cfg, items, err := PlanRoleplay(context.Background(), cfg, nil, "", egress)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return competition.Competition{ID: "rp", Kind: roleplay.Name, Config: raw}, items
}

// evaluateSubmission evaluates the persona at url as the hub evaluates a
// submission, and returns its results and its item scores.
func evaluateSubmission(t *testing.T, c competition.Competition, items []roleplay.Item, url string) ([]eval.Result, []roleplay.Detail) {
	t.Helper()
	return evaluate(t, c, items, competition.Submission{Model: competition.ModelSpec{BaseURL: url, Model: baseline.ModelPrefix + roleplaytest.PolicyPersona}})
}

// evaluate evaluates submission s as the hub does (the worker has set an
// artifact submission's model to its launched server).
func evaluate(t *testing.T, c competition.Competition, items []roleplay.Item, s competition.Submission) ([]eval.Result, []roleplay.Detail) {
	t.Helper()
	ev, err := SubmissionRoleplayEvaluator(c, s, "", items, Egress{HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	var rs []eval.Result
	if err := runner.Run(context.Background(), ev, runner.Config{Concurrency: 2, Sink: func(r eval.Result) error {
		rs = append(rs, r)
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	ds := make([]roleplay.Detail, len(rs))
	for i, r := range rs {
		if err := json.Unmarshal(r.Detail, &ds[i]); err != nil {
			t.Fatal(err)
		}
	}
	return rs, ds
}

func TestTheScoringPresetIsStoredAndUsed(t *testing.T) {
	url := roleplayServer(t, 0)
	c, items := roleplayCompetition(t, url, "--scoring", roleplay.PresetDippyFeb2025)
	if !strings.Contains(string(c.Config), `"preset":"dippy-2025-02"`) {
		t.Fatalf("stored config %s does not name the preset", c.Config)
	}
	rs, ds := evaluateSubmission(t, c, items, url)
	for _, d := range ds {
		if d.Compare == nil {
			t.Fatalf("item %s: the February 2025 preset asked the judge no comparison", d.ItemID)
		}
	}
	card, scores, err := Roleplay{}.Score(c, rs)
	if err != nil || len(scores) != len(items) {
		t.Fatalf("Score = %v, %v", scores, err)
	}
	comps, err := Roleplay{}.Components(c, rs)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := comps["judge_win"]; !ok || card.Score <= 0 || card.Score > 1 {
		t.Fatalf("card %+v, components %v", card, comps)
	}

	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	rf := AddRoleplayFlags(fs)
	if err := fs.Parse([]string{"--scoring", "dippy-1999"}); err != nil {
		t.Fatal(err)
	}
	if _, err := rf.Options(url); err == nil || !strings.Contains(err.Error(), "--scoring") {
		t.Fatalf("an unknown preset: %v", err)
	}
}

// Attack: a competitor's server declares a tiny parameter count for its
// model to win the size component. The hub does not take a competitor's
// word for it: unless the competition trusts declared counts (only for
// servers its operator runs), the count is unknown, the size component is
// left out and the weights renormalise, exactly as for a server declaring
// nothing. Trusted, the same declaration does reach the size component.
func TestAFakeTinyParameterCountDoesNotWinTheSizeComponent(t *testing.T) {
	url := roleplayServer(t, 1) // one parameter: size would score 1
	c, items := roleplayCompetition(t, url, "--scoring", roleplay.PresetDippyJul2024)
	_, ds := evaluateSubmission(t, c, items, url)
	for _, d := range ds {
		if d.Params != 0 || d.ParamsSource != "" || d.Components.Size != 0 {
			t.Fatalf("item %s: a competitor's declared count reached scoring: params %d (%s), size %v",
				d.ItemID, d.Params, d.ParamsSource, d.Components.Size)
		}
	}

	trusted, items := roleplayCompetition(t, url, "--scoring", roleplay.PresetDippyJul2024, "--trust-declared-params")
	_, ds = evaluateSubmission(t, trusted, items, url)
	for _, d := range ds {
		if d.Params != 1 || d.ParamsSource != roleplay.ParamsDeclared || d.Components.Size < 0.999 {
			t.Fatalf("item %s: a trusted declared count was not used: params %d (%s), size %v",
				d.ItemID, d.Params, d.ParamsSource, d.Components.Size)
		}
	}
}

// An artifact submission's size component reads the parameter count the
// worker measured from its files (ArtifactSpec.Parameters), even in a
// competition that trusts declared counts: the server launched from the
// artifact declares what the competitor's files say (here one parameter),
// so its declaration is never asked. Without a measured count the size is
// left out, again without asking.
func TestAnArtifactsSizeIsItsMeasuredParameterCount(t *testing.T) {
	url := roleplayServer(t, 1)
	c, items := roleplayCompetition(t, url, "--scoring", roleplay.PresetDippyJul2024, "--trust-declared-params")
	const measured = 7_000_000_000
	s := competition.Submission{Model: competition.ModelSpec{BaseURL: url, Model: baseline.ModelPrefix + roleplaytest.PolicyPersona},
		Artifact: &competition.ArtifactSpec{TreeDigest: "d", Parameters: measured}}
	size := func(params int64) float64 {
		s.Artifact.Parameters = params
		_, ds := evaluate(t, c, items, s)
		for _, d := range ds {
			if d.Params != params || d.ParamsSource != roleplay.ParamsMeasured || d.Components.Size != ds[0].Components.Size {
				t.Fatalf("item %s: params %d (%s), size %v; want the measured %d", d.ItemID, d.Params, d.ParamsSource, d.Components.Size, params)
			}
		}
		return ds[0].Components.Size
	}
	// The server's one declared parameter would score about 1.
	if big, small := size(measured), size(measured/7); !(0 < big && big < small && small < 0.999) {
		t.Fatalf("size of %d parameters %v, of %d %v; want 0 < the first < the second < 0.999", measured, big, measured/7, small)
	}
	s.Artifact.Parameters = 0
	_, ds := evaluate(t, c, items, s)
	for _, d := range ds {
		if d.Params != 0 || d.ParamsSource != "" || d.Components.Size != 0 {
			t.Fatalf("item %s: an artifact without a measured count took its server's declaration: params %d (%s), size %v",
				d.ItemID, d.Params, d.ParamsSource, d.Components.Size)
		}
	}
}
