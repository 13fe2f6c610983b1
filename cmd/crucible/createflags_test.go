package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompetitionCreateReportsAnUnknownKindFirst: a mistyped --kind is
// named, with the registered kinds, before any flag is missed.
func TestCompetitionCreateReportsAnUnknownKindFirst(t *testing.T) {
	_, stderr, code := crucible(t, "competition", "create", "--kind", "bogus")
	if code != 2 || !strings.Contains(stderr, `unknown kind "bogus" (kinds: mcq, patch, preference, roleplay, task)`) || strings.Contains(stderr, "required") {
		t.Fatalf("--kind bogus: exit %d, %q; want exit 2 naming the known kinds and no missing flag", code, stderr)
	}
}

// TestCompetitionCreateTakesEachKindsOwnFlags: the flags a kind adds to
// `competition create` (roleplay's, patch's) become its part of the
// request, and the kind's own line describes the competition created.
func TestCompetitionCreateTakesEachKindsOwnFlags(t *testing.T) {
	var got struct {
		Kind        string `json:"kind"`
		Title       string `json:"title"`
		DatasetName string `json:"dataset_name"`
		Dataset     string `json:"dataset"`
		Roleplay    *struct {
			Seed       int64  `json:"seed"`
			Items      int    `json:"items"`
			FreshItems bool   `json:"fresh_items"`
			WinRate    string `json:"win_rate"`
			Judge      struct {
				BaseURL string `json:"base_url"`
				Model   string `json:"model"`
			} `json:"judge"`
			Scoring struct {
				Preset string `json:"preset"`
			} `json:"scoring"`
		} `json:"roleplay"`
		PatchPolicy *struct {
			Allow []string `json:"allow"`
		} `json:"patch_policy"`
		Repos map[string][]byte `json:"repos"`
	}
	// A fake hub: its id, then the competition request it records.
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/api/v1/hub" {
			_, _ = io.WriteString(w, `{"hub_id": "h-test"}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/competitions" || json.Unmarshal(body, &got) != nil {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id": "c-1", "kind": "`+got.Kind+`", "title": "t", "items": 3, "dataset_name": "d"}`)
	}))
	defer hub.Close()
	dir := t.TempDir()
	key, personas, tasks := filepath.Join(dir, "me.key"), filepath.Join(dir, "personas.jsonl"), filepath.Join(dir, "tasks.jsonl")
	if _, stderr, code := crucible(t, "keys", "new", "--out", key); code != 0 {
		t.Fatal(stderr)
	}
	for file, text := range map[string]string{personas: "{\"name\": \"Ada\"}\n", tasks: "{\"instance_id\": \"x\"}\n"} {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	out, stderr, code := crucible(t, "competition", "create", "--server", hub.URL, "--key", key, "--kind", "roleplay", "--title", "Characters",
		"--seed", "7", "--items", "3", "--personas", personas, "--fresh-items=false", "--judge-url", "http://judge/v1", "--judge-model", "j", "--scoring", "dippy-2024-11", "--win-rate", "dippy")
	if code != 0 {
		t.Fatalf("roleplay create: exit %d: %s", code, stderr)
	}
	if got.Roleplay == nil || got.Roleplay.WinRate != "dippy" {
		t.Fatalf("--win-rate dippy sent roleplay %+v", got.Roleplay)
	}
	if _, stderr, code := crucible(t, "competition", "create", "--server", hub.URL, "--key", key, "--kind", "roleplay", "--title", "C",
		"--personas", personas, "--win-rate", "yuma"); code == 0 || !strings.Contains(stderr, "unknown win-rate preset") {
		t.Fatalf("--win-rate yuma: exit %d: %s", code, stderr)
	}
	rp := got.Roleplay
	if got.Kind != "roleplay" || got.Title != "Characters" || got.DatasetName != personas || got.Dataset != "{\"name\": \"Ada\"}\n" ||
		rp == nil || rp.Seed != 7 || rp.Items != 3 || rp.FreshItems || rp.Judge.BaseURL != "http://judge/v1" || rp.Judge.Model != "j" || rp.Scoring.Preset != "dippy-2024-11" || got.PatchPolicy != nil {
		t.Fatalf("roleplay request %+v (roleplay %+v); want the flags' configuration and the persona file", got, rp)
	}
	if want := "created roleplay competition c-1: 3 conversations from seed 7\n"; out != want {
		t.Fatalf("roleplay create printed %q, want %q", out, want)
	}

	got.Roleplay = nil
	out, stderr, code = crucible(t, "competition", "create", "--server", hub.URL, "--key", key, "--kind", "patch", "--title", "Fixes",
		"--tasks", tasks, "--server-repos", "--allow-rules", "pytest-config,conftest")
	if code != 0 {
		t.Fatalf("patch create: exit %d: %s", code, stderr)
	}
	if got.Kind != "patch" || got.DatasetName != "tasks" || got.Dataset != "{\"instance_id\": \"x\"}\n" || got.Roleplay != nil || got.Repos != nil ||
		got.PatchPolicy == nil || strings.Join(got.PatchPolicy.Allow, ",") != "pytest-config,conftest" {
		t.Fatalf("patch request %+v; want the tasks file and the relaxed rules, no bundles", got)
	}
	if want := "created competition c-1 (patch, 3 items, dataset d)\n"; out != want {
		t.Fatalf("patch create printed %q, want %q", out, want)
	}
}
