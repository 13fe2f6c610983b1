package pool_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"crucible/internal/app"
	"crucible/internal/competition"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/inference"
	"crucible/internal/ledger"
	"crucible/internal/pool"
	"crucible/internal/store/storetest"
)

// baselineServer serves the baseline models at a new base URL.
func baselineServer(t *testing.T) string {
	t.Helper()
	ds, err := mcq.Parse(strings.NewReader(string(app.SampleDataset)), "siqa")
	if err != nil {
		t.Fatal(err)
	}
	h, err := mcqtest.New(mcqtest.Config{Policies: app.DemoPolicies, Key: ds})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// rephrasing serves an honest model of its own that picks the same letter as
// upstream's on every item but words its answers differently.
func rephrasing(t *testing.T, upstream string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet { // the model list, for the submit check
			resp, err := http.Get(upstream + r.URL.Path)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
			return
		}
		resp, err := http.Post(upstream+r.URL.Path, "application/json", r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var chat inference.ChatResponse
		if err := json.NewDecoder(resp.Body).Decode(&chat); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		for i := range chat.Choices {
			chat.Choices[i].Message.Content += "\nI am fairly confident in this choice."
		}
		var b bytes.Buffer
		_ = json.NewEncoder(&b).Encode(chat)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestCopiesInAPoolEarnNothing: one original, an honest model that agrees
// with it on every letter, and three copies of the original in a
// proportional pool. The exact re-join is refused; the two copies served
// from other base URLs rank but are paid 0 and marked, and the honest
// models share the pool as if the copies had never entered.
func TestCopiesInAPoolEarnNothing(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL)
			ctx := context.Background()
			svc := pool.New(pool.Config{DB: f.db, Kind: mcq.Name, Evaluations: f.queue, Intake: newIntake(f.db, f.queue, f.clock), Clock: f.clock, Logger: quiet,
				Operators: []string{operator}, MaxEntriesPerKey: 2})
			f.deposit(t, "ed25519:funder", 1000)
			p, err := svc.Create(ctx, "ed25519:funder", pool.CreateRequest{Title: "copies", Dataset: string(app.SampleDataset), Fund: 1000,
				Asset: "USDC", Allocation: "proportional", Start: start, End: start.Add(time.Hour), BudgetPerHour: 10_000, PrivateFraction: 0.5})
			if err != nil {
				t.Fatal(err)
			}
			join := func(key, base, model string) (competition.Submission, error) {
				f.clock.Advance(time.Minute) // commit order decides who is the original
				return svc.Join(ctx, p.CompetitionID, key, nil, pool.JoinRequest{BaseURL: base, Model: model})
			}
			must := func(s competition.Submission, err error) competition.Submission {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			original := must(join("ed25519:alice", f.models, "baseline-oracle"))
			honest := must(join("ed25519:bob", rephrasing(t, f.models), "baseline-oracle"))
			// The exact re-join, from another key, is refused.
			if _, err := join("ed25519:mallory", f.models, "baseline-oracle"); !errors.Is(err, pool.ErrDuplicateEntry) ||
				!strings.Contains(err.Error(), "copy of "+original.ID) {
				t.Fatalf("re-joining the same model: %v; want a refusal naming it a copy of %s", err, original.ID)
			}
			copy1 := must(join("ed25519:mallory", baselineServer(t), "baseline-oracle"))
			copy2 := must(join("ed25519:mallory", baselineServer(t), "baseline-oracle"))
			if _, err := join("ed25519:mallory", f.models, "baseline-random"); !errors.Is(err, pool.ErrEntryLimit) {
				t.Fatalf("a third entry from a key limited to 2: %v; want ErrEntryLimit", err)
			}
			f.clock.Set(start.Add(30 * time.Minute))
			if err := f.tick(t, svc, p.CompetitionID); err != nil {
				t.Fatal(err)
			}
			copies := map[string]string{copy1.ID: original.ID, copy2.ID: original.ID}
			board, err := svc.Leaderboard(ctx, p.CompetitionID, time.Time{})
			if err != nil || len(board.Rows) != 4 {
				t.Fatalf("public board %+v, %v; want the four entrants", board, err)
			}
			for _, row := range board.Rows {
				if row.CopyOf != copies[row.SubmissionID] {
					t.Errorf("public board: %s is marked a copy of %q, want %q", row.SubmissionID, row.CopyOf, copies[row.SubmissionID])
				}
			}
			f.clock.Set(start.Add(time.Hour))
			if err := f.tick(t, svc, p.CompetitionID); err != nil {
				t.Fatal(err)
			}
			got, err := f.db.GetPool(ctx, p.CompetitionID)
			if err != nil || got.Settlement == nil {
				t.Fatalf("pool not settled after its final tick: %+v, %v", got, err)
			}
			st := *got.Settlement
			// Alone with the honest model, each scoring 1.0 on the private
			// items, the original takes half the pool under proportional.
			want := map[string]int64{original.ID: 500, honest.ID: 500, copy1.ID: 0, copy2.ID: 0}
			if len(st.Payouts) != 4 || st.Refunded != 0 {
				t.Fatalf("settlement %+v: want four payouts and nothing refunded", st)
			}
			for _, po := range st.Payouts {
				if po.Score != 1 || po.Items != 150 {
					t.Errorf("%s scored %v on %d private items, want 1.0 on 150: copies still rank", po.SubmissionID, po.Score, po.Items)
				}
				if po.Units != want[po.SubmissionID] || po.CopyOf != copies[po.SubmissionID] {
					t.Errorf("%s paid %d, marked a copy of %q; want %d, %q", po.SubmissionID, po.Units, po.CopyOf, want[po.SubmissionID], copies[po.SubmissionID])
				}
			}
			if bal, _ := f.db.Balance(ctx, ledger.ParticipantAccount("ed25519:mallory"), "USDC"); bal != 0 {
				t.Errorf("the copier's account holds %d, want 0", bal)
			}
			if bal, _ := f.db.Balance(ctx, ledger.ParticipantAccount("ed25519:alice"), "USDC"); bal != 500 {
				t.Errorf("the original's account holds %d, want 500", bal)
			}
		})
	}
}

