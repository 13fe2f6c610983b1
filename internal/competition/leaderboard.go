package competition

import (
	"sort"
	"time"

	"crucible/internal/stats"
)

// Bootstrap settings for score intervals. The seed is fixed so that the server
// and a competitor's local `crucible eval` print the same interval for the
// same per-item scores.
const (
	bootstrapResamples = 2000
	bootstrapLevel     = 0.95
	bootstrapSeed      = 20191
)

// Card is a finished submission's score with its 95% bootstrap interval.
type Card struct {
	Score   float64 `json:"score"`
	CILow   float64 `json:"ci_low"`
	CIHigh  float64 `json:"ci_high"`
	Items   int     `json:"items"`
	Correct int     `json:"correct"`
	// Served says where an artifact submission's model was served: the
	// launcher and the evaluating machine (absent for other submissions).
	Served *Served `json:"served,omitempty"`
}

// Served is where a worker served an artifact submission's model: the
// launcher's program and version and a summary of the hardware.
type Served struct {
	Launcher string   `json:"launcher"`
	Version  string   `json:"version,omitempty"`
	CPU      string   `json:"cpu,omitempty"`
	Cores    int      `json:"cores"`
	GPUs     []string `json:"gpus,omitempty"`
}

// NewCard scores per-item values (in item order) with a percentile bootstrap
// interval of the mean.
func NewCard(itemScores []float64, correct int) Card {
	low, high := stats.BootstrapMeanCI(itemScores, bootstrapResamples, bootstrapLevel, bootstrapSeed)
	return Card{Score: stats.Mean(itemScores), CILow: low, CIHigh: high, Items: len(itemScores), Correct: correct}
}

// Row is one leaderboard line.
type Row struct {
	Rank         int       `json:"rank"`
	SubmissionID string    `json:"submission_id"`
	Name         string    `json:"name"`
	Score        float64   `json:"score"`
	CILow        float64   `json:"ci_low"`
	CIHigh       float64   `json:"ci_high"`
	Items        int       `json:"items"`
	Correct      int       `json:"correct"`
	Tie          bool      `json:"tie"`
	CommittedAt  time.Time `json:"committed_at"`
	// Submitter and ResolvedRate are set on a code-fix competition's rows,
	// one per submitter (see PatchLeaderboard); Items is then the task
	// count and Correct the tasks resolved.
	Submitter    string   `json:"submitter,omitempty"`
	ResolvedRate *float64 `json:"resolved_rate,omitempty"`
	// CopyOf is set on an entrant (of a pool or a model competition) whose
	// raw responses copy an earlier entrant's: the id of that entrant (see
	// MarkCopies). A copy ranks but earns nothing.
	CopyOf string `json:"copy_of,omitempty"`
}

// Entry is a scored entrant to rank.
type Entry struct {
	SubmissionID string
	Name         string
	CommittedAt  time.Time
	Card         Card
}

// Leaderboard ranks the scored submissions of c, one row each (see Rank):
// the default of kind.Registry.Leaderboard, which a kind may replace (a
// code-fix competition ranks its submitters, see PatchLeaderboard).
func Leaderboard(c Competition, subs []Submission) []Row {
	var entries []Entry
	for _, s := range subs {
		if s.State == StateScored && s.Card != nil {
			entries = append(entries, Entry{SubmissionID: s.ID, Name: s.Name, CommittedAt: s.CommittedAt, Card: *s.Card})
		}
	}
	return Rank(entries)
}

// Rank orders entries by score, earlier commit first on equal scores. A row
// whose interval overlaps the leader's is marked as a tie (the leader itself
// too, when anyone ties it): the data cannot tell them apart.
func Rank(entries []Entry) []Row {
	rows := []Row{}
	for _, e := range entries {
		rows = append(rows, Row{
			SubmissionID: e.SubmissionID, Name: e.Name, Score: e.Card.Score, CILow: e.Card.CILow, CIHigh: e.Card.CIHigh,
			Items: e.Card.Items, Correct: e.Card.Correct, CommittedAt: e.CommittedAt,
		})
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Score != rows[j].Score {
			return rows[i].Score > rows[j].Score
		}
		return rows[i].CommittedAt.Before(rows[j].CommittedAt)
	})
	for i := range rows {
		rows[i].Rank = i + 1
		if i > 0 && rows[i].CILow <= rows[0].CIHigh && rows[0].CILow <= rows[i].CIHigh {
			rows[i].Tie = true
			rows[0].Tie = true
		}
	}
	return rows
}

// PatchLeaderboard ranks the submitters of a code-fix competition of
// tasks tasks as SWE-bench reports a system: each task counts once, by the
// submitter's best scored submission for it (the earlier on equal
// scores); ResolvedRate is resolved tasks over all tasks and Score the mean
// best score over all tasks (0 for a task not attempted), with its
// bootstrap interval. A row's time is when its latest counted submission
// was committed, so of two equal records the earlier complete one leads.
func PatchLeaderboard(subs []Submission, tasks int) []Row {
	best := map[string]map[string]Submission{} // submitter → task → best
	for _, s := range subs {
		if s.State != StateScored || s.Card == nil || s.Patch == nil {
			continue
		}
		byTask := best[s.Submitter]
		if byTask == nil {
			byTask = map[string]Submission{}
			best[s.Submitter] = byTask
		}
		old, ok := byTask[s.Patch.Task]
		if !ok || s.Card.Score > old.Card.Score || s.Card.Score == old.Card.Score && s.CommittedAt.Before(old.CommittedAt) {
			byTask[s.Patch.Task] = s
		}
	}
	var entries []Entry
	rates := map[string]float64{}
	for submitter, byTask := range best {
		names := make([]string, 0, len(byTask))
		for task := range byTask {
			names = append(names, task)
		}
		sort.Strings(names)
		scores := make([]float64, max(tasks, len(names)))
		resolved := 0
		var last time.Time
		for i, task := range names {
			s := byTask[task]
			scores[i] = s.Card.Score
			resolved += s.Card.Correct
			if s.CommittedAt.After(last) {
				last = s.CommittedAt
			}
		}
		rates[submitter] = float64(resolved) / float64(len(scores))
		entries = append(entries, Entry{SubmissionID: submitter, Name: ShortKey(submitter), CommittedAt: last, Card: NewCard(scores, resolved)})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].SubmissionID < entries[j].SubmissionID })
	rows := Rank(entries)
	for i := range rows {
		rate := rates[rows[i].SubmissionID]
		rows[i].Submitter, rows[i].SubmissionID, rows[i].ResolvedRate = rows[i].SubmissionID, "", &rate
	}
	return rows
}

// ShortKey abbreviates a key id for display.
func ShortKey(id string) string {
	if len(id) > 14 {
		return id[:14] + "…"
	}
	return id
}
