package kinds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval/patch"
	"crucible/internal/kind"
)

// TestPlanningAPatchResolvesOnlyUploadedOrRegisteredRepos: a stored task
// (say, from before repositories were vetted) naming a host path outside
// the registered roots is refused when a submission is planned, and one
// naming an uploaded bundle is judged over a verified local copy of it.
func TestPlanningAPatchResolvesOnlyUploadedOrRegisteredRepos(t *testing.T) {
	data := []byte("bundle bytes")
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	fetched := 0
	repos := patch.Repos{Roots: []string{t.TempDir()}, CacheDir: t.TempDir(), Fetch: func(_ context.Context, d string) ([]byte, error) {
		fetched++
		if d != digest {
			t.Fatalf("fetched %s, want %s", d, digest)
		}
		return data, nil
	}}
	published, submitted := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)
	plan := func(repo string) (*PatchEvaluator, error) {
		item, _ := json.Marshal(patch.Task{InstanceID: "t", Repo: repo, CreatedAt: published.AddDate(-8, 0, 0), BaseCommit: "abc", TestCmd: patch.Command{"true"}, LogParser: patch.ParserGoTest})
		c := competition.Competition{ID: "c", Kind: patch.Name, Config: json.RawMessage(`{}`), CreatedAt: published}
		s := competition.Submission{ID: "s", Patch: &competition.PatchSpec{Task: "t", Diff: "x"}, CommittedAt: submitted}
		ev, err := Patch{Repos: repos}.Plan(context.Background(), c, s, "", []json.RawMessage{item})
		if err != nil {
			return nil, err
		}
		return ev.(*PatchEvaluator), nil
	}
	if _, err := plan(os.TempDir()); err == nil || !strings.Contains(err.Error(), "not beneath") {
		t.Fatalf("a host path: %v, want a refusal", err)
	}
	if _, err := plan("sha256:../../etc"); err == nil || !strings.Contains(err.Error(), "not a sha256 digest") {
		t.Fatalf("a malformed digest: %v, want a refusal", err)
	}
	for range 2 {
		ev, err := plan(patch.BundlePrefix + digest)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(ev.Task.Repo)
		if err != nil || string(got) != string(data) || !strings.HasPrefix(ev.Task.Repo, repos.CacheDir) {
			t.Fatalf("judged over %s holding %q (%v), want the cached bundle", ev.Task.Repo, got, err)
		}
		// The time component runs from the competition's creation, not the mined commit's date.
		jc := ev.Config.JudgeConfig(ev.PublishedAt, ev.SubmittedAt)
		if !jc.Published.Equal(published) || !jc.Now().Equal(submitted) {
			t.Fatalf("time component from %v to %v, want %v to %v", jc.Published, jc.Now(), published, submitted)
		}
	}
	if fetched != 1 {
		t.Fatalf("fetched %d times, want once (then cached)", fetched)
	}
}

// TestPatchCompetitionPolicyIsStrictByDefaultAndRefusesUnknownRules: a
// patch competition judges with every policy rule unless its creator
// relaxes some by name; a misspelt rule is refused at creation and in a
// stored config.
func TestPatchCompetitionPolicyIsStrictByDefaultAndRefusesUnknownRules(t *testing.T) {
	task, _ := json.Marshal(patch.Task{InstanceID: "t", Repo: "r", BaseCommit: "abc", TestCmd: patch.Command{"true"}, LogParser: patch.ParserGoTest})
	prepare := func(p *patch.Policy) (PatchConfig, error) {
		spec := kind.Spec{Title: "fix", Dataset: task,
			ResolveRepo: func(context.Context, string, string) (string, error) { return "r", nil }}
		if p != nil {
			raw, _ := json.Marshal(p)
			spec.Options = map[string]json.RawMessage{"patch_policy": raw}
		}
		prep, err := Patch{}.Prepare(context.Background(), spec)
		var cfg PatchConfig
		if err == nil {
			err = json.Unmarshal(prep.Config, &cfg)
		}
		return cfg, err
	}
	cfg, err := prepare(nil)
	if err != nil || len(cfg.Policy.Allow) != 0 || len(cfg.JudgeConfig(time.Time{}, time.Now()).Policy.Allow) != 0 {
		t.Fatalf("default policy %+v (%v), want strict", cfg.Policy, err)
	}
	cfg, err = prepare(&patch.Policy{Allow: []string{"pytest-config"}})
	if err != nil || strings.Join(cfg.JudgeConfig(time.Time{}, time.Now()).Policy.Allow, ",") != "pytest-config" {
		t.Fatalf("relaxed policy %+v (%v), want pytest-config allowed", cfg.Policy, err)
	}
	if _, err := prepare(&patch.Policy{Allow: []string{"pytest-conf"}}); err == nil || !strings.Contains(err.Error(), `unknown rule "pytest-conf"`) {
		t.Fatalf("a misspelt rule: %v, want a refusal", err)
	}
	c := competition.Competition{ID: "c", Kind: patch.Name, Config: json.RawMessage(`{"policy":{"allow":["gone-rule"]}}`)}
	s := competition.Submission{ID: "s", Patch: &competition.PatchSpec{Task: "t", Diff: "x"}}
	if _, err := (Patch{}).Plan(context.Background(), c, s, "", []json.RawMessage{task}); err == nil || !strings.Contains(err.Error(), `unknown rule "gone-rule"`) {
		t.Fatalf("a stored unknown rule: %v, want a refusal", err)
	}
}
