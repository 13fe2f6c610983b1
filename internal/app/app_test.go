package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/identity"
	"crucible/internal/store/storetest"
)

// startModels serves the baseline policies over the bundled sample.
func startModels(t *testing.T, delay time.Duration) string {
	t.Helper()
	ds, err := mcq.Parse(strings.NewReader(string(app.SampleDataset)), "siqa-sample")
	if err != nil {
		t.Fatal(err)
	}
	h, err := mcqtest.New(mcqtest.Config{Policies: app.DemoPolicies, Key: ds, Delay: delay})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

const loopback = "127.0.0.0/8"

// startServer runs a whole Crucible server in-process on url's database.
func startServer(t *testing.T, cfg app.Config) string {
	t.Helper()
	_, url := startApp(t, cfg)
	return url
}

// startApp is startServer that also returns the opened app.
func startApp(t *testing.T, cfg app.Config) (*app.App, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Listen = "127.0.0.1:0"
	a, err := app.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := a.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Serve(ctx, ln); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		a.Close()
	})
	return a, "http://" + ln.Addr().String()
}

func TestServerEvaluatesSubmissionsOnEachDatabase(t *testing.T) {
	models := startModels(t, 0)
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			url := startServer(t, app.Config{Database: d.URL, MaxAttempts: 1, AllowEndpoints: loopback})
			key, _ := identity.NewKey()
			c, _ := client.New(client.Config{Server: url, Key: key})
			comp, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "mcq", Title: "SIQA", Dataset: string(app.SampleDataset)})
			if err != nil {
				t.Fatal(err)
			}
			submit := func(name, base, model string) competition.Submission {
				s, err := c.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{Name: name, BaseURL: base, Model: model})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			submit("oracle", models+"/v1", "baseline-oracle")
			submit("first", models, "baseline-first") // without /v1: accepted
			wrong := submit("wrong-name", models+"/v1", "no-such-model")
			down := submit("unreachable", "http://127.0.0.1:1/v1", "m")

			waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			subs, err := c.WaitScored(waitCtx, comp.ID, 100*time.Millisecond, nil)
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]competition.Submission{}
			for _, s := range subs {
				byName[s.Name] = s
			}
			if s := byName["wrong-name"]; s.State != competition.StateFailed || !strings.Contains(s.Reason, `does not serve "no-such-model"`) {
				t.Errorf("wrong model name: state %s reason %q, want failed at the submit check", s.State, s.Reason)
			}
			if s := byName["unreachable"]; s.State != competition.StateFailed || !strings.Contains(s.Reason, "submit check") {
				t.Errorf("unreachable model: state %s reason %q, want failed at the submit check", s.State, s.Reason)
			}
			rows, err := c.Leaderboard(ctx, comp.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 2 || rows[0].Name != "oracle" || rows[0].Score != 1 || rows[0].Items != 300 {
				t.Fatalf("leaderboard %+v: want oracle first with 1.0 over 300 items", rows)
			}
			if rows[1].Name != "first" || rows[1].Correct != 104 || rows[1].Tie {
				t.Fatalf("second row %+v: want first with 104 correct (label-1 share of the sample), no tie", rows[1])
			}
			page, err := c.Results(ctx, byName["oracle"].ID, 10, 5)
			if err != nil || len(page.Results) != 5 || page.Results[0].Index != 10 || page.Results[0].Prompt == "" || page.Total != 300 {
				t.Fatalf("results page = %+v, %v", page, err)
			}
			_ = wrong
			_ = down
		})
	}
}

func TestWritesMustBeSigned(t *testing.T) {
	url := startServer(t, app.Config{Database: storetest.Databases(t)[0].URL, NoWork: true})
	body := `{"kind":"mcq","title":"t","dataset":"{\"question\":\"q\",\"choices\":[\"a\",\"b\"],\"answer\":0}"}`
	resp, err := http.Post(url+"/api/v1/competitions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned POST: %d, want 401", resp.StatusCode)
	}

	key, _ := identity.NewKey()
	hub, err := client.New(client.Config{Server: url})
	if err != nil {
		t.Fatal(err)
	}
	hubID, err := hub.Hub(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	headers, _ := key.Sign(hubID, "POST", "/api/v1/competitions", time.Now().Unix(), []byte(body))
	send := func() int {
		req, _ := http.NewRequest("POST", url+"/api/v1/competitions", strings.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send(); code != http.StatusCreated {
		t.Fatalf("signed POST: %d, want 201", code)
	}
	if code := send(); code != http.StatusUnauthorized {
		t.Fatalf("replayed POST: %d, want 401", code)
	}
}

func TestABadDatasetLineIsRejectedWithItsNumberAndNothingIsCreated(t *testing.T) {
	url := startServer(t, app.Config{Database: storetest.Databases(t)[0].URL, NoWork: true})
	key, _ := identity.NewKey()
	c, _ := client.New(client.Config{Server: url, Key: key})
	lines := strings.SplitN(string(app.SampleDataset), "\n", 6)
	lines[3] = `{"context": "c", "question": "q", "answerA": "a", "answerB": "b", "answerC": "c", "label": "7"}`
	_, err := c.CreateCompetition(context.Background(), apiv1.CreateCompetitionRequest{Kind: "mcq", Title: "bad", Dataset: strings.Join(lines, "\n")})
	if err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("error %v, want one naming line 4", err)
	}
	list, _ := c.Competitions(context.Background())
	if len(list) != 0 {
		t.Fatalf("%d competitions exist after a rejected import", len(list))
	}
}

func TestAModelOnAPrivateAddressIsRefusedUnlessAllowed(t *testing.T) {
	models := startModels(t, 0)
	url := startServer(t, app.Config{Database: storetest.Databases(t)[0].URL})
	key, _ := identity.NewKey()
	c, _ := client.New(client.Config{Server: url, Key: key})
	ctx := context.Background()
	comp, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "mcq", Title: "SIQA", Dataset: string(app.SampleDataset)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{BaseURL: models, Model: "baseline-oracle"}); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	subs, err := c.WaitScored(waitCtx, comp.ID, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := subs[0]; s.State != competition.StateFailed || !strings.Contains(s.Reason, "loopback") || !strings.Contains(s.Reason, "--allow-endpoints") {
		t.Fatalf("a loopback model URL: state %s, reason %q; want failed, naming loopback and --allow-endpoints", s.State, s.Reason)
	}
}
