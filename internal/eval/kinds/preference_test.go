package kinds

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval/preference"
)

func TestPreparePreference(t *testing.T) {
	organic := `{"id":"a","instruction":"Say hi.","responses":["Hi!","Hello there.","Go away."]}` + "\n"
	tests := []struct {
		name    string
		dataset string
		spec    PreferenceSpec
		wantErr string
		check   func(t *testing.T, cfg PreferenceConfig, tasks []preference.Task)
	}{
		{name: "organic lines become tasks without ground truth", dataset: organic, spec: PreferenceSpec{TTL: "90m"},
			check: func(t *testing.T, cfg PreferenceConfig, tasks []preference.Task) {
				if cfg.Source != preference.SourceOrganic || cfg.TTLSeconds != 5400 || len(tasks) != 1 || tasks[0].GroundTruth != nil {
					t.Fatalf("config %+v, tasks %+v", cfg, tasks)
				}
			}},
		{name: "an empty dataset degrades the shipped seeds without a model", dataset: "",
			check: func(t *testing.T, cfg PreferenceConfig, tasks []preference.Task) {
				if cfg.Source != preference.SourceSynthetic || cfg.Mode != preference.ModeAnswer || len(tasks) != len(preference.DefaultSeeds()) {
					t.Fatalf("config %+v, %d tasks", cfg, len(tasks))
				}
				for _, tk := range tasks {
					if !tk.Deadline.IsZero() || len(tk.GroundTruth) != len(tk.Responses) {
						t.Fatalf("task %s: deadline %s, ground truth %v", tk.ID, tk.Deadline, tk.GroundTruth)
					}
				}
			}},
		{name: "a bad organic line is reported with its number", dataset: organic + `{"id":"b","instruction":"x","responses":["one","two"]}`,
			wantErr: "line 2"},
		{name: "a repeated task id is refused", dataset: organic + organic, wantErr: "already used on line 1"},
		{name: "a seed without a reference needs a generator", dataset: `{"id":"s","instruction":"Write a poem."}`, wantErr: "no reference"},
		{name: "instruction mode without a generator is refused", dataset: "", spec: PreferenceSpec{Mode: preference.ModeInstruction},
			wantErr: "generator"},
		{name: "an unknown criteria is refused", dataset: organic, spec: PreferenceSpec{Criteria: "stars"}, wantErr: "criteria"},
		{name: "a ttl that is not a duration is refused", dataset: organic, spec: PreferenceSpec{TTL: "tomorrow"}, wantErr: "ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prep, err := PreparePreference(context.Background(), CompetitionSpec{Kind: preference.Name, Title: "P",
				DatasetName: "d", Dataset: []byte(tt.dataset)}, tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := competition.Competition{ID: "c", Kind: preference.Name, Config: prep.Config, CreatedAt: time.Unix(0, 0)}
			cfg, err := PreferenceSettings(c)
			if err != nil {
				t.Fatal(err)
			}
			tasks, err := PreferenceTasks(c, prep.Items)
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range tasks {
				if !tk.Deadline.Equal(c.CreatedAt.Add(cfg.TTL())) {
					t.Fatalf("stored deadline %s, want creation + ttl", tk.Deadline)
				}
			}
			var raw []preference.Task
			for _, it := range prep.Items {
				var tk preference.Task
				if err := json.Unmarshal(it, &tk); err != nil {
					t.Fatal(err)
				}
				raw = append(raw, tk)
			}
			tt.check(t, cfg, raw)
		})
	}
}
