package intake

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/kind"
	"crucible/internal/kind/kindtest"
	"crucible/internal/store/storetest"
)

// jobQueue records every evaluation enqueued, in a transaction that
// committed or not (the tests compare it with the rows that exist).
type jobQueue struct {
	mu  sync.Mutex
	ids []string
}

func (q *jobQueue) EnqueueEvaluationsTx(_ context.Context, _ *sql.Tx, ids []string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids = append(q.ids, ids...)
	return nil
}

// eachService runs run with a Service over every test database and one
// competition of a kind that ranks models.
func eachService(t *testing.T, run func(t *testing.T, s *Service, q *jobQueue, c competition.Competition)) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d)
			reg, err := kind.NewRegistry(kindtest.Echo{})
			if err != nil {
				t.Fatal(err)
			}
			q := &jobQueue{}
			s := New(Config{DB: db, Kinds: reg, Evaluations: q, Clock: clock.NewFake(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))})
			c, err := s.CreateCompetition(ctx, NewCompetition{Kind: "echo", CreatedBy: "ed25519:creator",
				Spec: kind.Spec{Title: "echoes", Dataset: []byte("\"a\"\n")}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			run(t, s, q, c)
		})
	}
}

// prepared is the pending Submit of model name by key into c, built as
// Submit builds it.
func prepared(t interface{ Fatal(...any) }, s *Service, c competition.Competition, key, name string, limit int) *pending {
	e := Entry{CompetitionID: c.ID, Submitter: key, BaseURL: "http://127.0.0.1:9/v1", Model: name, Limit: limit}
	sub, err := s.entry(context.Background(), c, e)
	if err != nil {
		t.Fatal(err)
	}
	return &pending{ctx: context.Background(), c: c, e: e, sub: sub, done: make(chan struct{})}
}

