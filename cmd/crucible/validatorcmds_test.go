package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/consensus"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/identity"
	"crucible/internal/incentive"
)

func TestConsensusCommandPrintsConsensusAndIncentivePerMiner(t *testing.T) {
	weights := writeCSV(t, "validator,alice,bob\nv1,0.5,0.5\nv2,1,0\n")
	var out, errb bytes.Buffer
	if err := runConsensus(context.Background(), []string{"--weights", weights, "--stakes", "v1=49,v2=51", "--kappa", "0.51", "--json"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var sim struct {
		Consensus map[string]float64 `json:"consensus"`
		Incentive map[string]float64 `json:"incentive"`
		Dividends map[string]float64 `json:"dividends"`
	}
	if err := json.Unmarshal(out.Bytes(), &sim); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if sim.Consensus["alice"] != 1 || sim.Consensus["bob"] != 0 || math.Abs(sim.Incentive["alice"]-1) > 1e-9 || len(sim.Dividends) != 2 {
		t.Fatalf("got %+v", sim)
	}
	out.Reset()
	if err := runConsensus(context.Background(), []string{"--weights", weights, "--stakes", "v1=1,v2=1"}, &out, &errb); err != nil ||
		!strings.Contains(out.String(), "CONSENSUS") || !strings.Contains(out.String(), "alice") {
		t.Fatalf("table: %v\n%s", err, out.String())
	}
}

func TestConsensusCommandErrorsNameTheProblem(t *testing.T) {
	weights := writeCSV(t, "validator,alice\nv1,1\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"the flags are required", []string{"--weights", weights}, "--stakes"},
		{"a missing file is reported", []string{"--weights", filepath.Join(t.TempDir(), "nope.csv"), "--stakes", "v1=1"}, "no such file"},
		{"a validator without stake is named", []string{"--weights", weights, "--stakes", "v2=1"}, "no stake for validators v1"},
		{"a malformed stake is a usage error", []string{"--weights", weights, "--stakes", "v1"}, "VALIDATOR=STAKE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := runConsensus(context.Background(), tt.args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestFiveValidatorsOutvoteAColluderSurviveAKillAndRefuseReplays is the
// issue's multi-process test: a hub and five `crucible validator run`
// processes on loopback. Four evaluate the miners' models themselves; one
// colludes with its own miner (weight 1). The colluding miner's incentive
// stays within 5 points of what the honest validators alone give it; an
// honest validator killed mid-epoch leaves the next epoch to close with the
// other four; replayed and foreign-signed weight vectors are refused.
func TestFiveValidatorsOutvoteAColluderSurviveAKillAndRefuseReplays(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs six processes over a few short epochs; skipped with -short")
	}
	bin := crucibleBinary(t)
	ctx := context.Background()
	dir := t.TempDir()
	lines := strings.SplitAfter(string(app.SampleDataset), "\n")[:40]
	data := strings.Join(lines, "")
	datasetPath := filepath.Join(dir, "siqa-40.jsonl")
	if err := os.WriteFile(datasetPath, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := mcq.Parse(strings.NewReader(data), "siqa-40")
	if err != nil {
		t.Fatal(err)
	}
	policies := []string{"oracle", "first", "random"}
	h, err := mcqtest.New(mcqtest.Config{Policies: policies, Key: ds})
	if err != nil {
		t.Fatal(err)
	}
	models := httptest.NewServer(h)
	t.Cleanup(models.Close)

	newKey := func(name string) (*identity.Key, string) {
		k, err := identity.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".key")
		if err := k.Save(path); err != nil {
			t.Fatal(err)
		}
		return k, path
	}
	admin, _ := newKey("admin")
	addr := freeAddr(t)
	hubURL := "http://" + addr
	startProcess(t, exec.Command(bin, "serve", "--database", filepath.Join(dir, "hub.db"), "--listen", addr, "--epoch-length", "6s",
		"--admin-key", admin.ID(), "--slice", "1s", "--rescue-after", "4s", "--log-level", "error", "--allow-endpoints", "127.0.0.0/8"))
	waitHealthy(t, addr)
	ac, _ := client.New(client.Config{Server: hubURL, Key: admin})
	comp, err := ac.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "mcq", Title: "consensus", DatasetName: "siqa-40", Dataset: data})
	if err != nil {
		t.Fatal(err)
	}

	// Three miners register and submit; the colluder's miner is the weakest.
	uidOf := map[string]int64{}
	for _, p := range policies {
		k, _ := newKey("miner-" + p)
		mc, _ := client.New(client.Config{Server: hubURL, Key: k})
		reg, err := mc.Register(ctx)
		if err != nil {
			t.Fatal(err)
		}
		uidOf[p] = reg.UID
		if _, err := mc.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{BaseURL: models.URL + "/v1", Model: "baseline-" + p}); err != nil {
			t.Fatal(err)
		}
	}
	colludeUID := uidOf["random"]

	// Five validators with equal stake; the last one colludes.
	type proc struct {
		key *identity.Key
		cmd *exec.Cmd
	}
	var vals []proc
	for i := range 5 {
		k, path := newKey(fmt.Sprintf("validator-%d", i))
		if _, err := ac.SetStake(ctx, k.ID(), 100); err != nil {
			t.Fatal(err)
		}
		args := []string{"validator", "run", "--hub", hubURL, "--key", path, "--competition", comp.ID, "--interval", "300ms",
			"--temperature", "0.5", "--log-level", "error", "--allow-endpoints", "127.0.0.0/8,::1"}
		if i == 4 {
			args = append(args, "--collude-with", fmt.Sprint(colludeUID))
		} else {
			args = append(args, "--dataset", datasetPath)
		}
		cmd := exec.Command(bin, args...)
		startProcess(t, cmd)
		vals = append(vals, proc{k, cmd})
	}
	colluder := vals[4].key.ID()

	// Wait for an epoch in which all five posted.
	var full int64 = -1
	for deadline := time.Now().Add(40 * time.Second); full < 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no epoch got weight vectors from all five validators within 40 s")
		}
		cur, err := ac.CurrentEpoch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		vs, err := ac.WeightVectors(ctx, cur.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, v := range vs {
			seen[v.Validator] = true
		}
		if len(seen) == 5 {
			full = cur.Epoch
		}
	}

	// Kill an honest validator mid-epoch.
	killed := vals[1]
	if err := killed.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = killed.cmd.Wait()
	cur, err := ac.CurrentEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := cur.Epoch + 1 // the killed validator cannot have posted in it

	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		cur, err := ac.CurrentEpoch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Epoch > after {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("epoch %d did not end", after)
		}
	}
	recFull, err := ac.CloseEpoch(ctx, full)
	if err != nil {
		t.Fatal(err)
	}
	recAfter, err := ac.CloseEpoch(ctx, after)
	if err != nil {
		t.Fatalf("the epoch after the kill did not close: %v", err)
	}

	t.Run("the colluding miner's incentive stays within 5 points of the honest validators' alone", func(t *testing.T) {
		if len(recFull.Validators) != 5 {
			t.Fatalf("epoch %d counted %d validators, want 5", full, len(recFull.Validators))
		}
		var in incentive.YumaInput
		for _, v := range recFull.Validators {
			if v.Key == colluder {
				continue
			}
			row := make([]float64, len(recFull.Miners))
			for j, m := range recFull.Miners {
				row[j] = v.Weights[m.UID]
			}
			in.Weights, in.Stakes = append(in.Weights, row), append(in.Stakes, float64(v.Stake))
		}
		honest, err := incentive.Yuma(in)
		if err != nil {
			t.Fatal(err)
		}
		for j, m := range recFull.Miners {
			if m.UID != colludeUID {
				continue
			}
			got, want := m.Incentive, honest.Incentive[j]
			t.Logf("colluding miner UID %d: incentive %.4f with the colluder, %.4f from the honest validators alone (consensus %.4f)",
				m.UID, got, want, m.Consensus)
			if want <= 0 || math.Abs(got-want) > 0.05 {
				t.Fatalf("incentive %.4f vs honest %.4f: more than 5 points apart (or the honest validators gave it nothing)", got, want)
			}
			// Without clipping (a stake-weighted mean of normalised rows) the lie would pay.
			var naive, total float64
			for _, v := range recFull.Validators {
				var sum float64
				for _, w := range v.Weights {
					sum += w
				}
				naive += float64(v.Stake) * v.Weights[m.UID] / sum
				total += float64(v.Stake)
			}
			if naive /= total; got > (naive+want)/2 {
				t.Fatalf("incentive %.4f is not well below the unclipped mean %.4f", got, naive)
			}
		}
	})

	t.Run("the epoch after the kill closes with the other four", func(t *testing.T) {
		if len(recAfter.Validators) != 4 {
			t.Fatalf("epoch %d counted %d validators, want 4", after, len(recAfter.Validators))
		}
		for _, v := range recAfter.Validators {
			if v.Key == killed.key.ID() {
				t.Fatalf("the killed validator is counted in epoch %d", after)
			}
		}
	})

	t.Run("emissions reach the ledger once and epoch show prints them", func(t *testing.T) {
		again, err := ac.CloseEpoch(ctx, full)
		if err != nil || !again.ClosedAt.Equal(recFull.ClosedAt) {
			t.Fatalf("closing again: %v, %v", again.ClosedAt, err)
		}
		out, err := exec.Command(bin, "epoch", "show", "--server", hubURL, "--epoch", fmt.Sprint(full), "--json").Output()
		if err != nil {
			t.Fatal(err)
		}
		var shown apiv1.ConsensusRecord
		if err := json.Unmarshal(out, &shown); err != nil || shown.Epoch != full || len(shown.Miners) != 3 {
			t.Fatalf("epoch show: %v\n%s", err, out)
		}
		hist, err := ac.History(ctx, "miner:"+shown.Miners[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range hist {
			if p.Transfer.Key == consensus.EmissionKey(full) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("the emission of epoch %d appears %d times in the miner's history, want once", full, n)
		}
	})

	// Last, in an epoch no assertion reads (a vector posted here counts as the validator's).
	t.Run("replayed and foreign-signed weight vectors are refused", func(t *testing.T) {
		testWeightSignatures(t, hubURL, vals[0].key)
	})
}

// testWeightSignatures posts weight vectors with raw signed requests: a
// fresh one is accepted, the same bytes again are refused as a replay, a
// vector signed by a key without stake is forbidden, and one claiming the
// validator's key but signed by another is refused.
func testWeightSignatures(t *testing.T, hubURL string, v *identity.Key) {
	ctx := context.Background()
	c, _ := client.New(client.Config{Server: hubURL})
	cur, err := c.CurrentEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	uids, err := c.UIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hub, err := c.Hub(ctx)
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/api/v1/consensus/epochs/%d/weights", cur.Epoch)
	body := []byte(fmt.Sprintf(`{"weights":{"%d":1}}`, uids[0].UID))
	send := func(headers map[string]string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, hubURL+path, bytes.NewReader(body))
		for k, val := range headers {
			req.Header.Set(k, val)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error
	}
	headers, _ := v.Sign(hub, http.MethodPost, path, time.Now().Unix(), body)
	if code, msg := send(headers); code != http.StatusCreated {
		t.Fatalf("a validator's signed vector: %d %s", code, msg)
	}
	if code, msg := send(headers); code != http.StatusUnauthorized || !strings.Contains(msg, "replayed") {
		t.Fatalf("the same request again: %d %s, want 401 replayed", code, msg)
	}
	stranger, _ := identity.NewKey()
	foreign, _ := stranger.Sign(hub, http.MethodPost, path, time.Now().Unix(), body)
	if code, msg := send(foreign); code != http.StatusForbidden || !strings.Contains(msg, "not a validator with stake") {
		t.Fatalf("a vector signed by a key without stake: %d %s, want 403", code, msg)
	}
	forged, _ := stranger.Sign(hub, http.MethodPost, path, time.Now().Unix(), body)
	forged[identity.HeaderKey] = v.ID()
	if code, msg := send(forged); code != http.StatusUnauthorized || !strings.Contains(msg, "bad signature") {
		t.Fatalf("a vector claiming the validator's key, signed by another: %d %s, want 401", code, msg)
	}
}

// TestValidatorRunNeedsAllOfItsOwnRoleplayModels: a validator given only
// part of its own roleplay models is told what is missing.
func TestValidatorRunNeedsAllOfItsOwnRoleplayModels(t *testing.T) {
	k, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v.key")
	if err := k.Save(path); err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	err = runValidatorNode(context.Background(), []string{"--key", path, "--competition", "c-x", "--reference-url", "http://127.0.0.1:1/v1"}, &errb)
	if err == nil || !strings.Contains(err.Error(), "--judge-url") {
		t.Fatalf("err = %v, want --judge-url named", err)
	}
}

// TestValidatorRunBoundsItsTasksFile: a patch validator's --tasks file is
// read only up to the limit; a larger one is refused before the validator
// starts, and a missing one is named.
func TestValidatorRunBoundsItsTasksFile(t *testing.T) {
	k, err := identity.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyPath, big := filepath.Join(dir, "v.key"), filepath.Join(dir, "tasks.jsonl")
	if err := k.Save(keyPath); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxTasksFile + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	for file, want := range map[string]string{big: "over the limit", filepath.Join(dir, "missing.jsonl"): "missing.jsonl"} {
		var errb bytes.Buffer
		err := runValidatorNode(context.Background(), []string{"--key", keyPath, "--competition", "c-x", "--tasks", file}, &errb)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("--tasks %s: err = %v, want %q", file, err, want)
		}
	}
}
