package web_test

import (
	"context"
	"crucible/internal/eval/preference"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/eval/kinds"
	"crucible/internal/labeling"
	"crucible/internal/seal"
	"crucible/internal/store"
	"crucible/internal/web"
)

// labelTasks are two organic tasks: one to rank, one to score.
const labelTasks = `{"id":"rank-me","instruction":"Explain what a hash map is in one paragraph.","responses":["A hash map stores key/value pairs in buckets chosen by hashing the key, so lookups take constant time on average.","A hash map is a map.","It is a kind of list that you search from the start every time."]}
{"id":"score-me","instruction":"Name a prime number greater than 10.","responses":["11","12","13 is prime."],"criteria":"score"}
`

// labelFixture is a store with one organic preference competition whose
// copies miner "ed25519:miner" holds, a contributor key for that miner,
// and the /label pages served on a test server.
type labelFixture struct {
	db     *store.DB
	svc    *labeling.Service
	clk    *clock.Fake
	comp   competition.Competition
	key    string
	keyID  string
	server *httptest.Server
	// shown maps a canonical task id to the id the miner is shown.
	shown map[string]string
}

const labelMiner = "ed25519:miner"

func newLabelFixture(t *testing.T) labelFixture {
	t.Helper()
	ctx := context.Background()
	db := newStore(t)
	prep, err := kinds.PreparePreference(ctx, kinds.CompetitionSpec{Kind: preference.Name, Title: "Helpful answers",
		DatasetName: "organic", Dataset: []byte(labelTasks)}, kinds.PreferenceSpec{TTL: "2h"})
	if err != nil {
		t.Fatal(err)
	}
	c := competition.Competition{ID: "c-prefs", Kind: preference.Name, Title: "Helpful answers", Config: prep.Config,
		DatasetName: "organic", DatasetDigest: prep.DatasetDigest, Items: len(prep.Items), CreatedBy: "ed25519:validator", CreatedAt: t0}
	if err := db.CreateCompetition(ctx, c, prep.Items); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(t0.Add(time.Minute))
	svc, err := labeling.New(labeling.Config{DB: db, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	views, err := svc.RequestCopies(ctx, c.ID, labelMiner)
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]string{}
	for _, v := range views {
		if strings.HasPrefix(v.Instruction, "Explain what a hash map") {
			shown["rank-me"] = v.TaskID
		} else {
			shown["score-me"] = v.TaskID
		}
	}
	nk, err := svc.NewContributorKey(ctx, labelMiner, "Ada")
	if err != nil {
		t.Fatal(err)
	}
	pages, err := web.NewLabel(web.LabelConfig{Labeling: svc})
	if err != nil {
		t.Fatal(err)
	}
	ui, err := web.New(web.Config{Store: seal.Public{DB: db}, Kinds: builtinKinds(t)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", ui)
	mux.Handle("/label", pages)
	mux.Handle("/label/", pages)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return labelFixture{db: db, svc: svc, clk: clk, comp: c, key: nk.Secret, keyID: nk.ID, server: srv, shown: shown}
}

// browserless returns an HTTP client with a cookie jar that does not
// follow redirects, like a form-only browser without JavaScript.
func browserless(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (int, string, *http.Response) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

func getPage(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var rankSelect = regexp.MustCompile(`name="rank_([^"]+)"`)

func TestLabelPagesWithoutJavaScript(t *testing.T) {
	f := newLabelFixture(t)
	c := browserless(t)
	base := f.server.URL

	t.Run("the page asks for a key first", func(t *testing.T) {
		code, body := getPage(t, c, base+"/label")
		if code != http.StatusOK || !strings.Contains(body, `action="/label/login"`) || strings.Contains(body, "label-form") {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("a wrong key is refused with a reason", func(t *testing.T) {
		code, body, _ := post(t, c, base+"/label/login", url.Values{"key": {"cck_wrong"}})
		if code != http.StatusUnauthorized || !strings.Contains(body, "not recognised") {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("the key is kept in an HttpOnly cookie", func(t *testing.T) {
		code, _, resp := post(t, c, base+"/label/login", url.Values{"key": {f.key}})
		if code != http.StatusSeeOther {
			t.Fatalf("login: %d", code)
		}
		set := resp.Header.Get("Set-Cookie")
		if !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Strict") || !strings.Contains(set, "Path=/label") {
			t.Fatalf("cookie %q", set)
		}
	})

	var order []string
	t.Run("the next task is the miner's copy with rank selects", func(t *testing.T) {
		code, body := getPage(t, c, base+"/label")
		if code != http.StatusOK || !strings.Contains(body, `data-testid="task-id">`+f.shown["rank-me"]+`<`) || !strings.Contains(body, "Ada") {
			t.Fatalf("%d %s", code, body)
		}
		if strings.Contains(body, "rank-me") || strings.Contains(body, "score-me") {
			t.Fatalf("the page shows a canonical task id: %s", body)
		}
		for _, m := range rankSelect.FindAllStringSubmatch(body, -1) {
			order = append(order, m[1])
		}
		if len(order) != 3 {
			t.Fatalf("%d rank selects, want 3", len(order))
		}
	})
	form := func(ranks ...int) url.Values {
		v := url.Values{"competition": {f.comp.ID}, "task": {f.shown["rank-me"]}}
		for i, id := range order {
			v.Set("rank_"+id, string(rune('0'+ranks[i])))
		}
		return v
	}
	t.Run("a rank used twice is refused and nothing is stored", func(t *testing.T) {
		code, body, _ := post(t, c, base+"/label/submit", form(1, 1, 2))
		if code != http.StatusBadRequest || !strings.Contains(body, "exactly once") {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("a ranking is stored de-obfuscated", func(t *testing.T) {
		// Rank the shown responses in reverse: the last shown is best.
		code, _, resp := post(t, c, base+"/label/submit", form(3, 2, 1))
		if code != http.StatusSeeOther || resp.Header.Get("Location") != "/label?done="+f.shown["rank-me"] {
			t.Fatalf("submit: %d %s", code, resp.Header.Get("Location"))
		}
		cp, err := f.svc.Copy(context.Background(), f.comp.ID, f.shown["rank-me"], labelMiner)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]int, 3)
		for shown, canon := range cp.Perm {
			want[canon] = 3 - shown
		}
		ratings, err := f.db.PreferenceRatings(context.Background(), f.comp.ID)
		if err != nil || len(ratings) != 1 {
			t.Fatalf("ratings %+v %v", ratings, err)
		}
		if !slices.Equal(ratings[0].Values, want) || ratings[0].Contributor != f.keyID || ratings[0].Miner != labelMiner {
			t.Fatalf("stored %+v, want canonical values %v by %s", ratings[0], want, f.keyID)
		}
	})
	t.Run("after a submission the scoring task comes next with sliders", func(t *testing.T) {
		code, body := getPage(t, c, base+"/label?done="+f.shown["rank-me"])
		if code != http.StatusOK || !strings.Contains(body, "was recorded") || !strings.Contains(body, `type="range"`) ||
			!strings.Contains(body, `data-testid="task-id">`+f.shown["score-me"]+`<`) {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("a late submission is refused with the deadline", func(t *testing.T) {
		f.clk.Set(t0.Add(2 * time.Hour))
		cp, err := f.svc.Copy(context.Background(), f.comp.ID, f.shown["score-me"], labelMiner)
		if err != nil {
			t.Fatal(err)
		}
		v := url.Values{"competition": {f.comp.ID}, "task": {f.shown["score-me"]}}
		for _, r := range cp.Responses {
			v.Set("score_"+r.ID, "7")
		}
		code, body, _ := post(t, c, base+"/label/submit", v)
		if code != http.StatusConflict || !strings.Contains(body, "Too late") || !strings.Contains(body, "not recorded") {
			t.Fatalf("%d %s", code, body)
		}
		if ratings, _ := f.db.PreferenceRatings(context.Background(), f.comp.ID); len(ratings) != 1 {
			t.Fatalf("%d ratings stored, want only the first", len(ratings))
		}
		if !strings.Contains(body, `data-testid="empty"`) {
			t.Fatal("after every deadline the page should say there is no open task")
		}
	})
	t.Run("a revoked key is logged out", func(t *testing.T) {
		if _, err := f.svc.RevokeContributorKey(context.Background(), labelMiner, f.keyID); err != nil {
			t.Fatal(err)
		}
		code, body := getPage(t, c, base+"/label")
		if code != http.StatusOK || !strings.Contains(body, "revoked") || !strings.Contains(body, `action="/label/login"`) {
			t.Fatalf("%d %s", code, body)
		}
	})
}
