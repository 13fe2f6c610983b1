package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crucible/internal/app"
	"crucible/internal/competition"
	"crucible/internal/jobs/jobstest"
	"crucible/internal/ledger"
	"crucible/internal/pool"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// TestAPoolOfArtifactsServesRanksAndPaysThem: `pool create --task
// --submissions artifacts` on a hub whose endpoint egress is the default
// (no loopback): alice and bob join with artifact directories (the
// baseline's oracle and first policies, with tiny safetensors files),
// carol joins alice's tree later. The evaluate workers fetch and verify
// each tree and serve it with `crucible model-server --artifact` launched
// on loopback; the budget runs out over the schedule, and the settlement
// ranks the oracle first and pays alice and bob the whole fund, carol's
// copy ranked but paid 0. An endpoint is refused by the artifact pool. On
// SQLite and PostgreSQL.
func TestAPoolOfArtifactsServesRanksAndPaysThem(t *testing.T) {
	bin := crucibleBinary(t)
	dir := t.TempDir()
	oracle, first := filepath.Join(dir, "oracle"), filepath.Join(dir, "first")
	oracleParams := taskArtifact(t, oracle, "oracle", map[string][]int64{"embed": {16, 8}, "head": {8, 3}})
	firstParams := taskArtifact(t, first, "first", map[string][]int64{"embed": {4, 4}})
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			h := startTaskPoolHubWith(t, app.Config{Database: d.URL, Models: app.Models{CacheDir: filepath.Join(dir, d.Name+"-cache"),
				CacheBytes: 100 << 20, Launcher: bin + " model-server --artifact {dir} --listen 127.0.0.1:{port} --name {name}", MaxLaunched: 2}})
			ctx := context.Background()
			out, stderr, code := crucible(t, h.createArgs("--task", siqaTaskFile, "--data", siqaDevRows, "--submissions", "artifacts",
				"--max-parameters", "1000")...)
			var p competition.Pool
			if code != 0 || json.Unmarshal([]byte(out), &p) != nil {
				t.Fatalf("pool create --submissions artifacts: exit %d: %s %s", code, out, stderr)
			}
			comp, err := h.funderC.Competition(ctx, p.CompetitionID)
			if caps := competition.EntriesOf(comp); err != nil || caps.MaxParameters != 1000 {
				t.Fatalf("the pool's competition caps %+v (%v); want 1000 parameters", caps, err)
			}
			join := func(who string, args ...string) competition.Submission {
				t.Helper()
				key, _ := newKeyFile(t, h.dir, who)
				out, stderr, code := crucible(t, append([]string{"pool", "join", "--server", h.url, "--key", key, "--pool", p.CompetitionID,
					"--name", who, "--json"}, args...)...)
				var sub competition.Submission
				if code != 0 || json.Unmarshal([]byte(out), &sub) != nil || sub.Artifact == nil {
					t.Fatalf("pool join %s %v: exit %d: %s %s", who, args, code, out, stderr)
				}
				return sub
			}
			a := join("alice", "--path", oracle)
			b := join("bob", "--path", first)
			h.clock.Advance(time.Second) // carol commits later than alice
			copied := join("carol", "--path", oracle)
			if copied.Digest != a.Digest || copied.Artifact.Commitment == a.Artifact.Commitment {
				t.Fatalf("carol's entry: digest %s commitment %s; want alice's tree %s under her own commitment", copied.Digest, copied.Artifact.Commitment, a.Digest)
			}
			dave, _ := newKeyFile(t, h.dir, "dave")
			if _, stderr, code := crucible(t, "pool", "join", "--server", h.url, "--key", dave, "--pool", p.CompetitionID,
				"--base-url", "http://127.0.0.1:1/v1", "--model", "m"); code == 0 || !strings.Contains(stderr, "an artifact submission is its source and tree digest alone") {
				t.Fatalf("an endpoint into an artifact pool: exit %d, %q; want it refused", code, stderr)
			}

			tick := func() {
				t.Helper()
				if err := jobstest.Tick(t, h.app.Queue, h.app.Pools.TickAll, p.CompetitionID); err != nil {
					t.Fatal(err)
				}
			}
			h.clock.Advance(time.Minute)
			tick()
			h.clock.Advance(time.Minute + time.Second)
			tick()
			out, stderr, code = crucible(t, "pool", "settle", "--server", h.url, "--key", h.funder, "--pool", p.CompetitionID, "--json")
			var set competition.Settlement
			if code != 0 || json.Unmarshal([]byte(out), &set) != nil {
				t.Fatalf("pool settle: exit %d %q %q", code, out, stderr)
			}
			t.Logf("settlement: %+v", set)
			payout := map[string]competition.Payout{}
			paid := set.Refunded
			for _, po := range set.Payouts {
				payout[po.SubmissionID] = po
				paid += po.Units
				if got := balance(t, h.funderC, po.Account); got != po.Units {
					t.Errorf("%s (%s) holds %d; want its payout %d", po.Name, po.Account, got, po.Units)
				}
			}
			pa, pb, pc := payout[a.ID], payout[b.ID], payout[copied.ID]
			// The private items are the pool's secret draw: bob's first-choice
			// policy is right on those whose answer is the first choice, and
			// on a draw without one (about 1 in 650) he earns nothing.
			firstRight := firstChoiceRightOnPrivate(t, h.app.DB, p.CompetitionID)
			switch {
			case len(set.Payouts) != 3 || set.Payouts[0].SubmissionID != a.ID && set.Payouts[0].SubmissionID != copied.ID:
				t.Fatalf("payouts %+v; want three, the oracle's tree first", set.Payouts)
			case pa.Score != 1 || pa.Items != 10 || pa.Units <= pb.Units:
				t.Errorf("alice %+v, bob %+v; want alice's oracle at 1 on the 10 private items paid more than bob", pa, pb)
			case math.Abs(pb.Score-float64(firstRight)/10) > 1e-9 || (pb.Units > 0) != (firstRight > 0):
				t.Errorf("bob %+v; want his first-choice policy at %d/10, right on that many private items, paid iff above 0", pb, firstRight)
			case pc.CopyOf != a.ID || pc.Units != 0 || pc.Score != 1:
				t.Errorf("carol's copy %+v; want it ranked at 1 as a copy of %s, paid 0", pc, a.ID)
			case pa.Units+pb.Units+set.Refunded != 1000 || paid != 1000:
				t.Errorf("alice %d + bob %d + refund %d; want the fund, 1000, to the originals", pa.Units, pb.Units, set.Refunded)
			}
			if got := balance(t, h.funderC, ledger.EscrowAccount(p.CompetitionID)); got != 0 {
				t.Errorf("escrow holds %d after settlement; want 0", got)
			}
			st, err := h.funderC.Pool(ctx, p.CompetitionID)
			if err != nil || st.Pool.State != competition.PoolSettled {
				t.Fatalf("after settling: %+v (%v); want settled", st, err)
			}
			params := map[string]int64{a.ID: oracleParams, b.ID: firstParams, copied.ID: oracleParams}
			for _, s := range st.Entrants {
				if s.State != competition.StateScored || s.ItemsDone != 20 || s.Artifact == nil || s.Artifact.Parameters != params[s.ID] {
					t.Errorf("entrant %s: %s, %d items, artifact %+v; want scored on all 20 with %d parameters read from its files",
						s.Name, s.State, s.ItemsDone, s.Artifact, params[s.ID])
				}
			}
		})
	}
}

