// Package node is the validator process (`crucible validator run`): it pulls
// one competition's submissions from a hub, scores each miner's latest
// submission, turns the scores into a weight vector over miner UIDs and
// posts it, signed with the validator's key, once per epoch (again inside an
// epoch only when its weights change; the hub counts the latest).
//
// Scores come from the validator's own evaluation, with the evaluator the hub
// uses (internal/eval/kinds, eval.Run), so its opinion does not depend on the
// hub's results. How it evaluates a competition is its kind's
// kind.Validation, asked of the kind registry (Config.Kinds); the node never
// names a kind:
//   - own dataset (mcq): with its own copy of the competition's dataset (Config.Dataset,
//     checked against the competition's dataset digest);
//   - own models (roleplay): with its own generator, reference and judge (Config.Roleplay)
//     on its own fresh items, planned each epoch from its own secret seed
//     with the competition's shape and scoring (roleplay.go);
//   - sandbox (patch): each miner's latest patch judged in the validator's own sandbox
//     with the hub's judge, over the competition's full tasks and its
//     repository bundles, checked against their committed digests (patch.go);
//   - labels (preference): from the labels, the closed tasks and their ratings, scored
//     with preference.Score under the competition's configuration; a miner's
//     weight is its reward (preference.go);
//   - own items (task): with the items it renders itself from the competition's
//     stored task and the preset's rows or its own copy of the sent rows
//     (Config.Rows), checked against the competition's dataset digest (items.go).
//
// An artifact submission (model files committed by tree digest) is evaluated
// the same ways, against the model the validator serves itself
// (Config.Models: fetched from the submission's source, verified against
// the committed digest, launched on loopback; artifacts.go). A tree that is
// not the committed one gets no weight.
//
// A validator that lacks what a competition's kind needs refuses to start
// (Weights returns the reason) unless Config.TrustHubResults is set: then it
// scores from the hub's stored per-item results of scored submissions, which
// is not an independent check (a tampered hub result moves its weights).
//
// Weights are win rates with time priority (incentive.WinRates, the earlier
// submission's ε advantage) through a softmax with temperature T, as the
// model-competition subnets do. The copy rule applies first
// (incentive.Near over the raw responses the validator observed and the
// committed digests): a copy of an earlier submission gets weight 0.
//
// It talks to the hub only through internal/client; it must never import the
// store or the job queue.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"crucible/internal/api/apiv1"
	"crucible/internal/client"
	"crucible/internal/competition"
	"crucible/internal/egress"
	"crucible/internal/eval"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/roleplay"
	"crucible/internal/eval/runner"
	"crucible/internal/eval/taskkind"
	"crucible/internal/incentive"
	"crucible/internal/inference"
	"crucible/internal/kind"
	"crucible/internal/modelhost"
)

// Defaults.
const (
	DefaultEpsilon     = 0.01
	DefaultTemperature = incentive.DefaultTemperature
	DefaultInterval    = 10 * time.Second
	DefaultConcurrency = 8
)

