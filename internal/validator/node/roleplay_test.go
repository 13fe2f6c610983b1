package node_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crucible/internal/api"
	"crucible/internal/api/apiv1"
	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/consensus"
	"crucible/internal/egress"
	"crucible/internal/eval"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/roleplay"
	"crucible/internal/eval/roleplay/roleplaytest"
	"crucible/internal/eval/runner"
	"crucible/internal/identity"
	"crucible/internal/intake"
	"crucible/internal/jobs"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
	"crucible/internal/validator/node"
)

// roleplayHub is an in-process hub with one roleplay competition whose
// generator, reference and judge are the baseline model server's, a fake
// clock (one-hour consensus epochs) and no worker: the test writes the hub's
// results itself.
type roleplayHub struct {
	*testHub
	clk      *clock.Fake
	svc      *consensus.Service
	modelURL string
	loopback *http.Client
}

func newRoleplayHub(t *testing.T) *roleplayHub {
	t.Helper()
	h, err := roleplaytest.New("persona", "persona-plus", "persona-ref", "persona-incoherent", "judge")
	if err != nil {
		t.Fatal(err)
	}
	models := httptest.NewServer(h)
	t.Cleanup(models.Close)
	rh := newClockHub(t, consensus.Config{})
	rh.modelURL = models.URL + "/v1"
	rh.comp, err = rh.client(t, rh.admin).CreateCompetition(context.Background(), apiv1.CreateCompetitionRequest{Kind: "roleplay", Title: "characters",
		Roleplay: &roleplay.CompetitionConfig{Seed: 7, Items: 6, Turns: 2,
			Generator: roleplay.EndpointSpec{BaseURL: rh.modelURL, Model: roleplay.BaselineGenerator},
			Reference: roleplay.EndpointSpec{BaseURL: rh.modelURL, Model: roleplay.BaselineReference},
			Judge:     roleplay.EndpointSpec{BaseURL: rh.modelURL, Model: roleplay.BaselineJudge}}})
	if err != nil {
		t.Fatal(err)
	}
	return rh
}