// TestPoolJoinTakesAnEndpointOrAnArtifact: `pool join` refuses, before
// anything is sent, an entry that is both an endpoint and an artifact,
// neither, or an artifact by repository or URL without its digest; and
// `pool create --submissions` goes with --task only.
func TestPoolJoinTakesAnEndpointOrAnArtifact(t *testing.T) {
	dir := t.TempDir()
	art := filepath.Join(dir, "model")
	taskArtifact(t, art, "first", map[string][]int64{"embed": {2, 2}})
	server := "http://127.0.0.1:1" // nothing listens: a request sent would fail differently
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--path", art, "--base-url", "http://127.0.0.1:8000/v1", "--model", "m"}, "an artifact (--path, --repo or --url) is entered alone"},
		{[]string{"--name", "x"}, "--base-url and --model (an endpoint), or --path"},
		{[]string{"--repo", "org/m", "--revision", "abc"}, "--digest is required with --repo or --url"},
		{[]string{"--digest", "00"}, "one of --path, --repo (with --revision) or --url is required"},
		{[]string{"--path", art, "--url", "file:///x.tgz"}, "give one of --path, --repo (with --revision) or --url"},
	} {
		_, stderr, code := crucible(t, append([]string{"pool", "join", "--server", server, "--pool", "c-x"}, tc.args...)...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("pool join %v: exit %d, %q; want %q", tc.args, code, stderr, tc.want)
		}
	}
	_, stderr, code := crucible(t, "pool", "create", "--server", server, "--dataset", "x.jsonl", "--submissions", "artifacts",
		"--title", "t", "--fund", "1", "--asset", "USDC", "--allocation", "proportional", "--end", "+1h")
	if code == 0 || !strings.Contains(stderr, "--submissions and the artifact caps go with --task") {
		t.Errorf("pool create --dataset --submissions: exit %d, %q; want it refused", code, stderr)
	}
}

// firstChoiceRightOnPrivate counts the private items of pool id (its
// stored split) whose answer in the Social IQa rows is the first choice.
func firstChoiceRightOnPrivate(t *testing.T, db *store.DB, id string) int {
	t.Helper()
	ctx := context.Background()
	p, err := db.GetPool(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(siqaDevRows)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var row struct{ Label string }
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatal(err)
		}
		labels = append(labels, row.Label)
	}
	right := 0
	for i, private := range pool.NewSplit(len(labels), p.PrivateFraction, p.Seed).Private {
		if private && labels[i] == "1" {
			right++
		}
	}
	return right
}
