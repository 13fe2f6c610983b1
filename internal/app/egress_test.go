package app_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/roleplay"
	"crucible/internal/eval/roleplay/roleplaytest"
	"crucible/internal/identity"
	"crucible/internal/store/storetest"
)

// recorder is a model server on one address that counts the requests it
// gets and remembers their Authorization headers; it answers with the
// baseline roleplay policies.
type recorder struct {
	URL  string
	mu   sync.Mutex
	auth []string
}

func (r *recorder) hits() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auth...)
}

// startRecorder listens on host (an IP literal, e.g. "127.0.0.1" or "::1").
func startRecorder(t *testing.T, host string) *recorder {
	t.Helper()
	h, err := roleplaytest.New("persona", "persona-ref", "judge")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{URL: "http://" + ln.Addr().String() + "/v1"}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.auth = append(r.auth, req.Header.Get("Authorization"))
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func roleplayConfig(generator, reference, judge string, turns int) *roleplay.CompetitionConfig {
	cfg := &roleplay.CompetitionConfig{Seed: 1, Items: 2, Turns: turns,
		Reference: roleplay.EndpointSpec{BaseURL: reference, Model: roleplay.BaselineReference},
		Judge:     roleplay.EndpointSpec{BaseURL: judge, Model: roleplay.BaselineJudge}}
	if turns > 1 {
		cfg.Generator = roleplay.EndpointSpec{BaseURL: generator, Model: roleplay.BaselineGenerator}
	}
	return cfg
}

// TestACreatorTypedURLOnTheHostIsNeverDialed points every outbound path of
// competition creation (roleplay generator, preference generator) at
// loopback listeners on 127.0.0.1 and [::1] under the default policy: the
// creation is refused with the reason, and the listeners see no request.
func TestACreatorTypedURLOnTheHostIsNeverDialed(t *testing.T) {
	t.Setenv(app.EnvGeneratorKey, "operator-generator-secret")
	targets := []*recorder{startRecorder(t, "127.0.0.1"), startRecorder(t, "::1")}
	url := startServer(t, app.Config{Database: storetest.Databases(t)[0].URL})
	key, _ := identity.NewKey()
	c, _ := client.New(client.Config{Server: url, Key: key})
	ctx := context.Background()
	for _, target := range targets {
		_, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "roleplay", Title: "ssrf",
			Roleplay: roleplayConfig(target.URL, target.URL, target.URL, 2)})
		if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "400") {
			t.Errorf("roleplay generator at %s: err %v, want a 400 naming the refusal", target.URL, err)
		}
		_, err = c.CreatePreferenceCompetition(ctx, apiv1.CreatePreferenceCompetitionRequest{Title: "ssrf",
			Preference: kinds.PreferenceSpec{GeneratorURL: target.URL, GeneratorModel: roleplay.BaselineGenerator}})
		if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "400") {
			t.Errorf("preference generator at %s: err %v, want a 400 naming the refusal", target.URL, err)
		}
		if hits := target.hits(); len(hits) != 0 {
			t.Errorf("%s got %d requests, want 0", target.URL, len(hits))
		}
	}
}

// TestACreatorTypedReferenceOrJudgeOnTheHostIsNeverDialed evaluates
// submissions of roleplay competitions whose reference or judge a creator
// pointed at loopback listeners: the submitted model is allowed (127.0.0.2
// is on the allow list), the listeners are not, so every submission fails
// with the refusal and the listeners see no request.
func TestACreatorTypedReferenceOrJudgeOnTheHostIsNeverDialed(t *testing.T) {
	t.Setenv(app.EnvReferenceKey, "operator-reference-secret")
	t.Setenv(app.EnvJudgeKey, "operator-judge-secret")
	targets := []*recorder{startRecorder(t, "127.0.0.1"), startRecorder(t, "::1")}
	model := startRecorder(t, "127.0.0.2")
	url := startServer(t, app.Config{Database: storetest.Databases(t)[0].URL, AllowEndpoints: "127.0.0.2/32", MaxAttempts: 1})
	key, _ := identity.NewKey()
	c, _ := client.New(client.Config{Server: url, Key: key})
	ctx := context.Background()
	var comps []competition.Competition
	for _, target := range targets {
		for _, cfg := range []*roleplay.CompetitionConfig{
			roleplayConfig("", target.URL, model.URL, 1),
			roleplayConfig("", model.URL, target.URL, 1),
		} {
			comp, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "roleplay", Title: "ssrf", Roleplay: cfg})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{BaseURL: model.URL, Model: roleplay.BaselineGenerator}); err != nil {
				t.Fatal(err)
			}
			comps = append(comps, comp)
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, comp := range comps {
		subs, err := c.WaitScored(waitCtx, comp.ID, 100*time.Millisecond, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s := subs[0]; s.State == competition.StateScored || !strings.Contains(s.Reason, "refused: ") {
			t.Errorf("competition %s: state %s, reason %q; want it unscored with the refusal", comp.ID, s.State, s.Reason)
		}
	}
	for _, target := range targets {
		if hits := target.hits(); len(hits) != 0 {
			t.Errorf("%s got %d requests, want 0", target.URL, len(hits))
		}
	}
	for _, h := range model.hits() {
		if h != "" {
			t.Errorf("the submitted model got Authorization %q, want none", h)
		}
	}
}