// TestSimultaneousJoinsOfOneModelAdmitOne races twenty keys joining the same
// model into one pool at once: the entry rules are checked and the entry
// made under the pool's lock, so exactly one gets in and every other is
// refused as a copy of it (a check outside the inserting transaction let
// several through on PostgreSQL).
func TestSimultaneousJoinsOfOneModelAdmitOne(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d.URL)
			ctx := context.Background()
			f.deposit(t, "ed25519:funder", 100)
			p, err := f.svc.Create(ctx, "ed25519:funder", pool.CreateRequest{Title: "race", Dataset: string(app.SampleDataset), Fund: 100,
				Asset: "USDC", Allocation: "proportional", Start: start, End: start.Add(time.Hour), BudgetPerHour: 1000, PrivateFraction: 0.5})
			if err != nil {
				t.Fatal(err)
			}
			const joiners = 20
			errs := make(chan error, joiners)
			var ready sync.WaitGroup
			ready.Add(joiners)
			startLine := make(chan struct{})
			for i := range joiners {
				go func() {
					ready.Done()
					<-startLine
					_, err := f.svc.Join(ctx, p.CompetitionID, fmt.Sprintf("ed25519:racer%d", i), nil, pool.JoinRequest{BaseURL: f.models, Model: "baseline-oracle"})
					errs <- err
				}()
			}
			ready.Wait()
			close(startLine)
			admitted := 0
			for range joiners {
				switch err := <-errs; {
				case err == nil:
					admitted++
				case !errors.Is(err, pool.ErrDuplicateEntry):
					t.Errorf("a racing join failed otherwise than as a copy: %v", err)
				}
			}
			subs, err := f.db.ListSubmissions(ctx, p.CompetitionID)
			if err != nil {
				t.Fatal(err)
			}
			if admitted != 1 || len(subs) != 1 {
				t.Fatalf("%d joins admitted, %d entries stored; want exactly one of each", admitted, len(subs))
			}
		})
	}
}
