package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"crucible/internal/api"
	"crucible/internal/api/apiv1"
	"crucible/internal/app"
	"crucible/internal/client"
	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/consensus"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/identity"
	"crucible/internal/jobs/jobstest"
	"crucible/internal/ledger"
	"crucible/internal/pool"
	"crucible/internal/store/storetest"
)

// sealHub is a whole server on a fake clock (the test ticks the pools) with
// an operator, a funder and a competitor, and a model server for entrants.
type sealHub struct {
	app                          *app.App
	clock                        *clock.Fake
	base, models                 string
	operator, funder, competitor *client.Client
	funderID                     string
	// epoch fills {n} in walked routes ("0" when empty).
	epoch string
}

func startSealHub(t *testing.T, database string) *sealHub {
	t.Helper()
	keys := make([]*identity.Key, 3)
	for i := range keys {
		k, err := identity.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	ds, err := mcq.Parse(strings.NewReader(string(app.SampleDataset)), "siqa-sample")
	if err != nil {
		t.Fatal(err)
	}
	h, err := mcqtest.New(mcqtest.Config{Policies: app.DemoPolicies, Key: ds})
	if err != nil {
		t.Fatal(err)
	}
	models := httptest.NewServer(h)
	t.Cleanup(models.Close)
	// The fake clock stays within the ±5 min signature window of the real one.
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	// Workers run: pool ticks enqueue their evaluations for them.
	a, err := app.Open(ctx, app.Config{Database: database, Listen: "127.0.0.1:0", Clock: clk,
		AllowEndpoints: "127.0.0.0/8", Consensus: consensus.Config{Admins: []string{keys[0].ID()}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := a.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; a.Close() })
	hub := &sealHub{app: a, clock: clk, base: "http://" + ln.Addr().String(), models: models.URL, funderID: keys[1].ID()}
	for i, c := range []**client.Client{&hub.operator, &hub.funder, &hub.competitor} {
		if *c, err = client.New(client.Config{Server: hub.base, Key: keys[i]}); err != nil {
			t.Fatal(err)
		}
	}
	return hub
}

// needle is a private-derived value as some response would print it.
type needle struct {
	what string
	re   *regexp.Regexp
}

// number matches a formatted number not inside a longer one (a timestamp's
// fraction of a second, a coordinate).
func number(what, s string) needle {
	return needle{what, regexp.MustCompile(`(^|[^0-9.])` + regexp.QuoteMeta(s) + `($|[^0-9])`)}
}

func text(what, s string) needle { return needle{what, regexp.MustCompile(regexp.QuoteMeta(s))} }

// printed are the ways the API (JSON), the web UI (score, frac) and the CLI
// (crucible status and pool status, which print what the API returns) print
// a score.
func printed(v float64) []string {
	return []string{fmt.Sprint(v), fmt.Sprintf("%.3f", v), fmt.Sprintf("%.1f%%", 100*v), fmt.Sprintf("%.4f", v)}
}

// TestNothingPrivateLeaksFromAnOpenPool replays the subtraction attack: a
// competitor reads each fully evaluated entrant's score over all items
// (GET /api/v1/pools/{id} showed it) beside the public leaderboard and
// derives the private score that decides the payout. It walks every GET
// route of the API (from its route table, so a new route is walked too)
// and every page of the web UI while the pool is open, and finds no
// entrant's overall or private score, no private item, no private index;
// after settlement the private scores appear.
func TestNothingPrivateLeaksFromAnOpenPool(t *testing.T) {
	for _, d := range storetest.Databases(t) {
		t.Run(d.Name, func(t *testing.T) {
			h := startSealHub(t, d.URL)
			ctx := context.Background()
			if _, err := h.operator.Deposit(ctx, apiv1.DepositRequest{To: h.funderID, Amount: 1000, Asset: "USDC", IdempotencyKey: "wire"}); err != nil {
				t.Fatal(err)
			}
			now := h.clock.Now()
			p, err := h.funder.CreatePool(ctx, apiv1.CreatePoolRequest{Title: "sealed pool", Dataset: string(app.SampleDataset),
				Fund: 1000, Asset: "USDC", Allocation: "proportional", Start: now, End: now.Add(4 * time.Minute),
				BudgetPerHour: 100000, PrivateFraction: 0.5})
			if err != nil {
				t.Fatal(err)
			}
			id := p.CompetitionID
			var subs []competition.Submission
			for _, policy := range []string{"overlap", "first", "random"} {
				sub, err := h.competitor.JoinPool(ctx, id, apiv1.JoinPoolRequest{Name: policy, BaseURL: h.models, Model: "baseline-" + policy})
				if err != nil {
					t.Fatal(err)
				}
				subs = append(subs, sub)
			}
			// Two minutes allow 3,333 items: every entrant is evaluated in
			// full, and the clock stays within the signature window.
			h.clock.Advance(2 * time.Minute)
			if err := jobstest.Tick(t, h.app.Queue, h.app.Pools.TickAll, id); err != nil {
				t.Fatal(err)
			}

			leaks, private := h.privateNeedles(t, id, subs)
			bodies := h.walk(t, id, subs)
			t.Logf("searched %d responses for %d private-derived values", len(bodies), len(leaks))
			for _, b := range bodies {
				for _, n := range leaks {
					if loc := n.re.FindStringIndex(b.body); loc != nil {
						t.Errorf("GET %s (%d) shows %s before settlement: …%s…", b.path, b.code, n.what, excerpt(b.body, loc))
					}
				}
				if strings.Contains(b.path, "/results") {
					var page apiv1.ResultsPage
					_ = json.Unmarshal([]byte(b.body), &page)
					for _, r := range page.Results {
						if private[r.Index] {
							t.Errorf("GET %s lists private item %d", b.path, r.Index)
						}
					}
				}
			}

			h.clock.Set(p.End.Add(time.Second))
			if err := jobstest.Tick(t, h.app.Queue, h.app.Pools.TickAll, id); err != nil { // the final tick settles
				t.Fatal(err)
			}
			st, err := h.competitor.Pool(ctx, id)
			if err != nil || st.Pool.Settlement == nil {
				t.Fatalf("after the final tick the pool is %+v (%v); want settled", st.Pool, err)
			}
			after := h.walk(t, id, subs)
			for _, po := range st.Pool.Settlement.Payouts {
				inAPI, onWeb := fmt.Sprint(po.Score), fmt.Sprintf("%.3f", po.Score)
				if !anyContains(after, "/api/", inAPI) || !anyContains(after, "/c/", onWeb) {
					t.Errorf("after settlement %s's private score %s (%s) is not shown by the API and the pool page", po.Name, inAPI, onWeb)
				}
			}
		})
	}
}

// privateNeedles computes, from the stored results, each entrant's score
// over all items and over the private items (with their intervals), and
// the private items' texts and ids, as responses would print them. Values
// that print like a public number are left out: finding them proves nothing.
func (h *sealHub) privateNeedles(t *testing.T, id string, subs []competition.Submission) ([]needle, []bool) {
	t.Helper()
	ctx := context.Background()
	db := h.app.DB
	p, err := db.GetPool(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	c, err := db.GetCompetition(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	private := pool.NewSplit(c.Items, p.PrivateFraction, p.Seed).Private
	public := map[string]bool{}
	snap, err := db.SnapshotAt(ctx, id, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range printed(p.PrivateFraction) { // the pool page prints it
		public[s] = true
	}
	for _, r := range snap.Rows {
		for _, v := range []float64{r.Score, r.CILow, r.CIHigh} {
			for _, s := range printed(v) {
				public[s] = true
			}
		}
	}
	var out []needle
	add := func(what string, v float64) {
		for _, s := range printed(v) {
			if !public[s] && len(s) >= 4 && v != math.Trunc(v) {
				out = append(out, number(fmt.Sprintf("%s %s", what, s), s))
			}
		}
	}
	for _, sub := range subs {
		stored, err := db.GetSubmission(ctx, sub.ID)
		if err != nil || stored.ItemsDone != c.Items || stored.Card == nil {
			t.Fatalf("entrant %s: %d of %d items evaluated, card %v (%v); want it fully evaluated", sub.Name, stored.ItemsDone, c.Items, stored.Card, err)
		}
		results, err := db.Results(ctx, sub.ID, 0, c.Items)
		if err != nil {
			t.Fatal(err)
		}
		var side []float64
		correct := 0
		for _, r := range results {
			if private[r.Index] {
				side = append(side, r.Score)
				if r.Correct {
					correct++
				}
			}
		}
		priv := competition.NewCard(side, correct)
		add(sub.Name+"'s overall score", stored.Card.Score)
		add(sub.Name+"'s overall interval", stored.Card.CILow)
		add(sub.Name+"'s overall interval", stored.Card.CIHigh)
		add(sub.Name+"'s private score", priv.Score)
		add(sub.Name+"'s private interval", priv.CILow)
		add(sub.Name+"'s private interval", priv.CIHigh)
	}
	if len(out) < 2*len(subs) {
		t.Fatalf("only %d private-derived numbers print unlike the public ones; the walk would prove little", len(out))
	}
	items, err := db.CompetitionItems(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{} // the texts of public items, which may repeat in private ones
	parsed := make([]mcq.Item, len(items))
	for i, raw := range items {
		if err := json.Unmarshal(raw, &parsed[i]); err != nil {
			t.Fatal(err)
		}
		if !private[i] {
			shown[parsed[i].Context], shown[parsed[i].Question] = true, true
		}
	}
	texts := 0
	for i, it := range parsed {
		if !private[i] || shown[it.Context] || it.Context == "" {
			continue
		}
		what := fmt.Sprintf("private item %d", i)
		quoted, _ := json.Marshal(it.Context)
		out = append(out, text(what, html.EscapeString(it.Context)), text(what, string(quoted[1:len(quoted)-1])),
			number(what+"'s id", it.ID))
		texts++
	}
	if texts < 10 {
		t.Fatalf("only %d private items have a text of their own", texts)
	}
	return out, private
}

// response is one walked route's answer.
type response struct {
	path string
	code int
	body string
}

// walk GETs every API route (ids filled in with the pool's and its
// entrants', the results paged through) and every web page of the pool.
func (h *sealHub) walk(t *testing.T, id string, subs []competition.Submission) []response {
	t.Helper()
	ctx := context.Background()
	var paths []string
	for _, rt := range api.AllRoutes() {
		if rt.Method != http.MethodGet {
			continue
		}
		if rt.Signed {
			if !signedWalked[rt.Pattern] {
				t.Fatalf("the walk does not know how to sign GET %s: add it here", rt.Pattern)
			}
			continue // walked below, signed
		}
		n := h.epoch
		if n == "" {
			n = "0"
		}
		fill := strings.NewReplacer("{id}", id, "{task}", "t", "{n}", n)
		if strings.HasPrefix(rt.Pattern, "/api/v1/submissions/") {
			for _, sub := range subs {
				p := strings.Replace(rt.Pattern, "{id}", sub.ID, 1)
				paths = append(paths, p, p+"?limit=1000", p+"?offset=100&limit=1000")
			}
			continue
		}
		p := fill.Replace(rt.Pattern)
		paths = append(paths, p, p+"?account="+ledger.EscrowAccount(id))
	}
	paths = append(paths, "/", "/c/"+id, "/c/"+id+"/tasks", "/c/"+id+"/fresh/0", "/c/"+id+"/leaderboard.csv", "/epochs", "/epochs/"+id, "/epochs/"+id+"/weights.csv")
	for _, sub := range subs {
		paths = append(paths, "/s/"+sub.ID, "/s/"+sub.ID+"/progress")
		for page := 1; page <= 16; page++ {
			paths = append(paths, fmt.Sprintf("/s/%s?page=%d", sub.ID, page))
		}
	}
	times, err := h.app.DB.Snapshots(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range times {
		q := "?at=" + at.UTC().Format(time.RFC3339Nano)
		paths = append(paths, "/c/"+id+q, "/c/"+id+"/leaderboard.csv"+q)
	}
	var out []response
	for _, p := range paths {
		resp, err := http.Get(h.base + p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, response{p, resp.StatusCode, string(b)})
	}
	keys, err := h.operator.ContributorKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(keys)
	out = append(out, response{"/api/v1/contributor-keys", http.StatusOK, string(b)})
	// Preference labels are for staked validators; the competitor has no stake.
	labels, err := h.competitor.PreferenceLabels(ctx, id)
	b, _ = json.Marshal(labels)
	out = append(out, response{"/api/v1/consensus/competitions/" + id + "/labels", 0, string(b) + fmt.Sprint(err)})
	// Previews of open preference tasks are for the creator; the competitor
	// is not it.
	epoch, err := h.competitor.PreferenceEpoch(ctx, id, true)
	b, _ = json.Marshal(epoch)
	out = append(out, response{"/api/v1/competitions/" + id + "/preference/preview", 0, string(b) + fmt.Sprint(err)})
	var export strings.Builder
	err = h.competitor.ExportPreferences(ctx, &export, id, "rankings", "", true)
	out = append(out, response{"/api/v1/competitions/" + id + "/preference/preview/export", 0, export.String() + fmt.Sprint(err)})
	// So are the full tasks, bundles and patches of code-fix competitions.
	tasks, err := h.competitor.PatchTasks(ctx, id)
	b, _ = json.Marshal(tasks)
	out = append(out, response{"/api/v1/consensus/competitions/" + id + "/patch-tasks", 0, string(b) + fmt.Sprint(err)})
	bundle, err := h.competitor.PatchBundle(ctx, id, strings.Repeat("0", 64))
	out = append(out, response{"/api/v1/consensus/competitions/" + id + "/bundles/0", 0, string(bundle) + fmt.Sprint(err)})
	patches, err := h.competitor.PatchSubmissions(ctx, id)
	b, _ = json.Marshal(patches)
	return append(out, response{"/api/v1/consensus/competitions/" + id + "/patches", 0, string(b) + fmt.Sprint(err)})
}

// signedWalked are the signed GET routes the walk reads with a key.
var signedWalked = map[string]bool{
	"/api/v1/contributor-keys":                             true,
	"/api/v1/consensus/competitions/{id}/labels":           true,
	"/api/v1/consensus/competitions/{id}/patch-tasks":      true,
	"/api/v1/consensus/competitions/{id}/bundles/{digest}": true,
	"/api/v1/consensus/competitions/{id}/patches":          true,
	"/api/v1/competitions/{id}/preference/preview":         true,
	"/api/v1/competitions/{id}/preference/preview/export":  true,
}

func anyContains(rs []response, prefix, s string) bool {
	for _, r := range rs {
		if strings.HasPrefix(r.path, prefix) && strings.Contains(r.body, s) {
			return true
		}
	}
	return false
}

func excerpt(s string, loc []int) string {
	return s[max(0, loc[0]-60):min(len(s), loc[1]+20)]
}