// Config configures a Node.
type Config struct {
	// Hub is the hub's client, signing with the validator's key.
	Hub *client.Client
	// Competition is the competition whose submissions are scored.
	Competition string
	// Kinds is the kind registry, built as the hub builds it (app.Kinds)
	// over egress through ModelHTTP: it says how each kind is validated,
	// plans the evaluators of kinds whose items the validator renders
	// itself, and scores results as the hub does. Nil: the built-in kinds
	// and the task kind.
	Kinds *kind.Registry
	// Dataset is the validator's own copy of an mcq competition's dataset.
	Dataset *mcq.Dataset
	// Rows is the validator's own copy of the dataset file a competition
	// whose items it renders itself (task) was created from; nil renders
	// from the rows its configuration brings (a preset's).
	Rows []byte
	// Roleplay are the validator's own models and seed for roleplay
	// competitions.
	Roleplay *Roleplay
	// TrustHubResults scores competitions the validator cannot evaluate
	// itself from the hub's stored results. Not independent: whoever can
	// change the hub's results moves this validator's weights.
	TrustHubResults bool
	// PatchTasks is the validator's own copy of a patch competition's tasks
	// file (checked against the competition's dataset digest); the full
	// tasks the hub serves must match it but for their repo, which names
	// the bundle by digest. Without it the tasks are the hub's word.
	PatchTasks []byte
	// WorkDir caches the repository bundles of patch competitions (empty:
	// a temporary directory).
	WorkDir string
	// ModelHTTP reaches miners' model servers. Miners choose those URLs, so
	// nil means egress.NewSafeHTTPClient with the strict policy, which
	// refuses loopback, private, link-local and metadata addresses; pass a
	// client with an allow list (crucible validator run --allow-endpoints)
	// to reach models on such addresses.
	ModelHTTP *http.Client
	// Models serves artifact submissions' models on this machine: fetched
	// from the submission's source, verified against the committed tree
	// digest, launched on loopback. Nil: a validator that evaluates a
	// competition itself refuses to go on (ErrCannotEvaluate) when a
	// miner's latest submission is an artifact.
	Models *modelhost.Host
	// LaunchedHTTP reaches the model servers Models launched (loopback
	// allowed); used only for artifact submissions, whose base URL the
	// validator sets. Nil: ModelHTTP's strict policy plus loopback.
	LaunchedHTTP *http.Client
	// Concurrency is the number of items evaluated at once per submission.
	Concurrency int
	// Epsilon is the earlier submission's advantage in win rates.
	Epsilon float64
	// Temperature of the softmax from win rates to weights.
	Temperature float64
	// ColludeWith, when set, makes a dishonest validator that gives that UID
	// weight 1 and everyone else 0 — for consensus tests only.
	ColludeWith *int64
	// Interval is how often Run polls the hub.
	Interval time.Duration
	Logger   *slog.Logger
}

// Node is one validator.
type Node struct {
	cfg    Config
	kinds  *kind.Registry
	mu     sync.Mutex
	comp   *competition.Competition
	own    bool              // the validator evaluates comp itself
	how    kind.Validation   // how comp's kind is validated
	scores map[string]scored // scoreKey → item scores and raw responses
	// refused are the artifact submissions whose files failed verification
	// or a cap here, with the reason: never fetched again.
	refused map[string]error
	epoch   int64
	last    map[int64]float64
	// The validator's own roleplay items of epoch rpEpoch.
	rpEpoch  int64
	rpConfig roleplay.CompetitionConfig
	rpItems  []roleplay.Item
	// The full tasks of a patch competition, as stored items.
	patchTasks []json.RawMessage
	// The items the validator rendered itself (kind.ValidateOwnItems).
	ownItems []json.RawMessage
}

// scored is one evaluation of a submission.
type scored struct {
	scores    []float64
	responses map[int]string
}

