package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"crucible/internal/api"
	"crucible/internal/api/apiv1"
	"crucible/internal/competition"
	"crucible/internal/eval/mcq"
	"crucible/internal/identity"
	"crucible/internal/intake"
	"crucible/internal/jobs"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
)

// One signed submission sent many times at once (a client retrying, or a
// captured request replayed while the first is in flight) is accepted once:
// the nonces and the submissions are committed in batches, and a batch must
// not let two uses of one nonce through. One submission and one job result.
func TestConcurrentCopiesOfASignedSubmissionLandOnce(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d)
			q, err := jobs.New(ctx, jobs.Config{DB: db})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(q.Close)
			id, err := db.HubID(ctx)
			if err != nil {
				t.Fatal(err)
			}
			reg := builtinKinds(t)
			srv := httptest.NewServer(api.New(api.Config{DB: db, HubID: id, Kinds: reg,
				Intake: intake.New(intake.Config{DB: db, Kinds: reg, Evaluations: q})}).Handler())
			t.Cleanup(srv.Close)
			c := competition.Competition{ID: store.NewID("c"), Kind: mcq.Name, Title: "ingest", Config: json.RawMessage(`{"mode":"generative"}`),
				DatasetName: "d", DatasetDigest: "d", Items: 1, CreatedBy: "ed25519:creator", CreatedAt: time.Now()}
			if err := db.CreateCompetition(ctx, c, []json.RawMessage{json.RawMessage(`{"question":"q","choices":["a","b"],"answer":0}`)}); err != nil {
				t.Fatal(err)
			}
			key, err := identity.NewKey()
			if err != nil {
				t.Fatal(err)
			}
			path := "/api/v1/competitions/" + c.ID + "/submissions"
			body, _ := json.Marshal(apiv1.CreateSubmissionRequest{BaseURL: "http://127.0.0.1:9/v1", Model: "m"})
			headers, err := key.Sign(id, http.MethodPost, path, time.Now().Unix(), body)
			if err != nil {
				t.Fatal(err)
			}
			const copies = 16
			var wg sync.WaitGroup
			codes := make([]int, copies)
			bodies := make([]string, copies)
			for i := range copies {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
					for k, v := range headers {
						req.Header.Set(k, v)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					defer resp.Body.Close()
					got, _ := io.ReadAll(resp.Body)
					codes[i], bodies[i] = resp.StatusCode, string(got)
				}()
			}
			wg.Wait()
			created := 0
			for i, code := range codes {
				switch {
				case code == http.StatusCreated:
					created++
				case code != http.StatusUnauthorized || !strings.Contains(bodies[i], "replayed"):
					t.Errorf("copy %d: %d %s, want 201 or 401 replayed", i, code, bodies[i])
				}
			}
			subs, err := db.ListSubmissions(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			var jobRows int
			if err := db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job WHERE kind = '`+jobs.EvaluateArgs{}.Kind()+`'`).Scan(&jobRows); err != nil {
				t.Fatal(err)
			}
			if created != 1 || len(subs) != 1 || jobRows != 1 {
				t.Errorf("%d copies accepted, %d submissions, %d jobs; want one of each", created, len(subs), jobRows)
			}
		})
	}
}
