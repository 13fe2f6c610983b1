package node_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/consensus"
	"crucible/internal/eval"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/preference"
	"crucible/internal/identity"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
	"crucible/internal/validator/node"
)

// prefTasks are three organic rank tasks; each line's responses are listed
// best first, which is the honest raters' order.
var prefTasks = [][]string{
	{"Paris is the capital of France.", "It is Paris, I think.", "Lyon."},
	{"Water boils at 100 °C at sea level.", "Around 100 degrees.", "At 50 °C."},
	{"Seven days make a week.", "A week has 7 days, roughly.", "Ten."},
}

func prefDataset() string {
	var b strings.Builder
	for i, rs := range prefTasks {
		b.WriteString(`{"id":"t` + string(rune('0'+i)) + `","instruction":"Answer well.","responses":["` + strings.Join(rs, `","`) + `"]}` + "\n")
	}
	return b.String()
}

// TestAPreferenceValidatorScoresFromTheLabels: a validator scores a
// preference competition itself from the closed tasks' ratings: three
// honest raters share the reward, one that ranks every task backwards fails
// the trust gate and gets 0, and a forged "scored submission" written
// straight into the hub's store for another miner moves nothing.
func TestAPreferenceValidatorScoresFromTheLabels(t *testing.T) {
	ctx := context.Background()
	h := newClockHub(t, consensus.Config{})
	comp, err := h.client(t, h.admin).CreatePreferenceCompetition(ctx, apiv1.CreatePreferenceCompetitionRequest{Title: "answers",
		DatasetName: "organic", Dataset: prefDataset(), Preference: kinds.PreferenceSpec{TTL: "1m"}})
	if err != nil {
		t.Fatal(err)
	}
	h.comp = comp
	rate := func(backwards bool) int64 {
		t.Helper()
		k, _ := identity.NewKey()
		c := h.client(t, k)
		reg, err := c.Register(ctx)
		if err != nil {
			t.Fatal(err)
		}
		copies, err := c.PreferenceCopies(ctx, comp.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range copies.Tasks {
			rank := func(text string) int {
				for _, rs := range prefTasks {
					if i := slices.Index(rs, strings.TrimSpace(text)); i >= 0 {
						return i
					}
				}
				t.Fatalf("unknown response %q", text)
				return 0
			}
			rs := slices.Clone(v.Responses)
			slices.SortFunc(rs, func(a, b preference.ViewResponse) int { return rank(a.Text) - rank(b.Text) })
			var order []string
			for _, r := range rs {
				order = append(order, r.ID)
			}
			if backwards {
				slices.Reverse(order)
			}
			if _, err := c.RatePreference(ctx, comp.ID, apiv1.PreferenceRatingRequest{TaskID: v.TaskID, Order: order}); err != nil {
				t.Fatal(err)
			}
		}
		return reg.UID
	}
	honest := []int64{rate(false), rate(false), rate(false)}
	contrarian := rate(true)

	// The forgery: a scored submission with perfect results for a miner
	// that rated nothing, as a tampered hub would store it.
	fk, _ := identity.NewKey()
	forger, err := h.client(t, fk).Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	forged := competition.Submission{ID: store.NewID("s"), CompetitionID: comp.ID, Submitter: fk.ID(), CommittedAt: time.Now(),
		State: competition.StateQueued, ItemsTotal: 1, UpdatedAt: time.Now(), Model: competition.ModelSpec{BaseURL: "http://203.0.113.1/v1", Model: "m"}}
	if err := h.db.InTx(ctx, func(tx *sql.Tx) error { return h.db.CreateSubmissionTx(ctx, tx, forged, "") }); err != nil {
		t.Fatal(err)
	}
	if err := h.db.InsertResult(ctx, forged.ID, eval.Result{Index: 0, Score: 1, Correct: true}); err != nil {
		t.Fatal(err)
	}
	card := competition.NewCard([]float64{1}, 1)
	if _, err := storetest.SetState(ctx, h.db, forged.ID, competition.StateScored, "", &card, time.Now()); err != nil {
		t.Fatal(err)
	}

	v, _ := h.validator(t, 10, node.Config{})
	if _, err := v.Weights(ctx); err == nil || !strings.Contains(err.Error(), "from the 0 closed tasks") {
		t.Fatalf("before the deadline: %v, want no closed task to score (open tasks' ground truth stays sealed)", err)
	}
	stranger, _ := identity.NewKey()
	_, err = h.client(t, stranger).PreferenceLabels(ctx, comp.ID)
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
		t.Fatalf("labels read by a key without stake: %v, want 403", err)
	}

	h.clk.Advance(2 * time.Minute) // the tasks close; still inside the signature window
	w, err := v.Weights(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, uid := range honest {
		if !(w[uid] > 0.3) {
			t.Fatalf("weights %v: honest rater UID %d should share the reward", w, uid)
		}
	}
	if w[contrarian] != 0 || w[forger.UID] != 0 {
		t.Fatalf("weights %v: the contrarian (UID %d) and the forged submission's miner (UID %d) should get 0", w, contrarian, forger.UID)
	}
}