// New returns a Node with defaults filled in.
func New(cfg Config) *Node {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Epsilon == 0 {
		cfg.Epsilon = DefaultEpsilon
	}
	if cfg.Temperature == 0 {
		cfg.Temperature = DefaultTemperature
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.ModelHTTP == nil {
		cfg.ModelHTTP = egress.NewSafeHTTPClient(egress.EndpointPolicy{}, egress.Timeouts{})
	}
	if cfg.LaunchedHTTP == nil {
		cfg.LaunchedHTTP = egress.NewSafeHTTPClient(modelhost.LaunchedPolicy(egress.EndpointPolicy{}), egress.Timeouts{})
	}
	if cfg.Roleplay != nil && cfg.Roleplay.Egress.HTTPClient == nil {
		rp := *cfg.Roleplay
		rp.Egress.HTTPClient = cfg.ModelHTTP
		cfg.Roleplay = &rp
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Kinds == nil {
		// The hub's kinds (app.Kinds: the built-in ones and the task
		// kind) reaching models through ModelHTTP; they score exactly as
		// the hub's do. (NewRegistry cannot fail on them.)
		eg := kinds.Egress{HTTPClient: cfg.ModelHTTP, Launched: cfg.LaunchedHTTP}
		cfg.Kinds, _ = kind.NewRegistry(append(kinds.Builtin(eg, nil), taskkind.Task{Egress: eg})...)
	}
	return &Node{cfg: cfg, kinds: cfg.Kinds, scores: map[string]scored{}, refused: map[string]error{}, epoch: -1, rpEpoch: -1}
}

// ErrCannotEvaluate: the validator lacks what it needs to evaluate the
// competition itself (and may not trust the hub's results), or what it has
// does not fit the competition. Run stops at once on it.
var ErrCannotEvaluate = errors.New("cannot evaluate")

// Run posts weights every Interval until ctx ends. Failed steps are logged
// and retried on the next tick, except ErrCannotEvaluate, which Run returns
// at once: a validator that cannot evaluate says so at start instead of
// quietly posting nothing (or copying the hub).
func (n *Node) Run(ctx context.Context) error {
	if n.cfg.ColludeWith == nil {
		if _, err := n.competition(ctx); errors.Is(err, ErrCannotEvaluate) {
			return err
		}
	}
	for {
		if posted, epoch, err := n.Step(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrCannotEvaluate) {
				return err
			}
			n.cfg.Logger.Warn("validator step failed", "err", err)
		} else if posted {
			n.cfg.Logger.Info("posted weights", "epoch", epoch)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(n.cfg.Interval):
		}
	}
}

// Step scores what is new and posts the weight vector for the hub's open
// epoch unless the same vector was posted in it already. It returns whether
// it posted and the epoch.
func (n *Node) Step(ctx context.Context) (bool, int64, error) {
	cur, err := n.cfg.Hub.CurrentEpoch(ctx)
	if err != nil {
		return false, 0, err
	}
	weights, err := n.weights(ctx, cur.Epoch)
	if err != nil {
		return false, cur.Epoch, err
	}
	n.mu.Lock()
	same := n.epoch == cur.Epoch && maps.Equal(n.last, weights)
	n.mu.Unlock()
	if same {
		return false, cur.Epoch, nil
	}
	if _, err := n.cfg.Hub.PostWeights(ctx, cur.Epoch, apiv1.PostWeightsRequest{Competition: n.cfg.Competition, Weights: weights}); err != nil {
		return false, cur.Epoch, fmt.Errorf("post weights for epoch %d: %w", cur.Epoch, err)
	}
	n.mu.Lock()
	n.epoch, n.last = cur.Epoch, weights
	n.mu.Unlock()
	return true, cur.Epoch, nil
}

// Weights returns the validator's weight vector over miner UIDs now: each
// registered miner's latest submission to the competition, scored, compared
// by win rate and softmaxed. Miners without a scoreable submission get no
// weight; a copy of an earlier miner's submission gets weight 0.
func (n *Node) Weights(ctx context.Context) (map[int64]float64, error) {
	cur, err := n.cfg.Hub.CurrentEpoch(ctx)
	if err != nil {
		return nil, err
	}
	return n.weights(ctx, cur.Epoch)
}

func (n *Node) weights(ctx context.Context, epoch int64) (map[int64]float64, error) {
	if n.cfg.ColludeWith != nil {
		return map[int64]float64{*n.cfg.ColludeWith: 1}, nil
	}
	c, err := n.competition(ctx)
	if err != nil {
		return nil, err
	}
	uids, err := n.cfg.Hub.UIDs(ctx)
	if err != nil {
		return nil, err
	}
	uidOf := map[string]int64{}
	for _, m := range uids {
		uidOf[m.Key] = m.UID
	}
	n.mu.Lock()
	own, how := n.own, n.how
	n.mu.Unlock()
	if how == kind.ValidateLabels {
		return n.preferenceWeights(ctx, c, uidOf)
	}
	subs, err := n.cfg.Hub.Submissions(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	if own && how == kind.ValidateSandbox {
		if subs, err = n.withPatches(ctx, c, subs); err != nil {
			return nil, err
		}
	}
	latest := map[int64]competition.Submission{}
	for _, s := range subs {
		uid, ok := uidOf[s.Submitter]
		if !ok || !n.scoreable(s) {
			continue
		}
		if prev, ok := latest[uid]; !ok || s.CommittedAt.After(prev.CommittedAt) {
			latest[uid] = s
		}
	}
	n.forgetOtherEpochs(epoch)
	var contenders []incentive.Contender
	var outs []incentive.Output
	for _, uid := range slices.Sorted(maps.Keys(latest)) {
		s := latest[uid]
		if own {
			if err := n.needModels(s); err != nil {
				return nil, err
			}
		}
		sc, err := n.score(ctx, c, s, epoch)
		if err != nil {
			n.cfg.Logger.Warn("cannot score submission; it gets no weight this round", "submission", s.ID, "uid", uid, "err", err)
			continue
		}
		id := strconv.FormatInt(uid, 10)
		contenders = append(contenders, incentive.Contender{ID: id, CommittedAt: s.CommittedAt, Scores: sc.scores})
		outs = append(outs, incentive.Output{ID: id, Digest: s.Digest, CommittedAt: s.CommittedAt, Responses: sc.responses})
	}
	if len(contenders) == 0 {
		return nil, fmt.Errorf("no registered miner has a scoreable submission in competition %s yet", c.ID)
	}
	// The copy rule: a copy ranks nowhere and earns nothing, and it does not
	// take win rates from the others either.
	out := map[int64]float64{}
	copies := incentive.CopiesBy(outs, incentive.Near)
	for id, of := range copies {
		uid, _ := strconv.ParseInt(id, 10, 64)
		out[uid] = 0
		n.cfg.Logger.Info("copy gets weight 0", "uid", id, "copy_of_uid", of)
	}
	contenders = slices.DeleteFunc(contenders, func(ct incentive.Contender) bool { _, isCopy := copies[ct.ID]; return isCopy })
	for id, w := range incentive.Softmax(incentive.WinRates(contenders, n.cfg.Epsilon), n.cfg.Temperature) {
		uid, _ := strconv.ParseInt(id, 10, 64)
		out[uid] = w
	}
	return out, nil
}

// competition fetches the competition once and checks the dataset copy.
func (n *Node) competition(ctx context.Context) (competition.Competition, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.comp != nil {
		return *n.comp, nil
	}
	c, err := n.cfg.Hub.Competition(ctx, n.cfg.Competition)
	if err != nil {
		return c, err
	}
	how := n.kinds.Validation(c.Kind)
	own, missing := n.canEvaluate(c, how)
	if how == kind.ValidateOwnItems {
		// Rows the validator was given must be the competition's; without
		// them it falls back on the hub's results when it trusts them.
		var err error
		if n.ownItems, err = n.renderItems(ctx, c); err != nil && n.cfg.Rows != nil {
			return c, fmt.Errorf("%w: %w", ErrCannotEvaluate, err)
		} else if err != nil {
			own, missing = false, err.Error()
		}
	}
	if !own && !n.cfg.TrustHubResults {
		return c, fmt.Errorf("%w: this validator cannot evaluate %s competition %s itself: %s; "+
			"or pass --trust-hub-results to score from the hub's stored results (not an independent check)", ErrCannotEvaluate, c.Kind, c.ID, missing)
	}
	if n.cfg.Dataset != nil {
		if how != kind.ValidateOwnDataset {
			return c, fmt.Errorf("%w: competition %s is a %s competition; --dataset works for competitions validated on a dataset (mcq) only", ErrCannotEvaluate, c.ID, c.Kind)
		}
		if n.cfg.Dataset.Digest != c.DatasetDigest {
			return c, fmt.Errorf("%w: dataset %s has digest %s, competition %s was created from %s: not the same dataset (%s)",
				ErrCannotEvaluate, n.cfg.Dataset.Name, n.cfg.Dataset.Digest, c.ID, c.DatasetDigest, n.datasetDiff(ctx, c))
		}
	}
	if n.cfg.PatchTasks != nil {
		if err := checkPatchTasks(c, how, n.cfg.PatchTasks); err != nil {
			return c, err
		}
	}
	if n.cfg.Rows != nil && how != kind.ValidateOwnItems {
		return c, fmt.Errorf("%w: competition %s is a %s competition; --rows works for competitions whose items the validator renders (task) only", ErrCannotEvaluate, c.ID, c.Kind)
	}
	n.comp, n.own, n.how = &c, own, how
	return c, nil
}

// canEvaluate reports whether the validator has what it needs to evaluate
// c itself the way its kind is validated, and if not, what is missing.
func (n *Node) canEvaluate(c competition.Competition, how kind.Validation) (bool, string) {
	switch how {
	case kind.ValidateOwnDataset:
		return n.cfg.Dataset != nil, "give it its own copy of the dataset (--dataset)"
	case kind.ValidateOwnModels:
		return n.cfg.Roleplay != nil, "give it its own generator, reference and judge (--generator-url, --reference-url, --judge-url)"
	case kind.ValidateSandbox:
		missing := patchReady()
		return missing == "", missing
	case kind.ValidateLabels, kind.ValidateOwnItems:
		return true, ""
	}
	return false, "a validator does not evaluate " + string(c.Kind) + " competitions"
}

// forgetOtherEpochs drops scores tied to another epoch's own roleplay items.
func (n *Node) forgetOtherEpochs(epoch int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	suffix := "@" + strconv.FormatInt(epoch, 10)
	for k := range n.scores {
		if i := strings.LastIndexByte(k, '@'); i >= 0 && k[i:] != suffix {
			delete(n.scores, k)
		}
	}
}

// scoreable reports whether a submission can be scored in this mode.
func (n *Node) scoreable(s competition.Submission) bool {
	n.mu.Lock()
	own, how := n.own, n.how
	n.mu.Unlock()
	if own && how == kind.ValidateSandbox {
		return s.Patch != nil
	}
	if own {
		return s.Patch == nil && (s.Model.BaseURL != "" || s.Artifact != nil)
	}
	return s.State == competition.StateScored
}

// score returns a submission's item scores and raw responses, evaluating or
// fetching them once (once per epoch for the validator's own roleplay items,
// which change every epoch).
func (n *Node) score(ctx context.Context, c competition.Competition, s competition.Submission, epoch int64) (scored, error) {
	n.mu.Lock()
	own, how := n.own, n.how
	n.mu.Unlock()
	key := s.ID
	if own && how == kind.ValidateOwnModels {
		key += "@" + strconv.FormatInt(epoch, 10)
	}
	n.mu.Lock()
	cached, ok := n.scores[key]
	n.mu.Unlock()
	if ok {
		return cached, nil
	}
	if own && s.Artifact != nil {
		release, err := n.serveArtifact(ctx, c, &s)
		if err != nil {
			return scored{}, err
		}
		defer release()
	}
	var results []eval.Result
	var err error
	switch {
	case !own:
		results, err = n.fetch(ctx, s)
	case how == kind.ValidateOwnModels:
		results, err = n.evaluateRoleplay(ctx, c, s, epoch)
	case how == kind.ValidateSandbox:
		results, err = n.evaluatePatch(ctx, c, s)
	case how == kind.ValidateOwnItems:
		results, err = n.evaluateOwnItems(ctx, c, s)
	default: // kind.ValidateOwnDataset: the others are not scored per submission
		results, err = n.evaluate(ctx, c, s)
	}
	if err != nil {
		return scored{}, err
	}
	slices.SortFunc(results, func(a, b eval.Result) int { return a.Index - b.Index })
	_, scores, err := n.kinds.Score(c, results)
	if err != nil {
		return scored{}, err
	}
	sc := scored{scores: scores, responses: make(map[int]string, len(results))}
	for _, r := range results {
		// An empty (or sealed) response is no evidence of copying.
		if r.Response != "" {
			sc.responses[r.Index] = r.Response
		}
	}
	n.mu.Lock()
	n.scores[key] = sc
	n.mu.Unlock()
	return sc, nil
}

// evaluate runs the competition's mcq evaluator against the miner's model.
func (n *Node) evaluate(ctx context.Context, c competition.Competition, s competition.Submission) ([]eval.Result, error) {
	var mc competition.MCQConfig
	if err := json.Unmarshal(c.Config, &mc); err != nil {
		return nil, fmt.Errorf("competition %s config: %w", c.ID, err)
	}
	cl, err := inference.New(inference.Config{BaseURL: s.Model.BaseURL, HTTPClient: n.modelHTTP(s)})
	if err != nil {
		return nil, err
	}
	ev, err := kinds.MCQEvaluator(mc, n.cfg.Dataset, cl, s.Model.Model)
	if err != nil {
		return nil, err
	}
	return n.run(ctx, ev)
}

// run evaluates every item of ev.
func (n *Node) run(ctx context.Context, ev eval.Evaluator) ([]eval.Result, error) {
	results := make([]eval.Result, 0, ev.Len())
	err := runner.Run(ctx, ev, runner.Config{Concurrency: n.cfg.Concurrency, Sink: func(r eval.Result) error {
		results = append(results, r) // Sink calls are serialised
		return nil
	}})
	return results, err
}

// fetch reads a scored submission's per-item results from the hub.
func (n *Node) fetch(ctx context.Context, s competition.Submission) ([]eval.Result, error) {
	var results []eval.Result
	for {
		page, err := n.cfg.Hub.Results(ctx, s.ID, len(results), 1000)
		if err != nil {
			return nil, err
		}
		results = append(results, page.Results...)
		if len(page.Results) == 0 || len(results) >= page.Total {
			return results, nil
		}
	}
}
