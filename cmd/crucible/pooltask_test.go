package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/baseline"
	"crucible/internal/client"
	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/consensus"
	"crucible/internal/eval/taskkind"
	"crucible/internal/identity"
	"crucible/internal/jobs/jobstest"
	"crucible/internal/ledger"
	"crucible/internal/store/storetest"
)

// The shipped example task (examples/task): Social IQa's siqa.yaml reading
// 30 dev rows from a CSV file.
var (
	exampleTask = filepath.Join("..", "..", "examples", "task", "siqa.yaml")
	exampleRows = filepath.Join("..", "..", "examples", "task", "siqa-dev.csv")
)

// taskPoolHub is a hub with workers on a fake clock (kept within the
// signature window of the real one) and keys made with `crucible keys new`:
// an operator (its admin key) and a funder whose account the operator
// credits with 1000 USDC.
type taskPoolHub struct {
	app              *app.App
	clock            *clock.Fake
	url, dir         string
	operator, funder string // key files
	funderID         string
	funderC          *client.Client
}

func startTaskPoolHub(t *testing.T, database string) *taskPoolHub {
	t.Helper()
	return startTaskPoolHubWith(t, app.Config{Database: database, AllowEndpoints: "127.0.0.0/8"})
}

// startTaskPoolHubWith is startTaskPoolHub with cfg's database, endpoint
// egress and model serving.
func startTaskPoolHubWith(t *testing.T, cfg app.Config) *taskPoolHub {
	t.Helper()
	h := &taskPoolHub{dir: t.TempDir(), clock: clock.NewFake(time.Now().UTC().Truncate(time.Second))}
	var operatorID string
	h.operator, operatorID = newKeyFile(t, h.dir, "operator")
	h.funder, h.funderID = newKeyFile(t, h.dir, "funder")
	h.app, h.url = openAndServe(t, app.Config{Database: cfg.Database, Listen: "127.0.0.1:0", AllowEndpoints: cfg.AllowEndpoints, Models: cfg.Models,
		MaxAttempts: 1, Clock: h.clock, Consensus: consensus.Config{Admins: []string{operatorID}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if _, stderr, code := crucible(t, "ledger", "deposit", "--server", h.url, "--key", h.operator, "--to", h.funderID,
		"--amount", "1000", "--asset", "USDC"); code != 0 {
		t.Fatal(stderr)
	}
	key, err := identity.Load(h.funder)
	if err != nil {
		t.Fatal(err)
	}
	if h.funderC, err = client.New(client.Config{Server: h.url, Key: key}); err != nil {
		t.Fatal(err)
	}
	return h
}

func newKeyFile(t *testing.T, dir, name string) (file, id string) {
	t.Helper()
	file = filepath.Join(dir, name+".key")
	out, stderr, code := crucible(t, "keys", "new", "--out", file, "--json")
	var k struct {
		KeyID string `json:"key_id"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &k) != nil {
		t.Fatalf("keys new: %d %q %q", code, out, stderr)
	}
	return file, k.KeyID
}

// createArgs is `crucible pool create` for the funder, signed, with the
// pool's terms, followed by the command's own flags.
func (h *taskPoolHub) createArgs(flags ...string) []string {
	now := h.clock.Now()
	return append([]string{"pool", "create", "--server", h.url, "--key", h.funder, "--json", "--title", "SIQA task pool",
		"--fund", "1000", "--asset", "USDC", "--allocation", "proportional", "--start", now.Format(time.RFC3339),
		"--end", now.Add(2 * time.Minute).Format(time.RFC3339), "--budget", "2700/h", "--refresh", "1m"}, flags...)
}

// TestAPoolOnATaskFileRunsItsBudgetAndPaysTheOracleMost: `pool create
// --task` on the example task file with its CSV rows, three `model-server
// --task` baselines (oracle, first, random) joined with `pool join`; the
// budget (90 items in two minutes) runs to the end on the evaluate
// workers, the public snapshot and the settlement rank the oracle first,
// and the ledger pays out the whole fund from escrow.
func TestAPoolOnATaskFileRunsItsBudgetAndPaysTheOracleMost(t *testing.T) {
	policies, err := app.TaskBaselinePolicies([]string{"oracle", "first", "random"}, app.TaskBaseline{TaskFile: exampleTask})
	if err != nil {
		t.Fatal(err)
	}
	models := httptest.NewServer(baseline.New(baseline.Config{Policies: policies}))
	defer models.Close()
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			h := startTaskPoolHub(t, d.URL)
			ctx := context.Background()
			out, stderr, code := crucible(t, h.createArgs("--task", exampleTask, "--data", exampleRows, "--num-fewshot", "0")...)
			if code != 0 {
				t.Fatalf("pool create --task: exit %d: %s", code, stderr)
			}
			var p competition.Pool
			if err := json.Unmarshal([]byte(out), &p); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			comp, err := h.funderC.Competition(ctx, p.CompetitionID)
			if err != nil || comp.Kind != taskkind.TaskName || comp.Items != 30 || comp.DatasetName != "siqa-dev" {
				t.Fatalf("the pool's competition is %+v (%v); want a task competition of the 30 CSV rows", comp, err)
			}
			var src competition.TaskSource
			if err := json.Unmarshal(comp.Config, &src); err != nil || src.File != "siqa.yaml" || src.NumFewshot == nil || *src.NumFewshot != 0 {
				t.Fatalf("stored task %s (%v); want siqa.yaml with 0 few-shot", comp.Config, err)
			}

			for _, m := range []string{"oracle", "first", "random"} {
				key, _ := newKeyFile(t, h.dir, m)
				if _, stderr, code := crucible(t, "pool", "join", "--server", h.url, "--key", key, "--pool", p.CompetitionID,
					"--base-url", models.URL+"/v1", "--model", baseline.ModelPrefix+m, "--name", m); code != 0 {
					t.Fatalf("pool join %s: %s", m, stderr)
				}
			}
			tick := func() {
				t.Helper()
				if err := jobstest.Tick(t, h.app.Queue, h.app.Pools.TickAll, p.CompetitionID); err != nil {
					t.Fatal(err)
				}
			}
			// Half the schedule: 45 items of the budget, 15 per entrant.
			h.clock.Advance(time.Minute)
			tick()
			st, err := h.funderC.Pool(ctx, p.CompetitionID)
			if err != nil || st.BudgetUsed != 45 || len(st.Entrants) != 3 {
				t.Fatalf("after a minute: %+v (%v); want 45 items used by 3 entrants", st, err)
			}
			out, stderr, code = crucible(t, "pool", "leaderboard", "--server", h.url, "--pool", p.CompetitionID, "--json")
			var snap competition.Snapshot
			if code != 0 || json.Unmarshal([]byte(out), &snap) != nil {
				t.Fatalf("pool leaderboard: exit %d %q %q", code, out, stderr)
			}
			if len(snap.Rows) != 3 || snap.Rows[0].Name != "oracle" || snap.Rows[0].Score != 1 {
				t.Fatalf("public snapshot %+v; want three rows led by the oracle at 1", snap.Rows)
			}

			// The final tick spends the rest of the budget, the next settles.
			h.clock.Advance(time.Minute + time.Second)
			tick()
			out, stderr, code = crucible(t, "pool", "settle", "--server", h.url, "--key", h.funder, "--pool", p.CompetitionID, "--json")
			var set competition.Settlement
			if code != 0 || json.Unmarshal([]byte(out), &set) != nil {
				t.Fatalf("pool settle: exit %d %q %q", code, out, stderr)
			}
			if set.ForcedBy != "" || len(set.Payouts) != 3 || set.Payouts[0].Name != "oracle" || set.Payouts[0].Score != 1 || set.Payouts[0].Items != 15 {
				t.Fatalf("settlement %+v; want the final tick's, the oracle first at 1 on the 15 private items", set)
			}
			t.Logf("settlement: %+v", set)
			paid := set.Refunded
			for _, po := range set.Payouts[1:] {
				if po.Units >= set.Payouts[0].Units || po.Score >= 1 || po.Items != 15 {
					t.Errorf("payout %+v; want less than the oracle's %d on its 15 private items", po, set.Payouts[0].Units)
				}
			}
			for _, po := range set.Payouts {
				paid += po.Units
				if got := balance(t, h.funderC, po.Account); got != po.Units {
					t.Errorf("%s (%s) holds %d; want its payout %d", po.Name, po.Account, got, po.Units)
				}
			}
			if paid != 1000 {
				t.Errorf("payouts and refund sum to %d; want the fund, 1000", paid)
			}
			if got := balance(t, h.funderC, ledger.EscrowAccount(p.CompetitionID)); got != 0 {
				t.Errorf("escrow holds %d after settlement; want 0", got)
			}
			if got := balance(t, h.funderC, ledger.FunderAccount(h.funderID)); got != set.Refunded {
				t.Errorf("the funder holds %d; want the refund %d", got, set.Refunded)
			}
			if got := balance(t, h.funderC, ""); got != 0 {
				t.Errorf("the ledger's balances sum to %d; want 0", got)
			}
			st, err = h.funderC.Pool(ctx, p.CompetitionID)
			if err != nil || st.Pool.State != competition.PoolSettled || st.BudgetUsed != 90 {
				t.Fatalf("after settling: %+v (%v); want settled with all 90 items evaluated", st, err)
			}
			for _, s := range st.Entrants {
				if s.State != competition.StateScored || s.ItemsDone != 30 {
					t.Errorf("entrant %s: %s with %d items; want scored on all 30", s.Name, s.State, s.ItemsDone)
				}
			}
		})
	}
}

// TestAHostileTaskMakesNoPool: a funder's pool request whose task is
// malformed — a preset and a file at once, an unknown preset, a few-shot
// count out of range, a task file without rows, multiple-choice settings on
// a task, a data file over the bound or with a bad row — is refused with
// the reason, and no pool, competition or escrow is made: the funder keeps
// its deposit.
func TestAHostileTaskMakesNoPool(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			h := startTaskPoolHub(t, d.URL)
			ctx := context.Background()
			yaml, err := os.ReadFile(exampleTask)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := taskkind.SentRows(exampleRows)
			if err != nil {
				t.Fatal(err)
			}
			now := h.clock.Now()
			request := func(task competition.TaskSource, dataset string) apiv1.CreatePoolRequest {
				return apiv1.CreatePoolRequest{Title: "hostile", Dataset: dataset, Fund: 1000, Asset: "USDC", Allocation: "proportional",
					Start: now, End: now.Add(time.Hour), Task: &task}
			}
			tooMany, negative := taskkind.MaxFewshot+1, -1
			both := request(competition.TaskSource{Preset: "social_iqa", File: "siqa.yaml", YAML: string(yaml)}, string(rows))
			mcqSettings := request(competition.TaskSource{Preset: "social_iqa"}, "")
			mcqSettings.Mode = "loglik"
			for _, tc := range []struct {
				name string
				req  apiv1.CreatePoolRequest
				want string
			}{
				{"a preset and a file", both, "a preset or a task file, not both"},
				{"an unknown preset", request(competition.TaskSource{Preset: "nosuch"}, ""), "gsm8k, social_iqa"},
				{"num_fewshot above the bound", request(competition.TaskSource{Preset: "social_iqa", NumFewshot: &tooMany}, ""), "num_fewshot 65 is outside 0..64"},
				{"a negative num_fewshot", request(competition.TaskSource{Preset: "social_iqa", NumFewshot: &negative}, ""), "num_fewshot -1 is outside 0..64"},
				{"a task file without its rows", request(competition.TaskSource{File: "siqa.yaml", YAML: string(yaml)}, ""), "send the evaluation rows"},
				{"a task file with a refused key", request(competition.TaskSource{File: "bad.yaml", YAML: string(yaml) + "process_docs: !function utils.process_docs\n"}, string(rows)), "bad.yaml:"},
				{"multiple-choice settings", mcqSettings, "a task pool's come from its task"},
			} {
				_, err := h.funderC.CreatePool(ctx, tc.req)
				var ae *client.APIError
				if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || !strings.Contains(ae.Message, tc.want) {
					t.Errorf("%s: %v; want a 400 saying %q", tc.name, err, tc.want)
				}
			}

			huge := filepath.Join(h.dir, "huge.csv")
			f, err := os.Create(huge)
			if err == nil {
				err = f.Truncate(taskkind.MaxSentData + 1) // sparse: the size is all that is read
			}
			if err == nil {
				err = f.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			bad := filepath.Join(h.dir, "bad.csv")
			if err := os.WriteFile(bad, []byte("context,question,answerA,answerB,answerC,label\nc,q,a,b,c,1\n\"unterminated,q,a,b,c,1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			for data, want := range map[string]string{
				huge: "huge.csv: " + strconv.Itoa(taskkind.MaxSentData+1) + " bytes, more than the " + strconv.Itoa(taskkind.MaxSentData),
				bad:  "bad.csv: parse error on line 3",
			} {
				if _, stderr, code := crucible(t, h.createArgs("--task", exampleTask, "--data", data)...); code == 0 || !strings.Contains(stderr, want) {
					t.Errorf("pool create --data %s: exit %d, %q; want %q", filepath.Base(data), code, stderr, want)
				}
			}

			if pools, err := h.funderC.Pools(ctx); err != nil || len(pools) != 0 {
				t.Fatalf("pools after the refusals: %+v (%v); want none", pools, err)
			}
			if comps, err := h.funderC.Competitions(ctx); err != nil || len(comps) != 0 {
				t.Fatalf("competitions after the refusals: %d (%v); want none", len(comps), err)
			}
			if got := balance(t, h.funderC, ledger.FunderAccount(h.funderID)); got != 1000 {
				t.Fatalf("the funder holds %d after the refusals; want its whole deposit, 1000", got)
			}
			bals, err := h.funderC.Balances(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bals {
				if strings.HasPrefix(b.Account, "escrow:") {
					t.Fatalf("balance %+v after the refusals; want no escrow account", b)
				}
			}
		})
	}
}

// balance is what account holds in USDC ("": the sum over every account).
func balance(t *testing.T, c *client.Client, account string) int64 {
	t.Helper()
	bals, err := c.Balances(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, b := range bals {
		if b.Asset == "USDC" {
			sum += b.Amount
		}
	}
	return sum
}

// TestCompetitionCreateSendsTaskRowsOfAnyFormat: `competition create --kind
// task` reads --data in its format (here CSV) and the hub makes a task
// competition of its rows; a malformed CSV row stops the command with its
// file and line, and nothing reaches the hub.
func TestCompetitionCreateSendsTaskRowsOfAnyFormat(t *testing.T) {
	dir := t.TempDir()
	key, _ := newKeyFile(t, dir, "me")
	server := serveInProcess(t, "--no-work")
	create := []string{"competition", "create", "--server", server, "--key", key, "--kind", "task", "--task", exampleTask, "--title", "SIQA", "--json"}
	bad := filepath.Join(dir, "rows.csv")
	if err := os.WriteFile(bad, []byte("context,question,answerA,answerB,answerC,label\nc,q,a,b,c,1\nc,q,a,b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := crucible(t, append(create, "--data", bad)...); code == 0 || !strings.Contains(stderr, "rows.csv: record on line 3: wrong number of fields") {
		t.Fatalf("a CSV row short of fields: exit %d, %q; want it named by file and line", code, stderr)
	}
	out, stderr, code := crucible(t, "competition", "list", "--server", server, "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("competitions after the refusal: exit %d, %q %q; want none", code, out, stderr)
	}
	out, stderr, code = crucible(t, append(create, "--data", exampleRows)...)
	var comp competition.Competition
	if code != 0 || json.Unmarshal([]byte(out), &comp) != nil {
		t.Fatalf("competition create --data siqa-dev.csv: exit %d, %q %q", code, out, stderr)
	}
	if comp.Kind != taskkind.TaskName || comp.Items != 30 || comp.DatasetName != "siqa-dev" {
		t.Fatalf("created %+v; want a task competition of the 30 CSV rows", comp)
	}
}

// TestTaskRowsBoundIsTheHubs: the CLI refuses task rows beyond the bound
// the hub puts on a request's dataset, for competitions and pools alike.
func TestTaskRowsBoundIsTheHubs(t *testing.T) {
	want := "max=" + strconv.Itoa(taskkind.MaxSentData>>20) + "MiB"
	for _, v := range []any{apiv1.CreateCompetitionRequest{}, apiv1.CreatePoolRequest{}} {
		f, _ := reflect.TypeOf(v).FieldByName("Dataset")
		if tag := f.Tag.Get("input"); !strings.Contains(tag, want) {
			t.Errorf("%T.Dataset is bounded by %q; taskkind.MaxSentData says %s", v, tag, want)
		}
	}
}