// newClockHub is a hub on a fake clock without a competition; cfg sets the
// consensus settings beyond the store, clock, epoch length and admin.
func newClockHub(t *testing.T, cfg consensus.Config) *roleplayHub {
	t.Helper()
	ctx := context.Background()
	loopback := egress.NewSafeHTTPClient(egress.EndpointPolicy{Allow: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}, egress.Timeouts{})
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q, err := jobs.New(ctx, jobs.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	hubID, err := db.HubID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := identity.NewKey()
	// The fake clock stays within the signature window of the real one
	// (±5 min) unless a test moves it further and then signs nothing more.
	clk := clock.NewFake(time.Now())
	cfg.DB, cfg.Clock, cfg.EpochLength, cfg.Admins = db, clk, time.Hour, []string{admin.ID()}
	svc := consensus.New(cfg)
	reg := builtinKinds(t, kinds.Egress{HTTPClient: loopback})
	srv := httptest.NewServer(api.New(api.Config{DB: db, Clock: clk, HubID: hubID, Validators: svc, Kinds: reg,
		Intake: intake.New(intake.Config{DB: db, Kinds: reg, Evaluations: q, Clock: clk})}).Handler())
	t.Cleanup(srv.Close)
	return &roleplayHub{testHub: &testHub{db: db, url: srv.URL, admin: admin}, clk: clk, svc: svc, loopback: loopback}
}

// miner registers a key and submits model at baseURL; it returns the UID
// and the submission.
func (h *roleplayHub) miner(t *testing.T, baseURL, model string) (int64, competition.Submission) {
	t.Helper()
	ctx := context.Background()
	k, _ := identity.NewKey()
	c := h.client(t, k)
	reg, err := c.Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.Submit(ctx, h.comp.ID, apiv1.CreateSubmissionRequest{BaseURL: baseURL, Model: model})
	if err != nil {
		t.Fatal(err)
	}
	return reg.UID, sub
}

// hubResults evaluates a submission on the hub's items as the hub's worker would.
func (h *roleplayHub) hubResults(t *testing.T, s competition.Submission) []eval.Result {
	t.Helper()
	ctx := context.Background()
	items, err := h.db.CompetitionItems(ctx, h.comp.ID)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := builtinKinds(t, kinds.Egress{HTTPClient: h.loopback}).Plan(ctx, h.comp, s, "", items)
	if err != nil {
		t.Fatal(err)
	}
	var out []eval.Result
	if err := runner.Run(ctx, ev, runner.Config{Concurrency: 4, Sink: func(r eval.Result) error { out = append(out, r); return nil }}); err != nil {
		t.Fatal(err)
	}
	return out
}

// store writes results as s's stored results and scores it from them.
func (h *roleplayHub) store(t *testing.T, s competition.Submission, results []eval.Result) {
	t.Helper()
	ctx := context.Background()
	for _, r := range results {
		if err := h.db.InsertResult(ctx, s.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	card, _, err := builtinKinds(t, kinds.Egress{}).Score(h.comp, results)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.SetState(ctx, h.db, s.ID, competition.StateScored, "", &card, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// validator gives a fresh key stake and returns a node for it.
func (h *roleplayHub) validator(t *testing.T, stake int64, cfg node.Config) (*node.Node, string) {
	t.Helper()
	vk, _ := identity.NewKey()
	if _, err := h.client(t, h.admin).SetStake(context.Background(), vk.ID(), stake); err != nil {
		t.Fatal(err)
	}
	cfg.Hub, cfg.Competition, cfg.ModelHTTP = h.client(t, vk), h.comp.ID, h.loopback
	return node.New(cfg), vk.ID()
}

// ownRoleplay is a validator's own generator, reference and judge (here the
// same baseline server as the hub's, at its own URL) and its own secret.
func (h *roleplayHub) ownRoleplay(secret string) *node.Roleplay {
	own := kinds.OperatorEndpoint{BaseURL: h.modelURL}
	return &node.Roleplay{Secret: []byte(secret), Egress: kinds.Egress{Operator: map[kinds.Role]kinds.OperatorEndpoint{
		kinds.RoleGenerator: own, kinds.RoleReference: own, kinds.RoleJudge: own}}}
}

// TestIndependentValidatorsOutvoteATamperedHubResult: the hub's stored
// roleplay results are tampered with (the strong model's results stored
// under the weak model's submission and the reverse). A validator that
// trusts the hub's results follows the tampering; two validators that
// evaluate with their own judge on their own fresh items do not, and with
// the majority of stake their weights decide the epoch's incentive and
// emission.
func TestIndependentValidatorsOutvoteATamperedHubResult(t *testing.T) {
	ctx := context.Background()
	h := newRoleplayHub(t)
	strong, strongSub := h.miner(t, h.modelURL, "baseline-persona-plus")
	weak, weakSub := h.miner(t, h.modelURL, "baseline-persona-incoherent")
	strongRes, weakRes := h.hubResults(t, strongSub), h.hubResults(t, weakSub)
	h.store(t, strongSub, weakRes) // the tampering
	h.store(t, weakSub, strongRes)

	honestA, keyA := h.validator(t, 40, node.Config{Roleplay: h.ownRoleplay("secret of A")})
	honestB, keyB := h.validator(t, 35, node.Config{Roleplay: h.ownRoleplay("secret of B")})
	trusting, keyT := h.validator(t, 25, node.Config{TrustHubResults: true})
	for _, v := range []struct {
		name   string
		n      *node.Node
		honest bool
	}{{keyA, honestA, true}, {keyB, honestB, true}, {keyT, trusting, false}} {
		w, err := v.n.Weights(ctx)
		if err != nil {
			t.Fatalf("validator %s: %v", v.name, err)
		}
		if prefersStrong := w[strong] > w[weak]; prefersStrong != v.honest {
			t.Fatalf("validator %s (own evaluation: %v) weights %v: strong UID %d, weak UID %d", v.name, v.honest, w, strong, weak)
		}
		if posted, _, err := v.n.Step(ctx); err != nil || !posted {
			t.Fatalf("validator %s: posted %v, %v", v.name, posted, err)
		}
	}
	epoch := h.svc.Current().Epoch
	h.clk.Advance(time.Hour)
	rec, err := h.svc.Close(ctx, epoch)
	if err != nil {
		t.Fatal(err)
	}
	byUID := map[int64]consensus.MinerResult{}
	for _, m := range rec.Miners {
		byUID[m.UID] = m
	}
	if s, w := byUID[strong], byUID[weak]; !(s.Incentive > w.Incentive && s.Emission > w.Emission) {
		t.Fatalf("consensus: strong %+v, weak %+v; want the honest validators' order", s, w)
	}
	trust := map[string]float64{}
	for _, v := range rec.Validators {
		trust[v.Key] = v.Trust
	}
	if !(trust[keyA] > trust[keyT] && trust[keyB] > trust[keyT]) {
		t.Fatalf("validator trust %v: the hub-trusting validator should be clipped below the honest ones", trust)
	}
}

// TestACopyGetsWeightZero: a model reached through another URL (a distinct
// digest, the same raw responses) registered after the original gets weight
// 0 in an independent validator's vector (without the copy rule it would
// share the original's weight).
func TestACopyGetsWeightZero(t *testing.T) {
	ctx := context.Background()
	h := newRoleplayHub(t)
	original, _ := h.miner(t, h.modelURL, "baseline-persona-plus")
	other, _ := h.miner(t, h.modelURL, "baseline-persona")
	copied, _ := h.miner(t, strings.Replace(h.modelURL, "127.0.0.1", "localhost", 1), "baseline-persona-plus")
	v, _ := h.validator(t, 10, node.Config{Roleplay: h.ownRoleplay("secret")})
	w, err := v.Weights(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, named := w[copied]; !named || w[copied] != 0 || !(w[original] > 0) {
		t.Fatalf("weights %v: original UID %d, other %d, copy %d; want the copy at 0 and the original paid", w, original, other, copied)
	}
}

// TestAValidatorWithoutItsOwnJudgeRefusesToCopyTheHub: lacking endpoints, a
// validator says what is missing instead of silently scoring from the hub's
// results.
func TestAValidatorWithoutItsOwnJudgeRefusesToCopyTheHub(t *testing.T) {
	h := newRoleplayHub(t)
	v, _ := h.validator(t, 10, node.Config{})
	_, err := v.Weights(context.Background())
	if !errors.Is(err, node.ErrCannotEvaluate) || !strings.Contains(err.Error(), "--judge-url") || !strings.Contains(err.Error(), "--trust-hub-results") {
		t.Fatalf("err = %v, want the missing endpoints named", err)
	}
	// Run stops at start with the same reason instead of retrying forever.
	if err := v.Run(context.Background()); !errors.Is(err, node.ErrCannotEvaluate) {
		t.Fatalf("Run: %v, want it to stop with ErrCannotEvaluate", err)
	}
}

// TestEachEpochHasItsOwnSeed: a validator's items differ between epochs and
// between validators, so they cannot be precomputed from the hub's.
func TestEachEpochHasItsOwnSeed(t *testing.T) {
	a, b := node.EpochSeed([]byte("s"), "c1", 5), node.EpochSeed([]byte("s"), "c1", 6)
	if a == b || a == node.EpochSeed([]byte("t"), "c1", 5) || a != node.EpochSeed([]byte("s"), "c1", 5) || a < 0 {
		t.Fatalf("seeds %d %d", a, b)
	}
}
