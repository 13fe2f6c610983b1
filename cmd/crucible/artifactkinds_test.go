package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/eval/roleplay"
	"crucible/internal/eval/roleplay/roleplaytest"
	"crucible/internal/identity"
	"crucible/internal/store/storetest"
)

// policyArtifact writes an artifact directory the baseline serves as a
// model with the given crucible-policy.json and extra files, and returns
// the parameter count its safetensors header declares.
func policyArtifact(t *testing.T, dir, policy string, files map[string][]byte, shapes map[string][]int64) int64 {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files[app.ArtifactPolicyFile] = []byte(policy)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return writeSafetensors(t, filepath.Join(dir, "model.safetensors"), shapes)
}

// TestRoleplayAndMCQTakeArtifactSubmissions: a roleplay competition created
// with --submissions artifacts. Alice and Bob submit artifact trees (a tiny
// safetensors file with real shapes and a baseline roleplay policy:
// persona, persona-plus); the in-process worker fetches, verifies and
// launches each as `crucible model-server --artifact {dir}` and evaluates
// it against the baseline reference and judge. The parameter counts are
// the headers' and the size component reads them (measured, the larger
// model scoring less). Carol submits Alice's tree later: when the epoch
// closes it is a copy with weight 0, the originals get weight. An mcq
// competition taking artifacts scores an oracle artifact through its
// launched server. On SQLite and PostgreSQL; the time to fetch+verify,
// launch and stop the persona artifact is logged.
func TestRoleplayAndMCQTakeArtifactSubmissions(t *testing.T) {
	bin := crucibleBinary(t)
	dir := t.TempDir()
	keys := newKeys(t, dir, "owner", "alice", "bob", "carol")
	persona, plus, oracle := filepath.Join(dir, "persona"), filepath.Join(dir, "plus"), filepath.Join(dir, "oracle")
	personaParams := policyArtifact(t, persona, `{"policy": "persona"}`, map[string][]byte{}, map[string][]int64{"embed": {16, 8}, "head": {8, 3}})
	plusParams := policyArtifact(t, plus, `{"policy": "persona-plus"}`, map[string][]byte{}, map[string][]int64{"embed": {4, 4}})
	oracleParams := policyArtifact(t, oracle, `{"policy": "oracle", "dataset": "key.jsonl"}`, map[string][]byte{"key.jsonl": app.SampleDataset},
		map[string][]int64{"embed": {3, 5}})
	dataset := filepath.Join(dir, "siqa.jsonl")
	if err := os.WriteFile(dataset, app.SampleDataset, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := roleplaytest.New()
	if err != nil {
		t.Fatal(err)
	}
	judges := httptest.NewServer(h) // the competition's own reference and judge
	t.Cleanup(judges.Close)

	for _, db := range storetest.Databases(t) {
		t.Run(db.Name, func(t *testing.T) {
			// One-minute epochs from a minute boundary; the fake clock stays
			// within the signature window of the real one.
			t0 := time.Now().UTC().Truncate(time.Minute)
			clk := clock.NewFake(t0.Add(time.Second))
			ctx := context.Background()
			a, url := openAndServe(t, app.Config{Database: db.URL, Listen: "127.0.0.1:0", Clock: clk, MaxAttempts: 2, AllowEndpoints: "127.0.0.0/8",
				EpochLength: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Models: app.Models{CacheDir: filepath.Join(dir, db.Name+"-cache"), CacheBytes: 100_000_000, MaxLaunched: 2,
					Launcher: bin + " model-server --artifact {dir} --listen 127.0.0.1:{port} --name {name}"}})
			create := func(args ...string) competition.Competition {
				t.Helper()
				out, stderr, code := crucible(t, append([]string{"competition", "create", "--server", url, "--key", keys["owner"],
					"--submissions", "artifacts", "--max-parameters", "1000", "--json"}, args...)...)
				var comp competition.Competition
				if code != 0 || json.Unmarshal([]byte(out), &comp) != nil {
					t.Fatalf("competition create %v: exit %d: %s %s", args, code, out, stderr)
				}
				return comp
			}
			submit := func(comp competition.Competition, who, path string) competition.Submission {
				t.Helper()
				clk.Advance(time.Second) // commit order is time order
				out, stderr, code := crucible(t, "submit", "artifact", "--server", url, "--key", keys[who], "--competition", comp.ID, "--path", path, "--json")
				var sub competition.Submission
				if code != 0 || json.Unmarshal([]byte(out), &sub) != nil || sub.Artifact == nil {
					t.Fatalf("submit artifact %s: exit %d: %s %s", path, code, out, stderr)
				}
				return sub
			}
			rp := create("--kind", "roleplay", "--title", "Characters, served here", "--items", "3", "--turns", "1", "--fresh-items=false",
				"--reference-url", judges.URL+"/v1", "--judge-url", judges.URL+"/v1")
			alice, bob := submit(rp, "alice", persona), submit(rp, "bob", plus)
			carol := submit(rp, "carol", persona)
			mc := create("--kind", "mcq", "--title", "SIQa, served here", "--dataset", dataset)
			answered := submit(mc, "alice", oracle)

			key, err := identity.Load(keys["owner"])
			if err != nil {
				t.Fatal(err)
			}
			c, err := client.New(client.Config{Server: url, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			wait := func(comp competition.Competition) map[string]competition.Submission {
				t.Helper()
				wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
				defer cancel()
				subs, err := c.WaitScored(wctx, comp.ID, 100*time.Millisecond, nil)
				if err != nil {
					t.Fatalf("waiting for the evaluations of %s: %v (%+v)", comp.Kind, err, subs)
				}
				byID := map[string]competition.Submission{}
				for _, s := range subs {
					byID[s.ID] = s
				}
				return byID
			}
			subs := wait(rp)
			size := map[string]float64{}
			for _, tc := range []struct {
				sub    competition.Submission
				params int64
			}{{alice, personaParams}, {bob, plusParams}, {carol, personaParams}} {
				s := subs[tc.sub.ID]
				if s.State != competition.StateScored || s.Artifact == nil || s.Artifact.Parameters != tc.params || s.Card == nil || s.Card.Served == nil {
					t.Fatalf("%s: %s %q, artifact %+v, card %+v; want scored where it was served, with %d parameters (the header's shapes)",
						s.ID, s.State, s.Reason, s.Artifact, s.Card, tc.params)
				}
				page, err := c.Results(ctx, s.ID, 0, 10)
				if err != nil || len(page.Results) != 3 {
					t.Fatalf("%s results: %+v, %v", s.ID, page, err)
				}
				for _, r := range page.Results {
					var d roleplay.Detail
					if err := json.Unmarshal(r.Detail, &d); err != nil {
						t.Fatal(err)
					}
					if d.Params != tc.params || d.ParamsSource != roleplay.ParamsMeasured || !(d.Components.Size > 0) {
						t.Fatalf("%s item %d: params %d (%s), size %v; want the measured %d in the size component", s.ID, r.Index, d.Params, d.ParamsSource,
							d.Components.Size, tc.params)
					}
					size[s.ID] = d.Components.Size
				}
			}
			if !(size[alice.ID] < size[bob.ID]) {
				t.Errorf("size component: %d parameters %v, %d parameters %v; want the larger model to score less", personaParams, size[alice.ID],
					plusParams, size[bob.ID])
			}

			// Close the epoch: the later copy of Alice's tree earns nothing.
			clk.Set(t0.Add(2 * time.Minute))
			rec, err := a.Epochs.Close(ctx, rp.ID, a.Epochs.Of(t0))
			if err != nil {
				t.Fatal(err)
			}
			if rec.Copies[carol.ID] != alice.ID || rec.Weights[carol.ID] != 0 {
				t.Errorf("carol's copy of alice's tree: copy of %q, weight %v; want a copy of %s with weight 0", rec.Copies[carol.ID], rec.Weights[carol.ID], alice.ID)
			}
			if !(rec.Weights[alice.ID] > 0) || !(rec.Weights[bob.ID] > 0) {
				t.Errorf("weights %v; want the originals (alice %s, bob %s) weighted", rec.Weights, alice.ID, bob.ID)
			}

			s := wait(mc)[answered.ID]
			if s.State != competition.StateScored || s.Card == nil || s.Card.Score != 1 || s.Artifact == nil || s.Artifact.Parameters != oracleParams {
				t.Errorf("mcq oracle artifact: %s %q, card %+v, artifact %+v; want scored 1 through its launched server, %d parameters",
					s.State, s.Reason, s.Card, s.Artifact, oracleParams)
			}
		})
	}
	measureArtifactCycle(t, bin, persona)
}

// --submissions and the artifact caps are refused for a kind whose entries
// are not models, before anything is read or sent.
func TestEntryFlagsAreRefusedForOtherKinds(t *testing.T) {
	_, stderr, code := crucible(t, "competition", "create", "--kind", "patch", "--tasks", "missing.jsonl", "--title", "t",
		"--submissions", "artifacts", "--server", "http://127.0.0.1:1", "--key", "missing.key")
	if code != 2 || !strings.Contains(stderr, "apply to model competitions (task, mcq, roleplay), not patch") {
		t.Fatalf("exit %d: %s; want a usage error naming the kinds", code, stderr)
	}
}
