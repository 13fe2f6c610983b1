package node_test

import (
	"context"
	"crucible/internal/api/apiv1"
	"crucible/internal/eval/kinds"
	"crucible/internal/intake"
	"crucible/internal/kind"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"crucible/internal/api"
	"crucible/internal/client"
	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/consensus"
	"crucible/internal/eval"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/taskkind"
	"crucible/internal/identity"
	"crucible/internal/jobs"
	"crucible/internal/store"
	"crucible/internal/store/storetest"
	"crucible/internal/validator/node"
)

const dataset = `{"question":"1+1?","choices":["1","2"],"answer":1}
{"question":"2+2?","choices":["4","5"],"answer":0}
{"question":"3+3?","choices":["6","7"],"answer":0}
`

// testHub is an in-process hub whose submissions are scored by hand.
type testHub struct {
	db    *store.DB
	url   string
	admin *identity.Key
	comp  competition.Competition
}

func newTestHub(t *testing.T) *testHub {
	t.Helper()
	ctx := context.Background()
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
	clk := clock.Real{}
	reg := builtinKinds(t, kinds.Egress{})
	srv := httptest.NewServer(api.New(api.Config{DB: db, Clock: clk, HubID: hubID, Kinds: reg,
		Intake:     intake.New(intake.Config{DB: db, Kinds: reg, Evaluations: q, Clock: clk}),
		Validators: consensus.New(consensus.Config{DB: db, Clock: clk, Admins: []string{admin.ID()}})}).Handler())
	t.Cleanup(srv.Close)
	h := &testHub{db: db, url: srv.URL, admin: admin}
	c := h.client(t, admin)
	if h.comp, err = c.CreateCompetition(ctx, apiv1.CreateCompetitionRequest{Kind: "mcq", Title: "sums", Dataset: dataset}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *testHub) client(t *testing.T, k *identity.Key) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Server: h.url, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// miner registers a key, submits a model and scores it with the given item scores.
func (h *testHub) miner(t *testing.T, scores []float64) int64 {
	t.Helper()
	ctx := context.Background()
	k, _ := identity.NewKey()
	c := h.client(t, k)
	reg, err := c.Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.Submit(ctx, h.comp.ID, apiv1.CreateSubmissionRequest{BaseURL: "http://203.0.113.1/v1", Model: fmt.Sprint("m", reg.UID)})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range scores {
		if err := h.db.InsertResult(ctx, sub.ID, eval.Result{Index: i, Score: s, Correct: s == 1}); err != nil {
			t.Fatal(err)
		}
	}
	card := competition.NewCard(scores, 0)
	if _, err := storetest.SetState(ctx, h.db, sub.ID, competition.StateScored, "", &card, time.Now()); err != nil {
		t.Fatal(err)
	}
	return reg.UID
}

func TestANodeScoresFromTheHubsResultsAndPostsOncePerEpoch(t *testing.T) {
	ctx := context.Background()
	h := newTestHub(t)
	strong := h.miner(t, []float64{1, 1, 1})
	weak := h.miner(t, []float64{0, 0, 1})
	vk, _ := identity.NewKey()
	if _, err := h.client(t, h.admin).SetStake(ctx, vk.ID(), 10); err != nil {
		t.Fatal(err)
	}
	n := node.New(node.Config{Hub: h.client(t, vk), Competition: h.comp.ID, Temperature: 0.5, TrustHubResults: true})
	w, err := n.Weights(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The tie on the last item goes to the earlier submission: win rates 1
	// and 0, then softmax at T = 0.5.
	want := 1 / (1 + math.Exp(-1/0.5))
	if math.Abs(w[strong]-want) > 1e-9 || math.Abs(w[weak]-(1-want)) > 1e-9 {
		t.Fatalf("weights = %v, want %v on the strong miner", w, want)
	}
	posted, epoch, err := n.Step(ctx)
	if err != nil || !posted {
		t.Fatalf("first step: posted %v, %v", posted, err)
	}
	posted, again, err := n.Step(ctx)
	if err != nil || (posted && again == epoch) {
		t.Fatalf("second step in epoch %d posted again (%v, %v)", epoch, posted, err)
	}
	vs, _ := h.client(t, nil).WeightVectors(ctx, epoch)
	if len(vs) != 1 || vs[0].Validator != vk.ID() {
		t.Fatalf("vectors in epoch %d: %+v", epoch, vs)
	}
}

func TestANodeRefusesADatasetThatIsNotTheCompetitions(t *testing.T) {
	h := newTestHub(t)
	h.miner(t, []float64{1, 1, 1})
	other, err := mcq.Parse(strings.NewReader(strings.Replace(dataset, "1+1", "1+2", 1)), "other")
	if err != nil {
		t.Fatal(err)
	}
	vk, _ := identity.NewKey()
	n := node.New(node.Config{Hub: h.client(t, vk), Competition: h.comp.ID, Dataset: other})
	if _, err := n.Weights(context.Background()); err == nil || !strings.Contains(err.Error(), "not the same dataset") {
		t.Fatalf("err = %v, want a digest mismatch", err)
	}
}

// unvalidated is the mcq kind in a registry that says a validator cannot
// evaluate it on its own.
type unvalidated struct{ kinds.MCQ }

func (unvalidated) Validation() kind.Validation { return kind.ValidateNone }

// The node asks its registry how a kind is validated, not the kind's name:
// with a registry whose mcq kind is not validated on a dataset, the node
// refuses to start even with the right dataset; with the hub's registry the
// same dataset is accepted.
func TestANodeAsksItsKindRegistryHowToValidate(t *testing.T) {
	h := newTestHub(t)
	h.miner(t, []float64{1, 1, 1})
	own, err := mcq.Parse(strings.NewReader(dataset), "dataset")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := kind.NewRegistry(unvalidated{})
	if err != nil {
		t.Fatal(err)
	}
	vk, _ := identity.NewKey()
	n := node.New(node.Config{Hub: h.client(t, vk), Competition: h.comp.ID, Dataset: own, Kinds: reg})
	if _, err := n.Weights(context.Background()); !errors.Is(err, node.ErrCannotEvaluate) || !strings.Contains(err.Error(), "cannot evaluate mcq competition") {
		t.Fatalf("err = %v, want ErrCannotEvaluate from the registry's word", err)
	}
	n = node.New(node.Config{Hub: h.client(t, vk), Competition: h.comp.ID, Dataset: own, Kinds: builtinKinds(t, kinds.Egress{})})
	if _, err := n.Weights(context.Background()); errors.Is(err, node.ErrCannotEvaluate) {
		t.Fatalf("err = %v: the hub's registry validates mcq on the validator's own dataset", err)
	}
}

func TestAColludingNodeGivesItsMinerEverything(t *testing.T) {
	h := newTestHub(t)
	vk, _ := identity.NewKey()
	uid := int64(7)
	n := node.New(node.Config{Hub: h.client(t, vk), Competition: h.comp.ID, ColludeWith: &uid})
	w, err := n.Weights(context.Background())
	if err != nil || len(w) != 1 || w[7] != 1 {
		t.Fatalf("weights = %v, %v; want {7: 1}", w, err)
	}
}

// TestANodeNeverDialsAMinersURLOnTheHost: a validator evaluating models
// itself (--dataset) meets miners whose base_url is on its own loopback
// (127.0.0.1 and [::1]); with the default policy it sends them nothing.
func TestANodeNeverDialsAMinersURLOnTheHost(t *testing.T) {
	ctx := context.Background()
	h := newTestHub(t)
	var hits atomic.Int64
	for _, host := range []string{"127.0.0.1", "::1"} {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) })}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		k, _ := identity.NewKey()
		c := h.client(t, k)
		if _, err := c.Register(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Submit(ctx, h.comp.ID, apiv1.CreateSubmissionRequest{BaseURL: "http://" + ln.Addr().String() + "/v1", Model: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	own, err := mcq.Parse(strings.NewReader(dataset), "dataset")
	if err != nil {
		t.Fatal(err)
	}
	vk, _ := identity.NewKey()
	n := node.New(node.Config{Hub: h.client(t, vk), Competition: h.comp.ID, Dataset: own})
	if _, err := n.Weights(ctx); err == nil || !strings.Contains(err.Error(), "no registered miner has a scoreable submission") {
		t.Fatalf("weights: %v, want none scoreable", err)
	}
	if got := hits.Load(); got != 0 {
		t.Fatalf("the miners' loopback servers got %d requests, want 0", got)
	}
}

// builtinKinds is the hub's registry (app.Kinds) of the built-in kinds and
// the task kind over egress.
func builtinKinds(t *testing.T, egress kinds.Egress) *kind.Registry {
	t.Helper()
	reg, err := kind.NewRegistry(append(kinds.Builtin(egress, nil), taskkind.Task{Egress: egress})...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// A dataset that is not the competition's is refused naming the items that
// differ: those whose prompt is not the one the hub sent for that position.
func TestADatasetMismatchNamesTheItemsThatDiffer(t *testing.T) {
	ctx := context.Background()
	h := newTestHub(t)
	uid := h.miner(t, nil) // its results, with the prompts the hub sent, follow
	hubs, err := mcq.Parse(strings.NewReader(dataset), "hub")
	if err != nil {
		t.Fatal(err)
	}
	subs, err := h.client(t, nil).Submissions(ctx, h.comp.ID)
	if err != nil || len(subs) != 1 {
		t.Fatalf("submissions of miner %d: %v, %v", uid, subs, err)
	}
	for i, it := range hubs.Items {
		prompt, err := mcq.Render(mcq.MustDefaultTemplate(), it)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.db.InsertResult(ctx, subs[0].ID, eval.Result{Index: i, Prompt: prompt, Score: 1, Correct: true}); err != nil {
			t.Fatal(err)
		}
	}
	other, err := mcq.Parse(strings.NewReader(strings.Replace(dataset, "2+2", "2+3", 1)), "hub")
	if err != nil {
		t.Fatal(err)
	}
	vk, _ := identity.NewKey()
	n := node.New(node.Config{Hub: h.client(t, vk), Competition: h.comp.ID, Dataset: other, Interval: time.Hour})
	err = n.Run(ctx) // returns at once: retrying cannot make the datasets agree
	if !errors.Is(err, node.ErrCannotEvaluate) || !strings.Contains(err.Error(), "1 of the 3 items compared differ from the hub's: "+other.Items[1].ID) ||
		strings.Contains(err.Error(), other.Items[0].ID) {
		t.Fatalf("err = %v, want item %s named, and only it", err, other.Items[1].ID)
	}
	answers, err := mcq.Parse(strings.NewReader(strings.Replace(dataset, `"answer":1`, `"answer":0`, 1)), "hub")
	if err != nil {
		t.Fatal(err)
	}
	n = node.New(node.Config{Hub: h.client(t, vk), Competition: h.comp.ID, Dataset: answers, Interval: time.Hour})
	if err := n.Run(ctx); !errors.Is(err, node.ErrCannotEvaluate) || !strings.Contains(err.Error(), "differ in their answers") {
		t.Fatalf("err = %v, want the answers named as the difference", err)
	}
}
