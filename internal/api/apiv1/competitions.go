package apiv1

import (
	"time"

	"crucible/internal/competition"
	"crucible/internal/eval"
	"crucible/internal/eval/patch"
	"crucible/internal/eval/roleplay"
	"crucible/internal/incentive"
)

// CreateCompetitionRequest is the body of POST /api/v1/competitions.
type CreateCompetitionRequest struct {
	Kind        string `json:"kind" input:"max=32"`
	Title       string `json:"title" input:"max=200"`
	DatasetName string `json:"dataset_name" input:"max=200"`
	// Dataset is the dataset file's text (JSONL for mcq).
	Dataset  string `json:"dataset" input:"text,max=32MiB"`
	Template string `json:"template,omitempty" input:"text,max=64KiB"`
	Mode     string `json:"mode,omitempty" input:"max=32"`
	// MaxTokens bounds generated answers (0: the kind's default).
	MaxTokens int `json:"max_tokens,omitempty" input:"min=0,max=32768"`
	// Roleplay configures a roleplay competition; Dataset may then hold a
	// persona JSONL (empty: the shipped personas).
	Roleplay *roleplay.CompetitionConfig `json:"roleplay,omitempty"`
	// Repos are the git bundles (`git bundle create x --all`; base64 in
	// JSON) of a patch competition's repositories, by the name its tasks'
	// "repo" field uses. Only operator keys may name a repository on the
	// server instead, beneath a root registered with crucible serve --repos.
	Repos map[string][]byte `json:"repos,omitempty" input:"max=16"`
	// PatchPolicy relaxes rules of a patch competition's policy screen,
	// e.g. {"allow": ["pytest-config"]}; absent: every rule applies.
	PatchPolicy *patch.Policy `json:"patch_policy,omitempty"`
	// Task is a task competition's lm-eval task: a preset or a task file's
	// text, with num_fewshot; Dataset then holds the evaluation rows
	// (JSONL), required for a task file.
	Task *competition.TaskSource `json:"task,omitempty"`
	// Entries says what a task, mcq or roleplay competition's competitors
	// enter (models, artifacts; task also predictions) and caps artifacts;
	// absent: models (a task request may carry it in Task instead).
	Entries *competition.Entries `json:"entries,omitempty"`
}

// CreateSubmissionRequest is the body of POST /api/v1/competitions/{id}/submissions:
// a model (base_url, model) for mcq competitions, a patch (task, patch) for
// code-fix ones, a predictions file for task competitions that take them.
type CreateSubmissionRequest struct {
	Name    string `json:"name,omitempty" input:"max=200"`
	BaseURL string `json:"base_url,omitempty" input:"max=2048"`
	Model   string `json:"model,omitempty" input:"max=256"`
	// Task and Patch make a code-fix submission: a unified diff for one task.
	Task  string `json:"task,omitempty" input:"max=256"`
	Patch string `json:"patch,omitempty" input:"text,max=8MiB"`
	// Predictions make a predictions submission: JSONL lines {"doc_id":
	// N, "response": "..."}, doc_id the item's index from 0.
	Predictions string `json:"predictions,omitempty" input:"text,max=6MiB"`
	// Artifact makes an artifact submission (task, mcq or roleplay competitions created
	// with submissions "artifacts"): model files the workers fetch.
	Artifact *ArtifactSource `json:"artifact,omitempty"`
	// APIKey is sent to the model server as a bearer token; it is stored
	// and never returned.
	APIKey string `json:"api_key,omitempty" input:"max=4096"`
}

// ArtifactSource is where an artifact submission's files are — exactly one
// of a repository at a revision (fetched by the workers' --model-fetcher),
// an absolute directory path or a file:// tarball the workers can read —
// and the tree digest they are committed by (crucible artifact hash DIR).
type ArtifactSource struct {
	Repo     string `json:"repo,omitempty" input:"max=256"`
	Revision string `json:"revision,omitempty" input:"max=128"`
	Path     string `json:"path,omitempty" input:"max=4096"`
	URL      string `json:"url,omitempty" input:"max=4096"`
	Digest   string `json:"digest" input:"max=64"`
}

// TaskPrompt is one item of GET /api/v1/competitions/{id}/prompts (a task
// competition taking predictions): the doc_id a prediction names, the
// prompt, and the strings generation stops at. (The hub writes kind.Prompt.)
type TaskPrompt struct {
	DocID  int      `json:"doc_id"`
	Prompt string   `json:"prompt"`
	Until  []string `json:"until,omitempty"`
}

// ResultsPage is the body of GET /api/v1/submissions/{id}/results.
type ResultsPage struct {
	Offset int `json:"offset"`
	// Total counts the results the public may see (see internal/seal).
	Total   int           `json:"total"`
	Results []eval.Result `json:"results"`
}

// WeightsRecord is one closed epoch of one model competition: the body of
// GET /api/v1/competitions/{id}/weights. (The hub writes weights.Record.)
type WeightsRecord struct {
	Competition string    `json:"competition_id"`
	Epoch       int64     `json:"epoch"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	ClosedAt    time.Time `json:"closed_at"`
	Epsilon     float64   `json:"epsilon"`
	Temperature float64   `json:"temperature"`
	// WinRate is how win rates and weights were computed (the
	// competition's preset); nil on records closed before presets.
	WinRate  *incentive.WinRateConfig `json:"win_rate,omitempty"`
	Names    map[string]string        `json:"names"`
	Scores   map[string]float64       `json:"scores"`
	WinRates map[string]float64       `json:"win_rates"`
	// Copies maps a copy to the earlier submission it copies; copies weigh 0.
	Copies  map[string]string  `json:"copies"`
	Weights map[string]float64 `json:"weights"`
}
