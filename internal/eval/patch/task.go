package patch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"crucible/internal/jsonl"
)

// Log parser names accepted in Task.LogParser.
const (
	// ParserGoTest reads the JSON event stream of `go test -json`.
	ParserGoTest = "gotest"
	// ParserPytest reads pytest's -rA short summary, cross-checked against
	// a JUnit XML report.
	ParserPytest = "pytest"
)

// Task is one code-fix task, field-compatible with a SWE-bench instance
// (JSONL), plus the test command and log parser SWE-bench keeps in code.
type Task struct {
	// InstanceID names the task uniquely, e.g. "calc-1a2b3c4d".
	InstanceID string `json:"instance_id"`
	// Repo is a local git repository or bundle path; never fetched remotely.
	Repo string `json:"repo"`
	// BaseCommit is the commit the patch applies to.
	BaseCommit string `json:"base_commit"`
	// ProblemStatement describes the bug for the competitor.
	ProblemStatement string `json:"problem_statement"`
	// Patch is the reference fix (non-test files only).
	Patch string `json:"patch"`
	// TestPatch adds or changes the tests that decide the task.
	TestPatch string `json:"test_patch"`
	// FailToPass lists tests that fail at BaseCommit and must pass after the fix.
	FailToPass StringList `json:"FAIL_TO_PASS"`
	// PassToPass lists tests that pass before and must still pass after.
	PassToPass StringList `json:"PASS_TO_PASS"`
	// CreatedAt is the fix commit's date (SWE-bench's created_at), for
	// information only: the time score decays from the task's publication
	// to competitors (JudgeConfig.Published), not from history.
	CreatedAt time.Time `json:"created_at"`
	// TestCmd is the command that runs the tests inside the sandbox.
	TestCmd Command `json:"test_cmd"`
	// LogParser is ParserGoTest or ParserPytest.
	LogParser string `json:"log_parser"`
	// HintsText and Version are carried through from SWE-bench unchanged.
	HintsText string `json:"hints_text,omitempty"`
	Version   string `json:"version,omitempty"`
}

// StringList is a list of strings that unmarshals from a JSON array or
// from a string holding a JSON-encoded array (as SWE-bench ships
// FAIL_TO_PASS and PASS_TO_PASS). It marshals as an array.
type StringList []string

// UnmarshalJSON implements json.Unmarshaler.
func (l *StringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*l = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if strings.TrimSpace(s) == "" {
			*l = nil
			return nil
		}
		b = []byte(s)
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("want a JSON array of strings or a string holding one: %w", err)
	}
	*l = out
	return nil
}

// Command is an argv that unmarshals from a JSON array or from a string
// split on white space (no shell quoting). It marshals as an array.
type Command []string

// UnmarshalJSON implements json.Unmarshaler.
func (c *Command) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = strings.Fields(s)
		return nil
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("want a JSON array of strings or a string: %w", err)
	}
	*c = out
	return nil
}

// maxTaskLineBytes bounds one task line: SWE-bench instances carry whole
// problem statements, patches and test lists.
const maxTaskLineBytes = 256 << 20

// ParseTasks reads JSONL tasks, one object per non-blank line. Errors name
// the line. Each task must have instance_id, repo, base_commit, test_cmd
// and a known log_parser.
func ParseTasks(r io.Reader) ([]Task, error) {
	var tasks []Task
	err := jsonl.Each(r, jsonl.Options{MaxLineBytes: maxTaskLineBytes}, func(_ int, t Task) error {
		if err := t.Validate(); err != nil {
			return err
		}
		tasks = append(tasks, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("parse tasks: %w", err)
	}
	return tasks, nil
}

// Validate reports the first missing or invalid field of t.
func (t Task) Validate() error {
	switch {
	case t.InstanceID == "":
		return fmt.Errorf("missing instance_id")
	case t.Repo == "":
		return fmt.Errorf("task %s: missing repo", t.InstanceID)
	case t.BaseCommit == "":
		return fmt.Errorf("task %s: missing base_commit", t.InstanceID)
	case strings.HasPrefix(t.BaseCommit, "-"):
		return fmt.Errorf("task %s: base_commit %q is not a commit (it would be read as a git option)", t.InstanceID, t.BaseCommit)
	case len(t.TestCmd) == 0:
		return fmt.Errorf("task %s: missing test_cmd", t.InstanceID)
	case t.LogParser != ParserGoTest && t.LogParser != ParserPytest:
		return fmt.Errorf("task %s: log_parser %q is not %q or %q", t.InstanceID, t.LogParser, ParserGoTest, ParserPytest)
	}
	return nil
}