// One batch holding accepted entries, a copy of a batch-mate, an entry over
// its key's limit and a replay of a stored submission: each gets its own
// outcome, the others land with one job each.
func TestBatchOutcomesAreEachEntrysOwn(t *testing.T) {
	eachService(t, func(t *testing.T, s *Service, q *jobQueue, c competition.Competition) {
		ctx := context.Background()
		stored := prepared(t, s, c, "ed25519:z", "stored", 0)
		s.commitBatch([]*pending{stored})
		if stored.err != nil {
			t.Fatal(stored.err)
		}
		replay := prepared(t, s, c, "ed25519:z", "replayed", 0)
		replay.sub.ID = stored.sub.ID // the same submission committed again
		batch := []*pending{
			prepared(t, s, c, "ed25519:a", "m1", 2),
			prepared(t, s, c, "ed25519:b", "m1", 2), // copy of its batch-mate
			prepared(t, s, c, "ed25519:a", "m2", 2),
			prepared(t, s, c, "ed25519:a", "m3", 2), // a's third entry, limit 2
			replay,
			prepared(t, s, c, "ed25519:b", "m4", 2),
		}
		s.commitBatch(batch)
		for i, want := range []error{nil, competition.ErrDuplicateEntry, nil, competition.ErrEntryLimit, errAny, nil} {
			got := batch[i].err
			switch {
			case want == nil && got != nil, want == errAny && got == nil,
				want != nil && want != errAny && (!errors.Is(got, want) || !errors.Is(got, ErrConflict)):
				t.Errorf("entry %d (%s by %s): %v, want %v", i, batch[i].sub.Model.Model, batch[i].e.Submitter, got, want)
			}
		}
		subs, err := s.cfg.DB.ListSubmissions(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, sub := range subs {
			ids = append(ids, sub.ID)
		}
		want := []string{stored.sub.ID, batch[0].sub.ID, batch[2].sub.ID, batch[5].sub.ID}
		slices.Sort(ids)
		slices.Sort(want)
		jobs := slices.Sorted(slices.Values(q.ids))
		if !slices.Equal(ids, want) {
			t.Errorf("stored %v, want %v", ids, want)
		}
		// Jobs enqueued by the rolled-back first attempt are gone with it
		// in the database; the fake counts them, so compare distinct ids.
		if got := slices.Compact(jobs); !slices.Equal(got, want) {
			t.Errorf("jobs for %v, want one for each of %v", got, want)
		}
	})
}

// errAny stands for any error in a table of outcomes.
var errAny = errors.New("any error")

// Concurrent Submits (batched by the committer) decide exactly as
// one-at-a-time transactions would: of each model entered by several keys
// at once exactly one lands, every landed entry has one row and one job.
func TestConcurrentSubmitsLandOnce(t *testing.T) {
	eachService(t, func(t *testing.T, s *Service, q *jobQueue, c competition.Competition) {
		ctx := context.Background()
		const models, keys = 20, 4
		var wg sync.WaitGroup
		var mu sync.Mutex
		landed := map[string][]string{}
		refused := 0
		for m := 0; m < models; m++ {
			for k := 0; k < keys; k++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sub, err := s.Submit(ctx, Entry{CompetitionID: c.ID, Submitter: fmt.Sprintf("ed25519:k%d", k),
						BaseURL: "http://127.0.0.1:9/v1", Model: fmt.Sprintf("m%d", m)})
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						landed[sub.Model.Model] = append(landed[sub.Model.Model], sub.ID)
					case errors.Is(err, competition.ErrDuplicateEntry):
						refused++
					default:
						t.Errorf("submit m%d by k%d: %v", m, k, err)
					}
				}()
			}
		}
		wg.Wait()
		var ids []string
		for m, got := range landed {
			if len(got) != 1 {
				t.Errorf("model %s landed %d times", m, len(got))
			}
			ids = append(ids, got...)
		}
		if len(landed) != models || refused != models*(keys-1) {
			t.Errorf("%d models landed, %d entries refused; want %d and %d", len(landed), refused, models, models*(keys-1))
		}
		subs, err := s.cfg.DB.ListSubmissions(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		var rows []string
		for _, sub := range subs {
			rows = append(rows, sub.ID)
		}
		slices.Sort(ids)
		slices.Sort(rows)
		if jobs := slices.Sorted(slices.Values(q.ids)); !slices.Equal(rows, ids) || !slices.Equal(jobs, ids) {
			t.Errorf("rows %v and jobs %v, want one each for %v", rows, jobs, ids)
		}
	})
}

// The batch's entry rules (store.EntrantsAndQuotasTx once, then entrants.admit in
// arrival order) decide every entry as competition.CheckEntry over the
// full list of submissions would, one entry after another: the reference.
func TestBatchRulesMatchCheckEntry(t *testing.T) {
	eachService(t, func(t *testing.T, s *Service, _ *jobQueue, _ competition.Competition) {
		ctx := context.Background()
		rapid.Check(t, func(rt *rapid.T) {
			c, err := s.CreateCompetition(ctx, NewCompetition{Kind: "echo", CreatedBy: "ed25519:creator",
				Spec: kind.Spec{Title: "echoes", Dataset: []byte("\"a\"\n")}}, nil)
			if err != nil {
				rt.Fatal(err)
			}
			keyGen, modelGen := rapid.SampledFrom([]string{"ed25519:a", "ed25519:b", "ed25519:c"}), rapid.SampledFrom([]string{"m1", "m2", "m3", "m4"})
			// Entries already stored, some of them failed (a failed entry
			// frees its model's place and its key's).
			at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			for i, n := 0, rapid.IntRange(0, 6).Draw(rt, "stored"); i < n; i++ {
				p := prepared(rt, s, c, keyGen.Draw(rt, "key"), modelGen.Draw(rt, "model"), 0)
				p.sub.CommittedAt = at.Add(time.Duration(rapid.IntRange(0, 3).Draw(rt, "at")) * time.Second)
				p.sub.State = rapid.SampledFrom([]competition.State{competition.StateQueued, competition.StateScored, competition.StateFailed, competition.StateInfraFailed}).Draw(rt, "state")
				if err := s.cfg.DB.InTx(ctx, func(tx *sql.Tx) error { return s.cfg.DB.CreateSubmissionTx(ctx, tx, p.sub, "") }); err != nil {
					rt.Fatal(err)
				}
			}
			subs, err := s.cfg.DB.ListSubmissions(ctx, c.ID)
			if err != nil {
				rt.Fatal(err)
			}
			var batch []*pending
			for i, n := 0, rapid.IntRange(1, 12).Draw(rt, "batch"); i < n; i++ {
				batch = append(batch, prepared(rt, s, c, keyGen.Draw(rt, "key"), modelGen.Draw(rt, "model"), rapid.IntRange(0, 3).Draw(rt, "limit")))
			}
			var want []error
			for _, p := range batch {
				err := competition.CheckEntry(subs, p.e.Submitter, p.sub.Digest, p.e.Limit)
				want = append(want, err)
				if err == nil {
					subs = append(subs, p.sub)
				}
			}
			s.commitBatch(batch)
			for i, p := range batch {
				got, wantErr := "", ""
				if p.err != nil {
					got = p.err.Error()
				}
				if want[i] != nil {
					wantErr = want[i].Error()
				}
				if got != wantErr {
					rt.Errorf("entry %d (%s by %s, limit %d): %q, want %q", i, p.sub.Model.Model, p.e.Submitter, p.e.Limit, got, wantErr)
				}
			}
		})
	})
}

