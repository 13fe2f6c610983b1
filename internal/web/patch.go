package web

// This file renders what code-fix (patch) competitions add: the task list
// competitors work from, and a patch submission's verdict.

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/kind"
)

// TaskStore gives the UI the items of a competition the public may see
// (seal.Public does: an open pool's private tasks are left out);
// without it a patch competition has no tasks page.
type TaskStore interface {
	CompetitionItems(ctx context.Context, competitionID string) ([]json.RawMessage, error)
}

// publicTask is the part of a stored code-fix task competitors may see.
// It has no field for the reference fix or the test patch, so neither can
// reach a page even by mistake.
type publicTask struct {
	InstanceID       string   `json:"instance_id"`
	ProblemStatement string   `json:"problem_statement"`
	Repo             string   `json:"repo"`
	BaseCommit       string   `json:"base_commit"`
	FailToPass       []string `json:"FAIL_TO_PASS"`
	PassToPass       []string `json:"PASS_TO_PASS"`
}

type tasksPage struct {
	Page
	Competition competition.Competition
	Tasks       []publicTask
}

// tasks serves /c/{id}/tasks: each task of a code-fix competition with its
// statement, repository, base commit, deciding tests and the commands that
// check it out and submit a fix. An open pool's private tasks are left out.
func (s *Server) tasks(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.cfg.Store.GetCompetition(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	ts, ok := s.cfg.Store.(TaskStore)
	if s.cfg.Kinds.Entry(c.Kind) != kind.EntryPatch || !ok {
		return notFound("%s is not a code-fix competition: it has no tasks to check out.", c.Title)
	}
	items, err := ts.CompetitionItems(ctx, c.ID)
	if err != nil {
		return err
	}
	data := tasksPage{Page: Page{Title: c.Title + " · tasks", APIPath: "/api/v1/competitions/" + c.ID + "/tasks"}, Competition: c}
	for _, raw := range items { // the store left out an open pool's private tasks
		var t publicTask
		if err := json.Unmarshal(raw, &t); err != nil {
			return err
		}
		data.Tasks = append(data.Tasks, t)
	}
	s.render(w, http.StatusOK, "tasks", data)
	return nil
}

// patchVerdict is the part of a code-fix result's Detail (the judge's
// Verdict) that a submission page shows.
type patchVerdict struct {
	Applied     bool   `json:"applied"`
	ApplyMethod string `json:"apply_method"`
	Reason      string `json:"reason"`
	Resolved    bool   `json:"resolved"`
	Tampered    bool   `json:"tampered"`
	// PolicyViolations are only counted here: Reason names the rules.
	PolicyViolations []json.RawMessage `json:"policy_violations"`
	FailToPass       map[string]string `json:"FAIL_TO_PASS"`
	PassToPass       map[string]string `json:"PASS_TO_PASS"`
	Log              []string          `json:"log"`
}

// testRow is one deciding test of a patch verdict.
type testRow struct {
	Group, Name, Status string
	// OK reports that the status is what the task expects (passing).
	OK bool
}

// patchView is a patch submission's verdict as the page shows it.
type patchView struct {
	Verdict string
	patchVerdict
	Tests []testRow
	// LogCut counts the log's earlier lines left out.
	LogCut int
}

// maxLogLines bounds the judge's log lines a page shows.
const maxLogLines = 500

// patchViewOf reads the verdict of a patch submission's one result, or nil
// when there is none yet (or it is sealed).
func patchViewOf(results []eval.Result) *patchView {
	if len(results) == 0 {
		return nil
	}
	var v patchVerdict
	if json.Unmarshal(results[0].Detail, &v) != nil || v.FailToPass == nil {
		return nil
	}
	view := &patchView{Verdict: "unresolved", patchVerdict: v}
	// The log holds the tests' output, which the patch controls: the page
	// keeps its last maxLogLines lines, each clipped.
	if n := len(view.Log); n > maxLogLines {
		view.LogCut, view.Log = n-maxLogLines, view.Log[n-maxLogLines:]
	}
	for i, l := range view.Log {
		view.Log[i] = clip(l)
	}
	switch {
	case v.Resolved:
		view.Verdict = "resolved"
	case v.Tampered:
		view.Verdict = "tampered"
	case len(v.PolicyViolations) > 0:
		view.Verdict = "refused by policy"
	case !v.Applied:
		view.Verdict = "not applied"
	}
	for _, g := range []struct {
		name string
		m    map[string]string
	}{{"FAIL_TO_PASS", v.FailToPass}, {"PASS_TO_PASS", v.PassToPass}} {
		names := make([]string, 0, len(g.m))
		for n := range g.m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			view.Tests = append(view.Tests, testRow{Group: g.name, Name: n, Status: g.m[n], OK: g.m[n] == "PASSED" || g.m[n] == "XFAIL"})
		}
	}
	return view
}
