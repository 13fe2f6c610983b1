package web

import (
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
)

// Page is what the layout needs from every page.
type Page struct {
	// Title is the page's heading and the start of its <title>.
	Title string
	// APIPath, when set, is the JSON version of the page, linked in the footer.
	APIPath string
}

type homePage struct {
	Page
	Competitions []compSummary
}

type competitionPage struct {
	Page
	Competition competition.Competition
	Summary     compSummary
	Rules       []rule
	Board       board
	// BarTicks label the interval bars' shared 0..1 scale.
	BarTicks []tick
	// AnyTie is set when some row is marked as a tie.
	AnyTie      bool
	Chart       chart
	Submissions []subRow
	// Reward is a preference competition's reward and payouts (nil: none).
	Reward *prefReward
	// Standings are a preference competition's contributors (nil: none).
	Standings *prefStandings
	// Labeled: the competition's work is labeling at /label, not entries.
	Labeled bool
	// WinRates is the pairwise win-rate matrix of a kind with epochs.
	WinRates *winMatrix
	// Fresh is set for a roleplay competition with fresh epoch items.
	Fresh *freshSection
}

type submissionPage struct {
	Page
	Competition competition.Competition
	Submission  competition.Submission
	Progress    progressView
	Pager       pager
	Results     []eval.Result
	// Patch is a code-fix submission's verdict (nil otherwise or not yet).
	Patch *patchView
	// Diff is a patch's diff by line, when the seal shows it; DiffMore
	// counts the lines left out.
	Diff     []diffLine
	DiffMore int
	// Items are the results as their kind shows them (nil: generic rows).
	Items []itemView
}

type errorPage struct {
	Page
	Code    int
	Message string
}

// progressView is the live fragment of a submission page.
type progressView struct {
	Submission   competition.Submission
	Poll         bool
	PollInterval string
	// JustFinished is set on a fragment that found the submission final,
	// so the page that was polling links to its full results.
	JustFinished bool
	// CountsCorrect: the card's count of correct items means something.
	CountsCorrect bool
}

// rule is one line of a competition's configuration.
type rule struct {
	Label, Value, Note string
	// Block shows Value as preformatted text (a template).
	Block bool
}

// compSummary is one competition as listed on the home page.
type compSummary struct {
	competition.Competition
	Submissions int
	Entrants    int
	// States counts submissions per state, in state order.
	States []stateCount
	Leader string
	// LeaderScore is the leader's score, valid when Leader is set.
	LeaderScore float64
}

type stateCount struct {
	State competition.State
	N     int
}

var stateOrder = []competition.State{
	competition.StateScored, competition.StateRunning, competition.StateQueued,
	competition.StateFailed, competition.StateInfraFailed,
}

func (srv *Server) summarize(c competition.Competition, subs []competition.Submission) compSummary {
	s := compSummary{Competition: c, Submissions: len(subs)}
	submitters := map[string]bool{}
	counts := map[competition.State]int{}
	for _, sub := range subs {
		submitters[sub.Submitter] = true
		counts[sub.State]++
	}
	s.Entrants = len(submitters)
	for _, st := range stateOrder {
		if counts[st] > 0 {
			s.States = append(s.States, stateCount{st, counts[st]})
		}
	}
	if rows := srv.cfg.Kinds.Leaderboard(c, subs); len(rows) > 0 {
		s.Leader, s.LeaderScore = rows[0].Name, rows[0].Score
	}
	return s
}

// subRow is one submission in a competition's list of all submissions.
type subRow struct {
	competition.Submission
	Percent float64
}

func submissionRow(s competition.Submission) subRow {
	return subRow{Submission: s, Percent: percent(s.ItemsDone, s.ItemsTotal)}
}

func percent(done, total int) float64 {
	if total <= 0 {
		return 0
	}
	return 100 * float64(done) / float64(total)
}

// pager is the position in a paged list of item results.
type pager struct {
	Page, Pages int
	// First and Last are the 1-based item numbers shown, Total the items done.
	First, Last, Total int
}

// newPager clamps page into [1, pages] for total items of size per page.
func newPager(page, total, size int) pager {
	pages := max(1, (total+size-1)/size)
	page = min(max(page, 1), pages)
	p := pager{Page: page, Pages: pages, Total: total}
	if total > 0 {
		p.First = (page-1)*size + 1
		p.Last = min(page*size, total)
	}
	return p
}

// Prev and Next are the neighbouring page numbers, 0 when there is none.
func (p pager) Prev() int {
	if p.Page > 1 {
		return p.Page - 1
	}
	return 0
}

// Next is the next page number, 0 on the last page.
func (p pager) Next() int {
	if p.Page < p.Pages {
		return p.Page + 1
	}
	return 0
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"score":   func(v float64) string { return fmt.Sprintf("%.3f", v) },
	"pct":     func(v float64) string { return fmt.Sprintf("%.0f%%", v) },
	"short":   shortDigest,
	"stateOf": stateLabel,
	"percent": percent,
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
	// Pool and epoch pages.
	"units": formatUnits,
	"count": func(n int) string { return formatUnits(int64(n)) },
	"dur":   formatDuration,
	"frac":  func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) },
	// Chart coordinates.
	"add": func(a, b float64) float64 { return a + b },
	"sub": func(a, b float64) float64 { return a - b },
	"firstLine": func(s string, n int) string {
		s = strings.Join(strings.Fields(s), " ")
		if r := []rune(s); len(r) > n {
			return string(r[:n]) + "…"
		}
		return s
	},
}

func shortDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// stateLabel is a state as people read it.
func stateLabel(s competition.State) string {
	switch s {
	case competition.StateInfraFailed:
		return "infrastructure failure"
	case "":
		return "unknown"
	}
	return string(s)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// competitionBoard is the leaderboard of a competition that is not a pool,
// in the order r asks for: the rows Config.Leaderboards ranks, with the
// kind's components.
func (s *Server) competitionBoard(r *http.Request, c competition.Competition, subs []competition.Submission) (board, error) {
	ctx := r.Context()
	rows, err := s.cfg.Leaderboards.LeaderboardRows(ctx, c)
	if err != nil {
		return board{}, err
	}
	b := s.newBoard(r, c, rows, subs)
	b.Committed = true
	if err := s.withComponents(ctx, c, &b); err != nil {
		return board{}, err
	}
	return b, sortBoard(&b, r.URL.Query())
}

// leaderboardCSV serves the leaderboard of /c/{id} as CSV: the same rows,
// sealed the same way (a pool's is its public snapshot at ?at=), in the
// same order.
func (s *Server) leaderboardCSV(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.cfg.Store.GetCompetition(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	subs, err := s.cfg.Store.ListSubmissions(ctx, c.ID)
	if err != nil {
		return err
	}
	var b board
	if p, isPool, err := s.lookupPool(ctx, c.ID); err != nil {
		return err
	} else if isPool {
		pb, err := s.poolBoard(r, c, p, subs)
		if err != nil {
			return err
		}
		b = pb.Board
	} else if b, err = s.competitionBoard(r, c, subs); err != nil {
		return err
	}
	return writeBoardCSV(w, c.ID, b)
}