// Entries racing through two Services (two hub processes, whose batches
// commit side by side) still obey the rules: of one model entered by many
// keys one lands, of one key's many models Limit land. On PostgreSQL this
// is the entrants' locks' work (store.Locks, LockTx); without them both
// processes' batches would read the same entrants and all get in.
func TestRacingProcessesKeepEntryRules(t *testing.T) {
	eachService(t, func(t *testing.T, s *Service, _ *jobQueue, c competition.Competition) {
		ctx := context.Background()
		// Each batch dawdles between its entrants read and its commit, as
		// River's insert does, so that racing batches overlap there.
		q := &slowQueue{}
		cfg := s.cfg
		cfg.Evaluations = q
		s, other := New(cfg), New(cfg)
		const racers, limit = 24, 3
		var wg sync.WaitGroup
		var mu sync.Mutex
		landed := map[string]int{}
		for i := range racers {
			for _, e := range []Entry{
				{Submitter: fmt.Sprintf("ed25519:k%d", i), Model: "shared"},
				{Submitter: "ed25519:busy", Model: fmt.Sprintf("m%d", i), Limit: limit},
			} {
				e.CompetitionID, e.BaseURL = c.ID, "http://127.0.0.1:9/v1"
				svc := []*Service{s, other}[i%2]
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := svc.Submit(ctx, e)
					if err != nil && !errors.Is(err, competition.ErrDuplicateEntry) && !errors.Is(err, competition.ErrEntryLimit) {
						t.Errorf("submit %s by %s: %v", e.Model, e.Submitter, err)
					}
					if err == nil {
						mu.Lock()
						landed[e.Submitter]++
						if e.Model == "shared" {
							landed["shared"]++
						}
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		if landed["shared"] != 1 || landed["ed25519:busy"] != limit {
			t.Errorf("the shared model landed %d times (want 1), the busy key's entries %d (want %d)", landed["shared"], landed["ed25519:busy"], limit)
		}
		subs, err := s.cfg.DB.ListSubmissions(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(subs) != 1+limit || len(q.ids) != len(subs) {
			t.Errorf("%d rows and %d jobs, want %d each", len(subs), len(q.ids), 1+limit)
		}
	})
}

// slowQueue is a jobQueue whose enqueue takes a while.
type slowQueue struct{ jobQueue }

func (q *slowQueue) EnqueueEvaluationsTx(ctx context.Context, tx *sql.Tx, ids []string) error {
	time.Sleep(20 * time.Millisecond)
	return q.jobQueue.EnqueueEvaluationsTx(ctx, tx, ids)
}
