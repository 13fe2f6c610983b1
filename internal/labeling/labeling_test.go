package labeling_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/preference"
	"crucible/internal/labeling"
	"crucible/internal/store"
)

var t0 = time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)

const organic = `{"id":"haiku","instruction":"Write a haiku about rain.","responses":["Soft rain on the roof\nthe kettle hums its answer\nevening settles in","Rain rain rain rain rain","It is raining."]}
{"id":"sum","instruction":"What is 2 + 2?","responses":["4","5","Four, because two plus two is four."],"criteria":"score"}
`

// newService returns a service on a fresh SQLite store with one organic
// preference competition created at t0 with a one-hour TTL.
func newService(t *testing.T, dataset string) (*labeling.Service, *store.DB, *clock.Fake, competition.Competition) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "crucible.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	prep, err := kinds.PreparePreference(ctx, kinds.CompetitionSpec{Kind: preference.Name, Title: "Prefs",
		DatasetName: "organic", Dataset: []byte(dataset)}, kinds.PreferenceSpec{TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	c := competition.Competition{ID: store.NewID("c"), Kind: preference.Name, Title: "Prefs", Config: prep.Config,
		DatasetName: "organic", DatasetDigest: prep.DatasetDigest, Items: len(prep.Items), CreatedBy: "ed25519:v", CreatedAt: t0}
	if err := db.CreateCompetition(ctx, c, prep.Items); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(t0.Add(time.Minute))
	svc, err := labeling.New(labeling.Config{DB: db, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return svc, db, clk, c
}

func TestLabelingFlow(t *testing.T) {
	ctx := context.Background()
	svc, db, clk, c := newService(t, organic)

	views := map[string][]preference.View{}
	for _, m := range []string{"m1", "m2", "m3"} {
		v, err := svc.RequestCopies(ctx, c.ID, m)
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != 2 {
			t.Fatalf("%s got %d copies, want 2", m, len(v))
		}
		views[m] = v
	}
	t.Run("requesting copies again returns the same copies", func(t *testing.T) {
		again, err := svc.RequestCopies(ctx, c.ID, "m1")
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(again)
		b, _ := json.Marshal(views["m1"])
		if !bytes.Equal(a, b) {
			t.Fatalf("second request differs:\n%s\n%s", a, b)
		}
	})
	t.Run("two miners' copies of a task differ byte-wise", func(t *testing.T) {
		for i := range views["m1"] {
			a, _ := json.Marshal(views["m1"][i].Responses)
			b, _ := json.Marshal(views["m2"][i].Responses)
			if bytes.Equal(a, b) {
				t.Fatalf("task %s: m1 and m2 see the same bytes", views["m1"][i].TaskID)
			}
		}
	})
	t.Run("each miner sees its own task ids, never the canonical ones", func(t *testing.T) {
		_, _, tasks, err := svc.Competition(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for m, vs := range views {
			for _, v := range vs {
				for _, task := range tasks {
					if v.TaskID == task.ID {
						t.Fatalf("%s is shown the canonical task id %s", m, task.ID)
					}
				}
				if other, dup := seen[v.TaskID]; dup {
					t.Fatalf("%s and %s are both shown task id %s", m, other, v.TaskID)
				}
				seen[v.TaskID] = m
			}
		}
	})
	t.Run("stored tasks get the competition's deadline", func(t *testing.T) {
		_, _, tasks, err := svc.Competition(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !tasks[0].Deadline.Equal(t0.Add(time.Hour)) {
			t.Fatalf("deadline %s, want creation + 1h", tasks[0].Deadline)
		}
	})

	keys := map[string]store.ContributorKey{}
	for _, m := range []string{"m1", "m2", "m3"} {
		nk, err := svc.NewContributorKey(ctx, m, "person of "+m)
		if err != nil {
			t.Fatal(err)
		}
		k, err := svc.Authenticate(ctx, nk.Secret)
		if err != nil || k.ID != nk.ID {
			t.Fatalf("authenticate %s: %+v %v", m, k, err)
		}
		keys[m] = k
	}
	t.Run("an unknown or revoked key is refused", func(t *testing.T) {
		if _, err := svc.Authenticate(ctx, "cck_nope"); !errors.Is(err, labeling.ErrBadKey) {
			t.Fatalf("unknown key: %v", err)
		}
		nk, err := svc.NewContributorKey(ctx, "m1", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RevokeContributorKey(ctx, "m1", nk.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Authenticate(ctx, nk.Secret); !errors.Is(err, labeling.ErrRevoked) {
			t.Fatalf("revoked key: %v", err)
		}
	})

	// Everyone ranks the haiku task best-first by its canonical order
	// (response 0 best), seen through their own shuffled copy.
	rankCanonical := func(t *testing.T, m string) store.PreferenceRating {
		t.Helper()
		a, err := svc.Next(ctx, keys[m])
		if err != nil {
			t.Fatalf("next for %s: %v", m, err)
		}
		cp, err := svc.Copy(ctx, a.CompetitionID, a.View.TaskID, m)
		if err != nil {
			t.Fatal(err)
		}
		values := make([]int, len(cp.Perm))
		for i, canon := range cp.Perm {
			if cp.Criteria == preference.CriteriaScore {
				values[i] = 10 - 3*canon
			} else {
				values[i] = canon + 1
			}
		}
		r, err := svc.Submit(ctx, keys[m], a.CompetitionID, a.View.TaskID, values)
		if err != nil {
			t.Fatalf("submit for %s: %v", m, err)
		}
		return r
	}
	t.Run("a rating is stored in canonical order", func(t *testing.T) {
		for _, m := range []string{"m1", "m2", "m3"} {
			r := rankCanonical(t, m)
			want := []int{1, 2, 3}
			if r.Values[0] == 10 {
				want = []int{10, 7, 4}
			}
			for i := range want {
				if r.Values[i] != want[i] {
					t.Fatalf("%s stored %v, want %v", m, r.Values, want)
				}
			}
		}
	})
	t.Run("a second rating of the same task is refused", func(t *testing.T) {
		_, err := svc.Submit(ctx, keys["m1"], c.ID, views["m1"][0].TaskID, []int{1, 2, 3})
		_, err2 := svc.Submit(ctx, keys["m1"], c.ID, views["m1"][1].TaskID, []int{1, 2, 3})
		if !errors.Is(err, store.ErrAlreadyRated) && !errors.Is(err2, store.ErrAlreadyRated) {
			t.Fatalf("repeat ratings: %v, %v; want ErrAlreadyRated", err, err2)
		}
	})
	t.Run("a late rating is refused with the deadline", func(t *testing.T) {
		clk.Set(t0.Add(time.Hour))
		_, err := svc.Submit(ctx, keys["m2"], c.ID, views["m2"][1].TaskID, []int{5, 5, 5})
		var late *labeling.LateError
		if !errors.As(err, &late) || !late.Deadline.Equal(t0.Add(time.Hour)) || !strings.Contains(err.Error(), "not recorded") {
			t.Fatalf("late submit: %v", err)
		}
		if _, err := svc.Next(ctx, keys["m2"]); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("next after the deadline: %v, want ErrNotFound", err)
		}
	})
	t.Run("the epoch trusts agreeing miners and the DPO export has every pair", func(t *testing.T) {
		rep, _, err := svc.Score(ctx, c.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Closed != 2 || rep.Open != 0 || len(rep.Epoch.Miners) != 3 {
			t.Fatalf("report %+v", rep)
		}
		for _, m := range rep.Epoch.Miners {
			if !m.Trusted || m.Reward <= 0 {
				t.Fatalf("miner %+v: want trusted with a reward", m)
			}
		}
		var buf bytes.Buffer
		if err := svc.Export(ctx, &buf, c.ID, preference.FormatDPO, preference.AllPairs, false); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		ratedTasks := 0
		for _, tr := range rep.Epoch.Tasks {
			if tr.Raters > 0 {
				ratedTasks++
			}
		}
		if len(lines) != 3*ratedTasks {
			t.Fatalf("%d DPO pairs for %d rated tasks of 3 responses, want %d:\n%s", len(lines), ratedTasks, 3*ratedTasks, buf.String())
		}
		var p preference.DPOPair
		if err := json.Unmarshal([]byte(lines[0]), &p); err != nil || p.Prompt == "" || p.Chosen == p.Rejected {
			t.Fatalf("first pair %q: %v", lines[0], err)
		}
		if err := svc.Export(ctx, &buf, c.ID, "xml", "", false); !errors.Is(err, labeling.ErrInvalid) {
			t.Fatalf("unknown format: %v", err)
		}
	})
	_ = db
}

func TestSyntheticCompetitionFromShippedSeeds(t *testing.T) {
	ctx := context.Background()
	svc, _, _, c := newService(t, "")
	_, cfg, tasks, err := svc.Competition(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source != preference.SourceSynthetic || cfg.Mode != preference.ModeAnswer || len(tasks) != len(preference.DefaultSeeds()) {
		t.Fatalf("config %+v with %d tasks", cfg, len(tasks))
	}
	for _, tk := range tasks {
		if tk.GroundTruth == nil {
			t.Fatalf("task %s has no ground truth", tk.ID)
		}
	}
	if d := cfg.Describe(); !strings.Contains(d, "kappa") || !strings.Contains(d, "synthetic") {
		t.Fatalf("describe:\n%s", d)
	}
}
