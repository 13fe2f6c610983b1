// Package competition owns the domain rules of competitions and submissions:
// their fields, the submission state machine, commit digests, score cards and
// leaderboard ranking. It is pure logic: it must never import the store, the
// job queue, HTTP or anything else that does I/O.
package competition

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind names a competition kind: a name the kind registry (internal/kind)
// validates and answers every kind-specific question for. The domain rules
// here never branch on it.
type Kind string

// Competition is a benchmark that submissions are evaluated on.
type Competition struct {
	ID            string          `json:"id"`
	Kind          Kind            `json:"kind"`
	Title         string          `json:"title"`
	Config        json.RawMessage `json:"config"`
	DatasetName   string          `json:"dataset_name"`
	DatasetDigest string          `json:"dataset_digest"`
	Items         int             `json:"items"`
	CreatedBy     string          `json:"created_by"`
	CreatedAt     time.Time       `json:"created_at"`
}

// TaskSource is a task competition's lm-eval task as its request names it
// and its configuration stores it: a shipped preset (Preset), or a task
// file's text (YAML, File naming it in messages), with the number of
// few-shot examples (nil in a request: the task's num_fewshot). The hub
// reads no files, so a task file's rows come with the request as its
// dataset. Entries says what competitors enter: models, predictions files
// (a generate_until task; the competition's targets stay hidden) or
// artifacts.
type TaskSource struct {
	Preset     string `json:"preset,omitempty" input:"max=64"`
	File       string `json:"file,omitempty" input:"max=256"`
	YAML       string `json:"yaml,omitempty" input:"text,max=1MiB"`
	NumFewshot *int   `json:"num_fewshot,omitempty"`
	Entries
}

// Entries is the part of a model competition's configuration (task, mcq,
// roleplay) that says what its competitors submit, stored at the top level
// of the configuration: Submissions "" or SubmitModels for model servers
// the hub calls, SubmitPredictions for files of responses (kinds that take
// them), SubmitArtifacts for model files the workers fetch, verify and
// serve themselves, refused over MaxParameters or MaxArtifactBytes (0: no
// cap; EntriesOf reads them).
type Entries struct {
	Submissions      string `json:"submissions,omitempty" input:"max=32"`
	MaxParameters    int64  `json:"max_parameters,omitempty" input:"min=0"`
	MaxArtifactBytes int64  `json:"max_artifact_bytes,omitempty" input:"min=0"`
}

// What a model competition's competitors submit (Entries.Submissions).
const (
	SubmitModels      = "models"
	SubmitPredictions = "predictions"
	SubmitArtifacts   = "artifacts"
)

// Check validates e for a kind that also takes the given shapes beside
// models and artifacts (the task kind: SubmitPredictions), and returns it
// with SubmitModels stored as "" (the default, as configurations created
// before Entries have it). Caps are refused without artifacts.
func (e Entries) Check(also ...string) (Entries, error) {
	others := append([]string{SubmitArtifacts}, also...)
	switch {
	case e.Submissions == "" || e.Submissions == SubmitModels:
		e.Submissions = ""
	case !slices.Contains(others, e.Submissions):
		return e, fmt.Errorf("submissions %q: want %q (the default) or %q", e.Submissions, SubmitModels, strings.Join(others, `" or "`))
	}
	if e.MaxParameters < 0 || e.MaxArtifactBytes < 0 {
		return e, fmt.Errorf("max_parameters %d, max_artifact_bytes %d: a cap is 0 (none) or positive", e.MaxParameters, e.MaxArtifactBytes)
	}
	if e.Submissions != SubmitArtifacts && (e.MaxParameters != 0 || e.MaxArtifactBytes != 0) {
		return e, fmt.Errorf("max_parameters and max_artifact_bytes cap artifact submissions: create the competition with submissions %q", SubmitArtifacts)
	}
	return e, nil
}

// EntriesOf returns what c's competitors submit, read from the top level of
// its configuration (models when it says nothing).
func EntriesOf(c Competition) Entries {
	var e Entries
	if json.Unmarshal(c.Config, &e) != nil {
		return Entries{}
	}
	return e
}

// ArtifactSpec is an artifact submission: model files published at a
// source (a repository at a revision, a path or a file:// tarball the
// workers can read), committed by their tree digest (internal/artifact's
// HashTree; the submission's Digest) and the Commitment binding it to the
// submitter's key and the commit time. Parameters and Bytes are read from
// the fetched files by the worker that verified them (0 until then).
type ArtifactSpec struct {
	Repo       string `json:"repo,omitempty"`
	Revision   string `json:"revision,omitempty"`
	Path       string `json:"path,omitempty"`
	URL        string `json:"url,omitempty"`
	TreeDigest string `json:"tree_digest"`
	Commitment string `json:"commitment"`
	Parameters int64  `json:"parameters,omitempty"`
	Bytes      int64  `json:"bytes,omitempty"`
}

