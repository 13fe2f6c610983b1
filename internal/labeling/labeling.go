// Package labeling owns the human-preference workflow around the preference
// kind (internal/eval/preference): it stores a competition's canonical
// tasks, gives each miner its own obfuscated copy, manages the contributor
// keys miners hand to the people who label for them, records ratings
// de-obfuscated to canonical order (refusing them after the deadline, by
// the injected clock), scores an epoch with preference.Score under the
// competition's stored configuration, and exports the consensus.
//
// The REST API and the /label pages both call it. It must never import the
// API, the web UI or the job queue.
package labeling

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"crucible/internal/clock"
	"crucible/internal/competition"
	"crucible/internal/eval/kinds"
	"crucible/internal/eval/preference"
	"crucible/internal/store"
)

// KeyPrefix starts every contributor key, so a key pasted in the wrong
// place is recognisable.
const KeyPrefix = "cck_"

// secretName is the row of the validator secret in the database.
const secretName = "preference-copies"

// Errors a caller turns into messages for people.
var (
	// ErrBadKey means the contributor key is unknown or malformed.
	ErrBadKey = errors.New("contributor key not recognised")
	// ErrRevoked means the contributor key was revoked by its miner.
	ErrRevoked = errors.New("contributor key revoked")
	// ErrInvalid wraps a rating or request that does not fit the task.
	ErrInvalid = errors.New("invalid")
)

// LateError is returned for a rating submitted at or after its deadline.
type LateError struct {
	TaskID   string
	Deadline time.Time
	At       time.Time
}

func (e *LateError) Error() string {
	return fmt.Sprintf("the deadline of task %s passed at %s (submitted at %s); the rating was not recorded",
		e.TaskID, e.Deadline.UTC().Format("2006-01-02 15:04:05 MST"), e.At.UTC().Format("2006-01-02 15:04:05 MST"))
}

// Config configures a Service.
type Config struct {
	// DB stores tasks, copies, ratings and keys.
	DB *store.DB
	// Clock decides deadlines (default the wall clock).
	Clock clock.Clock
	// Secret keys the copies' shuffles. Empty: a random secret generated
	// once and kept in the database, so every process makes the same
	// copies. Each competition uses its own secret derived from it.
	Secret []byte
}

