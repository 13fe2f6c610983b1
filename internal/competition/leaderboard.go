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
}

// Entry is a scored entrant to rank.
type Entry struct {
	SubmissionID string
	Name         string
	CommittedAt  time.Time
	Card         Card
}

// Leaderboard ranks the scored submissions (see Rank).
func Leaderboard(subs []Submission) []Row {
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
