package app_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/identity"
	"crucible/internal/store/storetest"
)

// requestLines reads the fake model server's request log.
func requestLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestAnEndpointAtALaunchedServerNeverReachesIt: a hub with the default
// endpoint egress (no loopback) whose worker has launched an artifact's
// model server on 127.0.0.1:PORT. A competitor who submits an endpoint
// at http://127.0.0.1:PORT — the launched model, under its served name —
// is refused or fails naming loopback, and the launched server sees no
// request from that submission (a request the test sends itself is
// recorded, so the log is live). On SQLite and PostgreSQL.
func TestAnEndpointAtALaunchedServerNeverReachesIt(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "fakeserver")
	if out, err := exec.Command("go", "build", "-o", fake, "../launcher/testdata/fakeserver").CombinedOutput(); err != nil {
		t.Fatalf("go build fakeserver: %v\n%s", err, out)
	}
	artifactDir := filepath.Join(dir, "artifact")
	if err := os.Mkdir(artifactDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			requests := filepath.Join(dir, d.Name+"-requests.log")
			a, url := startApp(t, app.Config{Database: d.URL, Models: app.Models{CacheDir: filepath.Join(dir, d.Name+"-cache"), CacheBytes: 1 << 20,
				Launcher: fake + " --port {port} --name {name} --requests " + requests}})
			ctx := context.Background()
			lease, err := app.LauncherOf(a).Acquire(ctx, artifactDir, "artifact-0123456789abcdef")
			if err != nil {
				t.Fatal(err)
			}
			defer lease.Release()
			health := len(requestLines(t, requests)) // the launcher's own GET /v1/models

			key, _ := identity.NewKey()
			c, _ := client.New(client.Config{Server: url, Key: key})
			comp, err := c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "mcq", Title: "SIQA", Dataset: string(app.SampleDataset)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Submit(ctx, comp.ID, apiv1.CreateSubmissionRequest{BaseURL: strings.TrimSuffix(lease.BaseURL, "/v1"), Model: lease.Model})
			if err != nil {
				if !strings.Contains(err.Error(), "loopback") {
					t.Fatalf("submit at the launched server: %v; want a refusal naming loopback", err)
				}
			} else {
				waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				subs, err := c.WaitScored(waitCtx, comp.ID, 100*time.Millisecond, nil)
				if err != nil {
					t.Fatal(err)
				}
				if s := subs[0]; s.State != competition.StateFailed || !strings.Contains(s.Reason, "loopback") {
					t.Fatalf("an endpoint at the launched server: state %s, reason %q; want failed, naming loopback", s.State, s.Reason)
				}
			}
			if got := requestLines(t, requests); len(got) != health {
				t.Fatalf("the launched server received %q after its health checks; want nothing from the endpoint submission", got[health:])
			}
			// The log is live: a request sent here is recorded.
			resp, err := http.Get(lease.BaseURL + "/models")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := requestLines(t, requests); len(got) != health+1 {
				t.Fatalf("the request log holds %q; want the health checks and the test's own request", got)
			}
		})
	}
}
