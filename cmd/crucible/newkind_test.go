package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/eval/kinds"
	"crucible/internal/identity"
	"crucible/internal/inference"
	"crucible/internal/kind"
	"crucible/internal/kind/kindtest"
	"crucible/internal/store/storetest"
)

// echoModels serves two models over the OpenAI chat API: "parrot" repeats
// the user's message, "mute" answers "no" to everything.
func echoModels(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(inference.ModelList{Object: "list", Data: []inference.Model{{ID: "parrot"}, {ID: "mute"}}})
	})
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		var req inference.ChatRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || len(req.Messages) == 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		reply := "no"
		if req.Model == "parrot" {
			reply = req.Messages[len(req.Messages)-1].Content
		}
		_ = json.NewEncoder(w).Encode(inference.ChatResponse{Object: "chat.completion", Model: req.Model,
			Choices: []inference.ChatChoice{{Message: inference.ChatMessage{Role: "assistant", Content: reply}, FinishReason: "stop"}}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// TestANewKindIsOnePackageAndOneRegistrationLine: the toy kind "echo"
// (internal/kind/kindtest, registered by the one line in app.Config below)
// is created, submitted to, evaluated by a worker, ranked, shown on the web
// page and by `crucible leaderboard`, with no other package naming it.
func TestANewKindIsOnePackageAndOneRegistrationLine(t *testing.T) {
	models := echoModels(t)
	ctx := context.Background()
	_, url := openAndServe(t, app.Config{Database: storetest.Databases(t)[0].URL, Listen: "127.0.0.1:0", AllowEndpoints: "127.0.0.0/8", MaxAttempts: 1,
		Kinds: func(e kinds.Egress) []kind.Kind { return []kind.Kind{kindtest.Echo{HTTPClient: e.HTTPClient}} }})
	key, _ := identity.NewKey()
	c, err := client.New(client.Config{Server: url, Key: key})
	if err != nil {
		t.Fatal(err)
	}

	// An unknown kind is refused with the registry's list, the toy among them.
	if _, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "bogus", Title: "no", Dataset: `"x"`}); err == nil ||
		!strings.Contains(err.Error(), `unknown kind "bogus" (kinds: echo, mcq, patch, preference, roleplay, task)`) {
		t.Fatalf("kind bogus: %v; want the known kinds listed", err)
	}
	comp, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "echo", Title: "Say it back", Dataset: "\"hello\"\n\"crucible\"\n\"one package\"\n\"one line\"\n"})
	if err != nil {
		t.Fatal(err)
	}
	if comp.Kind != "echo" || comp.Items != 4 {
		t.Fatalf("created %+v; want an echo competition of 4 items", comp)
	}
	for _, m := range []string{"mute", "parrot"} {
		if _, err := c.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{BaseURL: models, Model: m}); err != nil {
			t.Fatal(err)
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	subs, err := c.WaitScored(wctx, comp.ID, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		if s.State != competition.StateScored || s.Card == nil {
			t.Fatalf("submission %s (%s): state %s, reason %q; want scored", s.ID, s.Name, s.State, s.Reason)
		}
	}

	out, stderr, code := crucible(t, "leaderboard", "--server", url, "--competition", comp.ID, "--json")
	if code != 0 {
		t.Fatalf("crucible leaderboard exited %d: %s", code, stderr)
	}
	var rows []competition.Row
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("leaderboard JSON: %v\n%s", err, out)
	}
	if len(rows) != 2 || rows[0].Name != "parrot" || rows[0].Score != 1 || rows[0].Correct != 4 || rows[1].Name != "mute" || rows[1].Score != 0 {
		t.Fatalf("leaderboard %+v; want parrot 1.0 (4/4) above mute 0.0", rows)
	}
	text, _, _ := crucible(t, "leaderboard", "--server", url, "--competition", comp.ID)
	if !strings.Contains(text, "parrot") || strings.Index(text, "parrot") > strings.Index(text, "mute") {
		t.Fatalf("crucible leaderboard prints\n%s\nwant parrot ranked above mute", text)
	}

	resp, err := http.Get(url + "/c/" + comp.ID)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	html := string(page)
	if resp.StatusCode != http.StatusOK || !strings.Contains(html, "Say it back") || !strings.Contains(html, "echo") ||
		!strings.Contains(html, "parrot") || strings.Index(html, "parrot") > strings.Index(html, "mute") {
		t.Fatalf("web page %d: want the echo competition with parrot ranked above mute\n%s", resp.StatusCode, html)
	}
}

// openAndServe opens an app with cfg and serves it until the test ends;
// it returns the app and its URL.
func openAndServe(t *testing.T, cfg app.Config) (*app.App, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := a.Listen()
	if err != nil {
		cancel()
		a.Close()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		a.Close()
	})
	return a, "http://" + ln.Addr().String()
}
