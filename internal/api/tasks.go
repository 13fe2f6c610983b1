package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"crucible/internal/competition"
	"crucible/internal/eval/patch"
	"crucible/internal/kind"
)

// competitionTasks returns the public view of a code-fix competition's
// tasks, leaving out the private items of an open pool.
func (s *Server) competitionTasks(ctx context.Context, id string) ([]patch.Task, competition.Competition, error) {
	c, err := s.cfg.DB.GetCompetition(ctx, id)
	if err != nil {
		return nil, c, err
	}
	if s.cfg.Kinds.Entry(c.Kind) != kind.EntryPatch {
		return nil, c, badRequest("%s is a %s competition; only code-fix (patch) competitions have tasks", c.ID, c.Kind)
	}
	items, err := s.pub.CompetitionItems(ctx, c.ID) // without an open pool's private tasks
	if err != nil {
		return nil, c, err
	}
	var tasks []patch.Task
	for _, raw := range items {
		var t patch.Task
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, c, err
		}
		tasks = append(tasks, t)
	}
	return tasks, c, nil
}

// listTasks serves GET /api/v1/competitions/{id}/tasks: each task's
// statement, repository, base commit and test names, never its reference
// fix or test patch.
func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) error {
	tasks, c, err := s.competitionTasks(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	out := make([]patch.PublicTask, len(tasks))
	for i, t := range tasks {
		out[i] = t.Public(c.CreatedAt)
	}
	return writeJSON(w, http.StatusOK, out)
}

// taskTree serves GET /api/v1/competitions/{id}/tasks/{task}/tree: a
// tar.gz of the task's base tree with no history (crucible patch checkout).
func (s *Server) taskTree(w http.ResponseWriter, r *http.Request) error {
	tasks, c, err := s.competitionTasks(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	name := r.PathValue("task")
	for _, t := range tasks {
		if t.InstanceID != name {
			continue
		}
		b, err := s.cfg.Repos.Tree(r.Context(), t.Repo, t.BaseCommit)
		if err != nil {
			return fmt.Errorf("task %s tree: %w", name, err)
		}
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Disposition", "attachment; filename="+strconv.Quote(name+".tar.gz"))
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b) // the client went away: nothing left to tell it
		return nil
	}
	return &httpError{http.StatusNotFound, fmt.Sprintf("no task %q in competition %s", name, c.ID)}
}

// listPrompts serves GET /api/v1/competitions/{id}/prompts: the prompt of
// every item of a competition that takes predictions files, by doc_id,
// never its target.
func (s *Server) listPrompts(w http.ResponseWriter, r *http.Request) error {
	c, err := s.cfg.DB.GetCompetition(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if s.cfg.Kinds.EntryOf(c) != kind.EntryPredictions {
		_, err := s.cfg.Kinds.Prompts(c, nil)
		return badRequest("%v", err)
	}
	items, err := s.pub.CompetitionItems(r.Context(), c.ID)
	if err != nil {
		return err
	}
	if len(items) != c.Items {
		// An open pool hides some items: the rest would get wrong doc_ids.
		return &httpError{http.StatusConflict, fmt.Sprintf("%s hides some of its items while its pool is open: its prompts are not shown", c.ID)}
	}
	prompts, err := s.cfg.Kinds.Prompts(c, items)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, prompts)
}
