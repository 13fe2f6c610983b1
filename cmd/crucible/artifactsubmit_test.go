package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crucible/internal/app"
	"crucible/internal/artifact"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/identity"
	"crucible/internal/launcher"
	"crucible/internal/store/storetest"
)

const siqaTaskFile = "../../internal/eval/task/testdata/social_iqa.yaml"
const siqaDevRows = "../../internal/eval/task/testdata/siqa/dev.jsonl"

// writeSafetensors writes a safetensors file whose header declares tensors
// of the given shapes (F32, zero-filled) and returns its parameter count.
func writeSafetensors(t *testing.T, path string, shapes map[string][]int64) int64 {
	t.Helper()
	header := map[string]any{}
	var params, offset int64
	for name, shape := range shapes {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		header[name] = map[string]any{"dtype": "F32", "shape": shape, "data_offsets": []int64{offset, offset + 4*n}}
		params, offset = params+n, offset+4*n
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	b = append(append(b, h...), make([]byte, offset)...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return params
}

// taskArtifact writes an artifact directory the baseline serves as a
// model of the Social IQa task with policy, and returns its parameter count.
func taskArtifact(t *testing.T, dir, policy string, shapes map[string][]int64) int64 {
	t.Helper()
	files := map[string][]byte{}
	for from, to := range map[string]string{siqaTaskFile: "social_iqa.yaml", siqaDevRows: "rows.jsonl"} {
		files[to] = []byte(readFile(t, from))
	}
	return policyArtifact(t, dir, fmt.Sprintf(`{"policy": %q, "task": "social_iqa.yaml", "data": "rows.jsonl"}`, policy), files, shapes)
}

// newKeys writes a new key for each name in dir and returns their files.
func newKeys(t *testing.T, dir string, names ...string) map[string]string {
	t.Helper()
	keys := map[string]string{}
	for _, who := range names {
		keys[who] = filepath.Join(dir, who+".key")
		if _, stderr, code := crucible(t, "keys", "new", "--out", keys[who]); code != 0 {
			t.Fatal(stderr)
		}
	}
	return keys
}

// tarball packs dir's regular files into a .tar.gz at path.
func tarball(t *testing.T, dir, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b := []byte(readFile(t, filepath.Join(dir, e.Name())))
		if err := tw.WriteHeader(&tar.Header{Name: e.Name(), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestArtifactSubmissionsAreFetchedVerifiedLaunchedAndRanked: a task
// competition taking artifacts, with a parameter cap. Two keys submit
// artifact directories (a tiny safetensors file with real shapes and the
// baseline policy file: oracle, first) by --path; the in-process worker
// fetches each into its model cache, verifies the tree digest, records the
// parameter count, launches `crucible model-server --artifact {dir}` on
// loopback and evaluates it. Oracle ranks above first; a third key
// entering the first tree later is a copy, ranked and earning nothing; a
// tarball whose files changed after the commit fails with the digest
// mismatch; an artifact over the cap fails with the reason. On SQLite and
// PostgreSQL.
func TestArtifactSubmissionsAreFetchedVerifiedLaunchedAndRanked(t *testing.T) {
	bin := crucibleBinary(t)
	dir := t.TempDir()
	keys := newKeys(t, dir, "owner", "alice", "bob", "carol")
	oracle, first, big, tampered := filepath.Join(dir, "oracle"), filepath.Join(dir, "first"), filepath.Join(dir, "big"), filepath.Join(dir, "tampered")
	oracleParams := taskArtifact(t, oracle, "oracle", map[string][]int64{"embed": {16, 8}, "head": {8, 3}})
	firstParams := taskArtifact(t, first, "first", map[string][]int64{"embed": {4, 4}})
	taskArtifact(t, big, "first", map[string][]int64{"embed": {50, 50}})
	taskArtifact(t, tampered, "random", map[string][]int64{"embed": {2, 2}})
	committed, err := artifact.HashTree(tampered, artifact.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tampered, app.ArtifactPolicyFile), []byte(`{"policy": "oracle", "task": "social_iqa.yaml", "data": "rows.jsonl"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	swapped, err := artifact.HashTree(tampered, artifact.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	tgz := filepath.Join(dir, "tampered.tar.gz")
	tarball(t, tampered, tgz)

	for _, db := range storetest.Databases(t) {
		t.Run(db.Name, func(t *testing.T) {
			url := serveInProcess(t, "--database", db.URL, "--model-cache", filepath.Join(dir, db.Name+"-cache"), "--model-cache-bytes", "100000000",
				"--model-launcher", bin+" model-server --artifact {dir} --listen 127.0.0.1:{port} --name {name}", "--max-launched", "2")
			out, stderr, code := crucible(t, "competition", "create", "--server", url, "--key", keys["owner"], "--kind", "task",
				"--title", "SIQa, served here", "--task", siqaTaskFile, "--data", siqaDevRows, "--submissions", "artifacts", "--max-parameters", "1000", "--json")
			var comp competition.Competition
			if code != 0 || json.Unmarshal([]byte(out), &comp) != nil {
				t.Fatalf("competition create: exit %d: %s %s", code, out, stderr)
			}
			submit := func(who string, args ...string) competition.Submission {
				t.Helper()
				out, stderr, code := crucible(t, append([]string{"submit", "artifact", "--server", url, "--key", keys[who], "--competition", comp.ID, "--json"}, args...)...)
				var sub competition.Submission
				if code != 0 || json.Unmarshal([]byte(out), &sub) != nil || sub.Artifact == nil {
					t.Fatalf("submit artifact %v: exit %d: %s %s", args, code, out, stderr)
				}
				return sub
			}
			if _, stderr, code := crucible(t, "submit", "model", "--server", url, "--key", keys["alice"], "--competition", comp.ID,
				"--base-url", "http://127.0.0.1:1/v1", "--model", "m"); code == 0 || !strings.Contains(stderr, "an artifact submission is its source and tree digest alone") {
				t.Fatalf("a model into an artifact competition: exit %d, %q; want it refused", code, stderr)
			}
			a := submit("alice", "--path", oracle)
			b := submit("bob", "--path", first)
			copied := submit("carol", "--path", oracle)
			bad := submit("carol", "--url", "file://"+tgz, "--digest", committed.Digest)
			over := submit("bob", "--path", big)
			if copied.Digest != a.Digest || copied.Artifact.Commitment == a.Artifact.Commitment {
				t.Errorf("the copy: digest %s commitment %s; want alice's tree digest %s under its own commitment", copied.Digest, copied.Artifact.Commitment, a.Digest)
			}

			key, err := identity.Load(keys["owner"])
			if err != nil {
				t.Fatal(err)
			}
			c, err := client.New(client.Config{Server: url, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			subs, err := c.WaitScored(wctx, comp.ID, 100*time.Millisecond, nil)
			if err != nil {
				t.Fatalf("waiting for the evaluations: %v (%+v)", err, subs)
			}
			byID := map[string]competition.Submission{}
			for _, s := range subs {
				byID[s.ID] = s
			}
			for _, tc := range []struct {
				sub    competition.Submission
				params int64
			}{{a, oracleParams}, {b, firstParams}, {copied, oracleParams}} {
				s := byID[tc.sub.ID]
				if s.State != competition.StateScored || s.Artifact == nil || s.Artifact.Parameters != tc.params {
					t.Errorf("%s: %s %q, artifact %+v; want scored with %d parameters (the header's shapes)", s.Name, s.State, s.Reason, s.Artifact, tc.params)
					continue
				}
				if s.Card == nil || s.Card.Served == nil || s.Card.Served.Launcher != "crucible" || s.Card.Served.Cores == 0 {
					t.Errorf("%s: card %+v; want it to say the crucible launcher served it, and on what", s.Name, s.Card)
				}
			}
			wantReason := fmt.Sprintf("artifact digest mismatch: committed %s, fetched %s", committed.Digest, swapped.Digest)
			if s := byID[bad.ID]; s.State != competition.StateFailed || !strings.Contains(s.Reason, wantReason) {
				t.Errorf("tampered: %s %q; want failed with %q", s.State, s.Reason, wantReason)
			}
			if s := byID[over.ID]; s.State != competition.StateFailed || !strings.Contains(s.Reason, "artifact has 2500 parameters; this competition accepts at most 1000") {
				t.Errorf("over the cap: %s %q; want failed with the cap", s.State, s.Reason)
			}
			rows, err := c.Leaderboard(context.Background(), comp.ID)
			if err != nil {
				t.Fatal(err)
			}
			rank := map[string]competition.Row{}
			for _, r := range rows {
				rank[r.SubmissionID] = r
			}
			if len(rows) != 3 || rank[a.ID].Rank != 1 || rank[a.ID].Score != 1 || rank[b.ID].Score >= 1 || rank[a.ID].CopyOf != "" {
				t.Errorf("leaderboard %+v; want the oracle artifact first at 1, first below", rows)
			}
			resp, err := http.Get(url + "/s/" + a.ID)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf(`<dd id="parameters">%d (`, oracleParams); !strings.Contains(string(page), want) || !strings.Contains(string(page), a.Artifact.Commitment) {
				t.Errorf("the submission page does not show the parameter count (%s) and the commitment", want)
			}
			if r := rank[copied.ID]; r.CopyOf != a.ID {
				t.Errorf("carol's copy of alice's tree: %+v; want it ranked as a copy of %s (earning nothing)", r, a.ID)
			}
		})
	}
	measureArtifactCycle(t, bin, oracle)
}

// measureArtifactCycle logs the time to fetch+verify an artifact into a
// fresh cache, launch it as a model server and stop it.
func measureArtifactCycle(t *testing.T, bin, dir string) {
	tree, err := artifact.HashTree(dir, artifact.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	cache, err := artifact.OpenCache(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	l, err := launcher.New(launcher.Config{Command: bin + " model-server --artifact {dir} --listen 127.0.0.1:{port} --name {name}",
		StartTimeout: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	got, done, err := cache.Get(context.Background(), tree.Digest, artifact.Fetcher{}, artifact.Source{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	fetched := time.Now()
	le, err := l.Acquire(context.Background(), got, "measured")
	if err != nil {
		t.Fatal(err)
	}
	launched := time.Now()
	le.Release()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifact of %d bytes: fetch+verify %s, launch %s, stop %s, total %s", tree.Bytes,
		fetched.Sub(start), launched.Sub(fetched), time.Since(launched), time.Since(start))
}