// TestOperatorKeysGoToOperatorEndpointsOnly: with loopback allowed, a
// roleplay competition whose generator is left empty or names the
// operator's URL uses the operator's generator, which gets the operator's
// key; one whose generator a creator typed (an allowed address) is called
// without any key.
func TestOperatorKeysGoToOperatorEndpointsOnly(t *testing.T) {
	const secret = "operator-generator-secret"
	t.Setenv(app.EnvGeneratorKey, secret)
	operator, typed := startRecorder(t, "127.0.0.1"), startRecorder(t, "::1")
	url := startServer(t, app.Config{Database: storetest.Databases(t)[0].URL, AllowEndpoints: "127.0.0.0/8,::1",
		GeneratorURL: operator.URL})
	key, _ := identity.NewKey()
	c, _ := client.New(client.Config{Server: url, Key: key})
	ctx := context.Background()
	if _, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "roleplay", Title: "operator's",
		Roleplay: roleplayConfig("", operator.URL, operator.URL, 2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "roleplay", Title: "operator's, named",
		Roleplay: roleplayConfig(operator.URL+"/", operator.URL, operator.URL, 2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "roleplay", Title: "typed",
		Roleplay: roleplayConfig(typed.URL, typed.URL, typed.URL, 2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreatePreferenceCompetition(ctx, apiv1.CreatePreferenceCompetitionRequest{Title: "typed",
		Preference: kinds.PreferenceSpec{GeneratorURL: typed.URL, GeneratorModel: roleplay.BaselineGenerator}}); err != nil {
		t.Fatal(err)
	}
	got := operator.hits()
	if len(got) == 0 {
		t.Fatal("the operator's generator got no request")
	}
	for _, h := range got {
		if h != "Bearer "+secret {
			t.Fatalf("the operator's generator got Authorization %q, want its key", h)
		}
	}
	typedHits := typed.hits()
	if len(typedHits) == 0 {
		t.Fatal("the typed generator got no request")
	}
	for _, h := range typedHits {
		if h != "" {
			t.Fatalf("a creator-typed URL got Authorization %q, want none", h)
		}
	}
}

// TestOutboundWorkOfACreationIsBounded: a roleplay competition of 20,000
// items × 20 turns (once 111,249 outbound calls) and a preference
// competition of more tasks than allowed are refused with a 400 naming the
// limit, before any model is called.
func TestOutboundWorkOfACreationIsBounded(t *testing.T) {
	generator := startRecorder(t, "127.0.0.1")
	url := startServer(t, app.Config{Database: storetest.Databases(t)[0].URL, AllowEndpoints: loopback})
	key, _ := identity.NewKey()
	c, _ := client.New(client.Config{Server: url, Key: key})
	ctx := context.Background()
	for _, tt := range []struct {
		items, turns, maxTokens int
		want                    string
	}{
		{20000, 20, 0, "items 20000 is over the limit of 1000"},
		{1000, 20, 0, "turns 20 is over the limit of 10"},
		{1000, 10, 0, "items × turns = 1000 × 10 is over the limit of 2000"},
		{10, 2, 2e9, "max_tokens 2000000000 is over the limit of 8192"},
	} {
		cfg := roleplayConfig(generator.URL, generator.URL, generator.URL, tt.turns)
		cfg.Items, cfg.MaxTokens = tt.items, tt.maxTokens
		_, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "roleplay", Title: "big", Roleplay: cfg})
		if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%d items × %d turns: err %v, want a 400 saying %q", tt.items, tt.turns, err, tt.want)
		}
	}
	var seeds strings.Builder
	for i := range kinds.MaxPreferenceTasks + 1 {
		fmt.Fprintf(&seeds, `{"id":"s%d","instruction":"Say %d.","reference":"%d."}`+"\n", i, i, i)
	}
	_, err := c.CreatePreferenceCompetition(ctx, apiv1.CreatePreferenceCompetitionRequest{Title: "big", Dataset: seeds.String(),
		Preference: kinds.PreferenceSpec{GeneratorURL: generator.URL, GeneratorModel: roleplay.BaselineGenerator}})
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "over the limit of 2000") {
		t.Errorf("%d seeds: err %v, want a 400 naming the limit", kinds.MaxPreferenceTasks+1, err)
	}
	if hits := generator.hits(); len(hits) != 0 {
		t.Errorf("the generator got %d requests, want 0", len(hits))
	}
}