// MCQConfig is the kind-specific configuration of an mcq competition.
type MCQConfig struct {
	// Mode is "generative" (chat completion, answer extracted from text) or
	// "loglik" (completions with logprobs, most likely choice).
	Mode string `json:"mode"`
	// Template is the prompt template; empty means the documented default.
	Template string `json:"template,omitempty"`
	// MaxTokens bounds generative answers.
	MaxTokens int `json:"max_tokens"`
	Entries
}

// PatchSpec is a code-fix submission: a unified diff for one task.
type PatchSpec struct {
	Task string `json:"task"`
	Diff string `json:"diff"`
	// DiffSHA256 and DiffBytes describe a diff the viewer may not read
	// (see SealedPatch); both are empty when Diff is shown.
	DiffSHA256 string `json:"diff_sha256,omitempty"`
	DiffBytes  int    `json:"diff_bytes,omitempty"`
}

// SealedPatch is p as the public sees it: the task, and the diff's sha256
// and size instead of its text.
func SealedPatch(p PatchSpec) PatchSpec {
	if p.Diff == "" {
		return p
	}
	sum := sha256.Sum256([]byte(p.Diff))
	return PatchSpec{Task: p.Task, DiffSHA256: hex.EncodeToString(sum[:]), DiffBytes: len(p.Diff)}
}

// PatchDigest is the content digest of a patch submission.
func PatchDigest(p PatchSpec) string {
	sum := sha256.Sum256([]byte("crucible-patch-v1\n" + p.Task + "\n" + p.Diff))
	return hex.EncodeToString(sum[:])
}

// PredictionsSpec is a predictions submission: a file of {doc_id,
// response} lines for a task competition's items. Body, the file, is stored
// as the submission's secret: never returned by a read, handed to the kind
// that scores it. The public sees its sha256 and size.
type PredictionsSpec struct {
	SHA256 string `json:"sha256"`
	Bytes  int    `json:"bytes"`
	Body   string `json:"-"`
}

// NewPredictions describes the predictions file body.
func NewPredictions(body string) PredictionsSpec {
	sum := sha256.Sum256([]byte(body))
	return PredictionsSpec{SHA256: hex.EncodeToString(sum[:]), Bytes: len(body), Body: body}
}

// PredictionsDigest is the content digest of a predictions submission: the
// same file sent again, from any key, is the same entry.
func PredictionsDigest(p PredictionsSpec) string {
	sum := sha256.Sum256([]byte("crucible-predictions-v1\n" + p.Body))
	return hex.EncodeToString(sum[:])
}

// State is where a submission is in its life.
type State string

// Submission states. Scored, Failed and InfraFailed are final.
const (
	StateQueued      State = "queued"
	StateRunning     State = "running"
	StateScored      State = "scored"
	StateFailed      State = "failed"
	StateInfraFailed State = "infra_failed"
)

// Final reports whether no more work will happen on a submission in state s.
func (s State) Final() bool {
	return s == StateScored || s == StateFailed || s == StateInfraFailed
}

// ModelSpec says how to reach a submitted model: any server speaking the
// OpenAI HTTP API.
type ModelSpec struct {
	BaseURL string `json:"base_url"`
	Model   string `json:"model"`
}

// Submission is one competitor's entry in a competition.
type Submission struct {
	ID            string    `json:"id"`
	CompetitionID string    `json:"competition_id"`
	Name          string    `json:"name"`
	Submitter     string    `json:"submitter"`
	Model         ModelSpec `json:"model"`
	// Patch is set for code-fix submissions (Model is then empty).
	Patch *PatchSpec `json:"patch,omitempty"`
	// Predictions is set for predictions submissions (Model is then empty).
	Predictions *PredictionsSpec `json:"predictions,omitempty"`
	// Artifact is set for artifact submissions (Model is then the launched
	// server's, filled by the worker for one evaluation and never stored).
	Artifact *ArtifactSpec `json:"artifact,omitempty"`
	// Digest is the sha256 of what was committed (see ModelDigest).
	Digest string `json:"digest"`
	// CommittedAt is the server time the submission was accepted; later
	// issues use it for time priority.
	CommittedAt time.Time `json:"committed_at"`
	State       State     `json:"state"`
	Reason      string    `json:"reason,omitempty"`
	ItemsTotal  int       `json:"items_total"`
	ItemsDone   int       `json:"items_done"`
	Card        *Card     `json:"card,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ModelDigest is the content digest of a model submission: what the model is,
// not who sent it, so that a re-submission of the same model is recognisable.
func ModelDigest(spec ModelSpec) string {
	sum := sha256.Sum256([]byte("crucible-model-v1\n" + spec.BaseURL + "\n" + spec.Model))
	return hex.EncodeToString(sum[:])
}

// ValidateTitle checks a competition title.
func ValidateTitle(title string) error {
	title = strings.TrimSpace(title)
	if title == "" {
		return fmt.Errorf("title is required")
	}
	if len(title) > 200 {
		return fmt.Errorf("title is %d characters; at most 200", len(title))
	}
	return nil
}
