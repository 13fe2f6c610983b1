package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"crucible/internal/app"
	"crucible/internal/artifact"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/eval/mcq"
	"crucible/internal/identity"
	"crucible/internal/modelhost"
	"crucible/internal/store/storetest"
	"crucible/internal/validator/node"
)

// lockedBuffer is a log sink the launcher's goroutines and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAValidatorServesArtifactSubmissionsItself: an mcq competition taking
// artifacts; alice (oracle), bob (first-choice) and carol (random) submit trees the
// hub's worker fetches, verifies, launches and scores. Then the hub's
// stored results of alice and bob are tampered (every score inverted) and
// carol changes her files after the commit. A validator trusting the hub
// follows the tampering (bob above alice, carol in its vector); a validator
// serving the artifacts itself (its own cache and launcher) fetches each
// tree from its source, verifies it against the committed digest and
// evaluates it with its own dataset: alice above bob, carol no weight with
// the digest mismatch as the reason. Without --model-cache and
// --model-launcher, `validator run` stops and says so. On SQLite and
// PostgreSQL.
func TestAValidatorServesArtifactSubmissionsItself(t *testing.T) {
	bin := crucibleBinary(t)
	dir := t.TempDir()
	keys := newKeys(t, dir, "owner", "alice", "bob", "carol", "validator")
	key := bytes.Join(bytes.SplitAfter(app.SampleDataset, []byte("\n"))[:20], nil)
	dataset := filepath.Join(dir, "siqa-20.jsonl")
	if err := os.WriteFile(dataset, key, 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := mcq.ParseFile(dataset)
	if err != nil {
		t.Fatal(err)
	}
	launch := bin + " model-server --artifact {dir} --listen 127.0.0.1:{port} --name {name}"
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))

	for _, db := range storetest.Databases(t) {
		t.Run(db.Name, func(t *testing.T) {
			ctx := context.Background()
			trees := filepath.Join(dir, db.Name)
			oracle, first, later := filepath.Join(trees, "oracle"), filepath.Join(trees, "first"), filepath.Join(trees, "later")
			policyArtifact(t, oracle, `{"policy": "oracle", "dataset": "key.jsonl"}`, map[string][]byte{"key.jsonl": key}, map[string][]int64{"embed": {3, 5}})
			policyArtifact(t, first, `{"policy": "first"}`, map[string][]byte{}, map[string][]int64{"embed": {4, 4}})
			policyArtifact(t, later, `{"policy": "random"}`, map[string][]byte{}, map[string][]int64{"embed": {2, 2}})
			a, url := openAndServe(t, app.Config{Database: db.URL, Listen: "127.0.0.1:0", MaxAttempts: 2, Logger: discard,
				Models: app.Models{CacheDir: filepath.Join(dir, db.Name+"-hub-cache"), CacheBytes: 100_000_000, MaxLaunched: 2, Launcher: launch}})
			out, stderr, code := crucible(t, "competition", "create", "--server", url, "--key", keys["owner"], "--kind", "mcq", "--title", "SIQa, served by validators",
				"--dataset", dataset, "--submissions", "artifacts", "--json")
			var comp competition.Competition
			if code != 0 || json.Unmarshal([]byte(out), &comp) != nil {
				t.Fatalf("competition create: exit %d: %s %s", code, out, stderr)
			}
			clientOf := func(who string) *client.Client {
				t.Helper()
				k, err := identity.Load(keys[who])
				if err != nil {
					t.Fatal(err)
				}
				c, err := client.New(client.Config{Server: url, Key: k})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			uid, subs := map[string]int64{}, map[string]competition.Submission{}
			for _, m := range []struct{ who, path string }{{"alice", oracle}, {"bob", first}, {"carol", later}} {
				reg, err := clientOf(m.who).Register(ctx)
				if err != nil {
					t.Fatal(err)
				}
				uid[m.who] = reg.UID
				out, stderr, code := crucible(t, "submit", "artifact", "--server", url, "--key", keys[m.who], "--competition", comp.ID, "--path", m.path, "--json")
				var sub competition.Submission
				if code != 0 || json.Unmarshal([]byte(out), &sub) != nil || sub.Artifact == nil {
					t.Fatalf("submit artifact %s: exit %d: %s %s", m.path, code, out, stderr)
				}
				subs[m.who] = sub
			}
			wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			scored, err := clientOf("owner").WaitScored(wctx, comp.ID, 100*time.Millisecond, nil)
			if err != nil {
				t.Fatalf("waiting for the hub's evaluations: %v (%+v)", err, scored)
			}
			for _, s := range scored {
				if s.State != competition.StateScored {
					t.Fatalf("%s: %s %q; want the hub to score every artifact", s.ID, s.State, s.Reason)
				}
			}

			// The hub's stored results are tampered: alice's and bob's
			// scores inverted. Carol's files change after her commit.
			if _, err := a.DB.SQL().ExecContext(ctx, fmt.Sprintf(`UPDATE item_results SET score = 1 - score, correct = 1 - correct
				WHERE submission_id IN ('%s', '%s')`, subs["alice"].ID, subs["bob"].ID)); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(later, app.ArtifactPolicyFile), []byte(`{"policy": "first"}`), 0o644); err != nil {
				t.Fatal(err)
			}
			swapped, err := artifact.HashTree(later, artifact.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}

			trusting, err := node.New(node.Config{Hub: clientOf("validator"), Competition: comp.ID, TrustHubResults: true, Logger: discard}).Weights(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, weighed := trusting[uid["carol"]]; !(trusting[uid["bob"]] > trusting[uid["alice"]]) || !weighed {
				t.Fatalf("hub-trusting weights %v (uids %v); want them to follow the tampered results: bob above alice, carol weighted", trusting, uid)
			}

			var logs lockedBuffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			host, err := modelhost.Open(modelhost.Config{CacheDir: filepath.Join(dir, db.Name+"-validator-cache"), CacheBytes: 100_000_000, Launcher: launch}, logger)
			if err != nil {
				t.Fatal(err)
			}
			defer host.Close()
			own, err := node.New(node.Config{Hub: clientOf("validator"), Competition: comp.ID, Dataset: ds, Models: host, Logger: logger}).Weights(ctx)
			if err != nil {
				t.Fatalf("own weights: %v\n%s", err, logs.String())
			}
			if !(own[uid["alice"]] > own[uid["bob"]]) {
				t.Errorf("own weights %v (uids %v); want the oracle (alice) above first (bob)", own, uid)
			}
			if w, ok := own[uid["carol"]]; ok {
				t.Errorf("carol's tree changed after her commit got weight %v; want none", w)
			}
			if want := fmt.Sprintf("artifact digest mismatch: committed %s, fetched %s", subs["carol"].Artifact.TreeDigest, swapped.Digest); !strings.Contains(logs.String(), want) {
				t.Errorf("the validator's log does not give carol's reason %q:\n%s", want, logs.String())
			}

			// Without a model host a validator evaluating the competition
			// itself stops at the artifact submissions and says so.
			_, err = node.New(node.Config{Hub: clientOf("validator"), Competition: comp.ID, Dataset: ds, Logger: discard}).Weights(ctx)
			if !errors.Is(err, node.ErrCannotEvaluate) || !strings.Contains(err.Error(), "serves no artifacts") {
				t.Errorf("a validator without --model-cache: %v; want ErrCannotEvaluate naming the flags", err)
			}
			_, stderr, code = crucible(t, "validator", "run", "--server", url, "--key", keys["validator"], "--competition", comp.ID, "--dataset", dataset)
			if code == 0 || !strings.Contains(stderr, "--model-cache DIR and --model-launcher TEMPLATE") {
				t.Errorf("validator run without the model flags: exit %d, %q; want it to stop and name them", code, stderr)
			}
		})
	}
}

// TestValidatorRunModelFlagsNeedEachOther: `validator run` takes the
// workers' model flags and refuses an incomplete set before it reaches
// the hub, naming what is missing.
func TestValidatorRunModelFlagsNeedEachOther(t *testing.T) {
	dir := t.TempDir()
	keyPath := newKeys(t, dir, "validator")["validator"]
	cache := filepath.Join(dir, "cache")
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--model-fetcher", "true {repo} {revision} {dir}"}, "--model-fetcher needs --model-cache and --model-launcher"},
		{[]string{"--model-cache", cache}, "both --model-cache DIR and --model-launcher TEMPLATE"},
		{[]string{"--model-launcher", "true {dir} {port} {name}"}, "both --model-cache DIR and --model-launcher TEMPLATE"},
		{[]string{"--model-cache", cache, "--model-launcher", "true {dir} {port} {name}", "--model-cache-bytes", "0"}, "--model-cache-bytes 0"},
	} {
		var errb bytes.Buffer
		err := runValidatorNode(context.Background(), append([]string{"--server", "http://127.0.0.1:1", "--key", keyPath, "--competition", "c-x"}, tc.flags...), &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.flags, err, tc.want)
		}
	}
}