// Service runs the labeling workflow.
type Service struct {
	cfg Config
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil {
		return nil, errors.New("labeling: Config.DB is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	return &Service{cfg: cfg}, nil
}

// Now returns the service clock's time.
func (s *Service) Now() time.Time { return s.cfg.Clock.Now().UTC() }

// Competition returns a preference competition, its configuration and its
// canonical tasks, storing the tasks (with their deadlines) on first use.
func (s *Service) Competition(ctx context.Context, id string) (competition.Competition, kinds.PreferenceConfig, []preference.Task, error) {
	c, err := s.cfg.DB.GetCompetition(ctx, id)
	if err != nil {
		return c, kinds.PreferenceConfig{}, nil, err
	}
	cfg, err := kinds.PreferenceSettings(c)
	if err != nil {
		return c, cfg, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	stored, err := s.cfg.DB.PreferenceTasks(ctx, id)
	if err != nil {
		return c, cfg, nil, err
	}
	if len(stored) == 0 {
		if stored, err = s.materialise(ctx, c); err != nil {
			return c, cfg, nil, err
		}
	}
	tasks := make([]preference.Task, len(stored))
	for i, st := range stored {
		if err := json.Unmarshal(st.Task, &tasks[i]); err != nil {
			return c, cfg, nil, fmt.Errorf("competition %s task %s: %w", id, st.TaskID, err)
		}
	}
	return c, cfg, tasks, nil
}

// materialise stores a competition's items as its preference tasks.
func (s *Service) materialise(ctx context.Context, c competition.Competition) ([]store.PreferenceTask, error) {
	items, err := s.cfg.DB.CompetitionItems(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	tasks, err := kinds.PreferenceTasks(c, items)
	if err != nil {
		return nil, err
	}
	rows := make([]store.PreferenceTask, len(tasks))
	for i, t := range tasks {
		raw, err := json.Marshal(t)
		if err != nil {
			return nil, err
		}
		rows[i] = store.PreferenceTask{CompetitionID: c.ID, TaskID: t.ID, Index: i, Deadline: t.Deadline, Task: raw}
	}
	if err := s.cfg.DB.InsertPreferenceTasks(ctx, rows); err != nil {
		return nil, err
	}
	return s.cfg.DB.PreferenceTasks(ctx, c.ID)
}

// obfuscator returns the copy maker of one competition.
func (s *Service) obfuscator(ctx context.Context, competitionID string) (*preference.Obfuscator, error) {
	secret := s.cfg.Secret
	if len(secret) == 0 {
		stored, err := s.cfg.DB.PreferenceSecret(ctx, secretName, rand.Text)
		if err != nil {
			return nil, err
		}
		secret = []byte(stored)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("competition\x00" + competitionID))
	return preference.NewObfuscator(preference.ObfuscatorConfig{Secret: mac.Sum(nil)}), nil
}

// RequestCopies gives miner a copy of every open task of a preference
// competition (keeping copies it already has) and returns what the miner
// sees of them, earliest deadline first.
func (s *Service) RequestCopies(ctx context.Context, competitionID, miner string) ([]preference.View, error) {
	_, _, tasks, err := s.Competition(ctx, competitionID)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	obf, err := s.obfuscator(ctx, competitionID)
	if err != nil {
		return nil, err
	}
	views := []preference.View{}
	for _, t := range tasks {
		if !t.Open(now) {
			continue
		}
		c, err := s.copyFor(ctx, obf, competitionID, t, miner, now)
		if err != nil {
			return nil, err
		}
		views = append(views, c.View())
	}
	slices.SortStableFunc(views, func(a, b preference.View) int { return a.Deadline.Compare(b.Deadline) })
	return views, nil
}

// copyFor returns miner's stored copy of t, making and storing one that
// differs byte-wise from every other miner's copy when there is none.
func (s *Service) copyFor(ctx context.Context, obf *preference.Obfuscator, competitionID string, t preference.Task, miner string, now time.Time) (preference.Copy, error) {
	existing, err := s.cfg.DB.PreferenceCopies(ctx, competitionID, t.ID)
	if err != nil {
		return preference.Copy{}, err
	}
	miners := make([]string, 0, len(existing)+1)
	shown := map[string]bool{}
	for _, e := range existing {
		var c preference.Copy
		if err := json.Unmarshal(e.Copy, &c); err != nil {
			return c, fmt.Errorf("copy of task %s for %s: %w", t.ID, e.Miner, err)
		}
		if e.Miner == miner {
			return withShownID(c, obf), nil
		}
		miners = append(miners, e.Miner)
		shown[shownKey(c)] = true
	}
	copies, err := obf.Copies(t, append(miners, miner))
	if err != nil {
		return preference.Copy{}, err
	}
	c := copies[len(copies)-1]
	if shown[shownKey(c)] {
		return c, fmt.Errorf("copy of task %s for %s would equal another miner's; the validator secret changed", t.ID, miner)
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return c, err
	}
	if _, err := s.cfg.DB.InsertPreferenceCopy(ctx, store.PreferenceCopy{CompetitionID: competitionID, TaskID: t.ID, Miner: miner,
		Copy: raw, CreatedAt: now}); err != nil {
		return c, err
	}
	// A concurrent request may have stored the miner's copy first: use it.
	return s.storedCopy(ctx, competitionID, t.ID, miner)
}

func shownKey(c preference.Copy) string {
	var b strings.Builder
	for _, r := range c.Responses {
		b.WriteString(r.Text)
		b.WriteByte(0)
	}
	return b.String()
}

// Copy returns miner's stored copy of the task miner sees as shownID.
func (s *Service) Copy(ctx context.Context, competitionID, shownID, miner string) (preference.Copy, error) {
	taskID, err := s.resolve(ctx, competitionID, shownID, miner)
	if err != nil {
		return preference.Copy{}, err
	}
	return s.storedCopy(ctx, competitionID, taskID, miner)
}

// resolve returns the canonical id of the task miner sees as shownID;
// store.ErrNotFound when no task of the competition has that id for miner.
// Contributors only ever see shown ids, so that colluding miners cannot
// line up their copies by id.
func (s *Service) resolve(ctx context.Context, competitionID, shownID, miner string) (string, error) {
	tasks, err := s.cfg.DB.PreferenceTasks(ctx, competitionID)
	if err != nil {
		return "", err
	}
	obf, err := s.obfuscator(ctx, competitionID)
	if err != nil {
		return "", err
	}
	for _, t := range tasks {
		if obf.ShownID(t.TaskID, miner) == shownID {
			return t.TaskID, nil
		}
	}
	return "", fmt.Errorf("task %s of competition %s for %s: %w", shownID, competitionID, miner, store.ErrNotFound)
}

// withShownID fills in the shown id of a copy stored before copies had
// one, so that no copy is shown under its canonical id.
func withShownID(c preference.Copy, obf *preference.Obfuscator) preference.Copy {
	if c.ShownID == "" {
		c.ShownID = obf.ShownID(c.TaskID, c.Miner)
	}
	return c
}

// storedCopy returns miner's stored copy of canonical task taskID.
func (s *Service) storedCopy(ctx context.Context, competitionID, taskID, miner string) (preference.Copy, error) {
	var c preference.Copy
	st, err := s.cfg.DB.PreferenceCopy(ctx, competitionID, taskID, miner)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(st.Copy, &c); err != nil {
		return c, fmt.Errorf("copy of task %s for %s: %w", taskID, miner, err)
	}
	return c, nil
}

// NewKey is a freshly made contributor key: Secret is shown once and
// never stored.
type NewKey struct {
	store.ContributorKey
	Secret string `json:"key"`
}

// HashKey returns the stored form of a contributor key.
func HashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewContributorKey makes a key that labels for miner.
func (s *Service) NewContributorKey(ctx context.Context, miner, label string) (NewKey, error) {
	label = strings.TrimSpace(label)
	if len(label) > 100 {
		return NewKey{}, fmt.Errorf("%w: label is %d characters; at most 100", ErrInvalid, len(label))
	}
	secret := KeyPrefix + rand.Text()
	k := store.ContributorKey{ID: store.NewID("ck"), Miner: miner, Label: label, Hash: HashKey(secret), CreatedAt: s.Now()}
	if err := s.cfg.DB.CreateContributorKey(ctx, k); err != nil {
		return NewKey{}, err
	}
	return NewKey{ContributorKey: k, Secret: secret}, nil
}

// ContributorKeys lists miner's contributor keys.
func (s *Service) ContributorKeys(ctx context.Context, miner string) ([]store.ContributorKey, error) {
	return s.cfg.DB.ContributorKeys(ctx, miner)
}

// RevokeContributorKey revokes one of miner's keys.
func (s *Service) RevokeContributorKey(ctx context.Context, miner, id string) (store.ContributorKey, error) {
	return s.cfg.DB.RevokeContributorKey(ctx, miner, id, s.Now())
}

// Authenticate returns the live contributor key whose secret is given.
func (s *Service) Authenticate(ctx context.Context, secret string) (store.ContributorKey, error) {
	secret = strings.TrimSpace(secret)
	if !strings.HasPrefix(secret, KeyPrefix) {
		return store.ContributorKey{}, ErrBadKey
	}
	k, err := s.cfg.DB.ContributorKeyByHash(ctx, HashKey(secret))
	if errors.Is(err, store.ErrNotFound) {
		return k, ErrBadKey
	}
	if err != nil {
		return k, err
	}
	if k.Revoked() {
		return k, ErrRevoked
	}
	return k, nil
}

// Assignment is the next task a contributor should answer.
type Assignment struct {
	CompetitionID string          `json:"competition_id"`
	Title         string          `json:"title"`
	View          preference.View `json:"task"`
}

// Next returns the open, unrated task with the earliest deadline among the
// copies of the contributor's miner; store.ErrNotFound when there is none.
func (s *Service) Next(ctx context.Context, k store.ContributorKey) (Assignment, error) {
	st, err := s.cfg.DB.NextPreferenceCopy(ctx, k.Miner, s.Now())
	if err != nil {
		return Assignment{}, err
	}
	var c preference.Copy
	if err := json.Unmarshal(st.Copy, &c); err != nil {
		return Assignment{}, fmt.Errorf("copy of task %s: %w", st.TaskID, err)
	}
	comp, err := s.cfg.DB.GetCompetition(ctx, st.CompetitionID)
	if err != nil {
		return Assignment{}, err
	}
	obf, err := s.obfuscator(ctx, comp.ID)
	if err != nil {
		return Assignment{}, err
	}
	return Assignment{CompetitionID: comp.ID, Title: comp.Title, View: withShownID(c, obf).View()}, nil
}

// Submit records a contributor's answer on its miner's copy of the task it
// sees as shownID: values[i] is the rank (1 = best) or score of shown
// response i. It is stored in canonical order under the canonical task id;
// the returned rating names the shown id. A rating at or after the
// deadline is a *LateError.
func (s *Service) Submit(ctx context.Context, k store.ContributorKey, competitionID, shownID string, values []int) (store.PreferenceRating, error) {
	return s.submit(ctx, k.ID, k.Miner, competitionID, shownID, func(c preference.Copy) ([]int, error) {
		return preference.Deobfuscate(c, values)
	})
}

// SubmitOrder records a ranking given as shown response ids, best first
// (what a miner's own client sends through the API).
func (s *Service) SubmitOrder(ctx context.Context, contributor, miner, competitionID, shownID string, order []string) (store.PreferenceRating, error) {
	return s.submit(ctx, contributor, miner, competitionID, shownID, func(c preference.Copy) ([]int, error) {
		return preference.DeobfuscateIDs(c, order)
	})
}

func (s *Service) submit(ctx context.Context, contributor, miner, competitionID, shownID string, canonical func(preference.Copy) ([]int, error)) (store.PreferenceRating, error) {
	now := s.Now()
	taskID, err := s.resolve(ctx, competitionID, shownID, miner)
	if err != nil {
		return store.PreferenceRating{}, err
	}
	t, err := s.cfg.DB.PreferenceTask(ctx, competitionID, taskID)
	if err != nil {
		return store.PreferenceRating{}, err
	}
	if !now.Before(t.Deadline) {
		return store.PreferenceRating{}, &LateError{TaskID: shownID, Deadline: t.Deadline, At: now}
	}
	c, err := s.storedCopy(ctx, competitionID, taskID, miner)
	if err != nil {
		return store.PreferenceRating{}, err
	}
	values, err := canonical(c)
	if err != nil {
		return store.PreferenceRating{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	r := store.PreferenceRating{CompetitionID: competitionID, TaskID: taskID, Miner: miner, Contributor: contributor,
		Values: values, SubmittedAt: now}
	if err := s.cfg.DB.InsertPreferenceRating(ctx, r); err != nil {
		return r, err
	}
	// The contributor gets the rating under the id it knows.
	r.TaskID = shownID
	return r, nil
}

// EpochReport is a scored epoch of a preference competition.
type EpochReport struct {
	CompetitionID string    `json:"competition_id"`
	At            time.Time `json:"at"`
	// Closed counts the tasks whose deadline passed; Open the others.
	Closed int `json:"closed"`
	Open   int `json:"open"`
	// Preview is true when open tasks were scored too.
	Preview bool `json:"preview,omitempty"`
	// Rules is the scoring configuration's description.
	Rules string           `json:"rules"`
	Epoch preference.Epoch `json:"epoch"`
}

// Score scores the competition's epoch: every task whose deadline has
// passed, or every task when preview is set, with every in-time rating.
func (s *Service) Score(ctx context.Context, competitionID string, preview bool) (EpochReport, []preference.Task, error) {
	_, cfg, tasks, err := s.Competition(ctx, competitionID)
	if err != nil {
		return EpochReport{}, nil, err
	}
	now := s.Now()
	rep := EpochReport{CompetitionID: competitionID, At: now, Preview: preview, Rules: cfg.Scoring.Describe()}
	var scored []preference.Task
	in := map[string]bool{}
	for _, t := range tasks {
		if t.Open(now) {
			rep.Open++
			if !preview {
				continue
			}
		} else {
			rep.Closed++
		}
		scored = append(scored, t)
		in[t.ID] = true
	}
	stored, err := s.cfg.DB.PreferenceRatings(ctx, competitionID)
	if err != nil {
		return rep, nil, err
	}
	var ratings []preference.Rating
	for _, r := range stored {
		if in[r.TaskID] {
			ratings = append(ratings, preference.Rating{Miner: r.Miner, TaskID: r.TaskID, Values: r.Values, Submitted: r.SubmittedAt})
		}
	}
	if rep.Epoch, err = preference.Score(cfg.Scoring, scored, ratings); err != nil {
		return rep, nil, err
	}
	return rep, scored, nil
}

// Export writes the consensus of the competition's scored epoch (see
// Score) to w: DPO pairs or full rankings as JSONL, or CSV.
func (s *Service) Export(ctx context.Context, w io.Writer, competitionID, format string, pairs preference.PairMode, preview bool) error {
	switch format {
	case preference.FormatDPO, preference.FormatRankings, preference.FormatCSV:
	default:
		return fmt.Errorf("%w: format %q: want dpo, rankings or csv", ErrInvalid, format)
	}
	switch pairs {
	case "", preference.AllPairs, preference.AdjacentPairs:
	default:
		return fmt.Errorf("%w: pairs %q: want all or adjacent", ErrInvalid, pairs)
	}
	rep, tasks, err := s.Score(ctx, competitionID, preview)
	if err != nil {
		return err
	}
	switch format {
	case preference.FormatDPO:
		out, err := preference.ExportDPO(tasks, rep.Epoch.Tasks, pairs)
		if err != nil {
			return err
		}
		return preference.WriteJSONL(w, out)
	case preference.FormatRankings:
		out, err := preference.ExportRankings(tasks, rep.Epoch.Tasks)
		if err != nil {
			return err
		}
		return preference.WriteJSONL(w, out)
	default:
		return preference.WriteCSV(w, tasks, rep.Epoch.Tasks)
	}
}
