package patch

// This file writes a mined task's problem statement. The fix commit's
// message describes the fix ("use + instead of -"), so giving it to
// competitors would give the answer away: the statement is the text of the
// issue the commit fixes when the miner supplies one, and otherwise what a
// user would see at the parent commit — the failing tests' names and their
// assertion messages.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"crucible/internal/jsonl"
)

// Issue is one line of `crucible patch mine --issues FILE.jsonl`: the
// text of an issue and how to find the commit that fixes it.
type Issue struct {
	// Commit is the fixing commit's id or a prefix of at least 7 digits.
	Commit string `json:"commit,omitempty"`
	// PR is the number of the pull request squash-merged as the fixing
	// commit: its subject ends in "(#PR)", as GitHub writes it.
	PR int `json:"pr,omitempty"`
	// Number is the issue's own number, which the fixing commit's message
	// references as "Fixes #N", "Closes #N" or "Resolves #N".
	Number int    `json:"number,omitempty"`
	Title  string `json:"title"`
	Body   string `json:"body"`
}

// maxIssueLineBytes bounds one line of an issues file.
const maxIssueLineBytes = 16 << 20

// ParseIssues reads JSONL issues, one object per non-blank line; each must
// name a commit, a pr or a number, and carry a title or a body.
func ParseIssues(r io.Reader) ([]Issue, error) {
	var issues []Issue
	opt := jsonl.Options{MaxLineBytes: maxIssueLineBytes, DisallowUnknownFields: true}
	err := jsonl.Each(r, opt, func(_ int, is Issue) error {
		switch {
		case is.Commit == "" && is.PR <= 0 && is.Number <= 0:
			return errors.New("name the fixing commit, its pr or the issue number")
		case is.Commit != "" && len(is.Commit) < 7:
			return fmt.Errorf("commit %q: give at least 7 hex digits", is.Commit)
		case strings.TrimSpace(is.Title+is.Body) == "":
			return errors.New("title and body are empty")
		}
		issues = append(issues, is)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("issues: %w", err)
	}
	return issues, nil
}

var (
	closesRef = regexp.MustCompile(`(?i)\b(?:fix(?:es|ed)?|close[sd]?|resolve[sd]?)\s+#(\d+)\b`)
	squashRef = regexp.MustCompile(`\(#(\d+)\)\s*$`)
)

// issuesFor returns the issues that the commit with id commit and message
// msg fixes: named by commit id, by the squash-merged pull request in its
// subject, or referenced with Fixes/Closes/Resolves #N.
func issuesFor(issues []Issue, commit, msg string) []Issue {
	refs := map[string]bool{}
	for _, m := range closesRef.FindAllStringSubmatch(msg, -1) {
		refs[m[1]] = true
	}
	subject, _, _ := strings.Cut(msg, "\n")
	pr := ""
	if m := squashRef.FindStringSubmatch(subject); m != nil {
		pr = m[1]
	}
	var out []Issue
	for _, is := range issues {
		switch {
		case is.Commit != "" && strings.HasPrefix(commit, strings.ToLower(is.Commit)),
			is.PR > 0 && fmt.Sprint(is.PR) == pr,
			is.Number > 0 && refs[fmt.Sprint(is.Number)]:
			out = append(out, is)
		}
	}
	return out
}

// maxFailureLines bounds the assertion output quoted per failing test.
const maxFailureLines = 12

// statementFromIssues joins the issues' titles and bodies.
func statementFromIssues(issues []Issue) string {
	parts := make([]string, len(issues))
	for i, is := range issues {
		parts[i] = strings.TrimSpace(strings.TrimSpace(is.Title) + "\n\n" + strings.TrimSpace(is.Body))
	}
	return strings.Join(parts, "\n\n---\n\n")
}

// statementFromFailures describes the task by the FAIL_TO_PASS tests and
// what each printed while failing at the parent commit (stdout of that
// run, parsed as parser's output).
func statementFromFailures(parser string, stdout []byte, f2p []string) string {
	var msgs map[string][]string
	if parser == ParserGoTest {
		msgs = goFailures(stdout)
	} else {
		msgs = pytestFailures(stdout)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "These tests fail and should pass once the bug is fixed:\n")
	for _, name := range f2p {
		fmt.Fprintf(&b, "\n- %s\n", name)
		lines := msgs[name]
		if len(lines) > maxFailureLines {
			lines = append(lines[:maxFailureLines:maxFailureLines], "…")
		}
		for _, l := range lines {
			fmt.Fprintf(&b, "    %s\n", l)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// goFailures collects each test's output lines from a `go test -json`
// stream, leaving out the framing lines (=== RUN, --- FAIL, …).
func goFailures(stdout []byte) map[string][]string {
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var ev struct{ Action, Test, Output string }
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Action != "output" || ev.Test == "" {
			continue
		}
		l := strings.TrimSpace(ev.Output)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- ") {
			continue
		}
		out[ev.Test] = append(out[ev.Test], l)
	}
	return out
}

var pytestFailed = regexp.MustCompile(`^(?:FAILED|ERROR) (\S+) - (.*)$`)

// pytestFailures takes each failing test's message from pytest's -rA
// short summary ("FAILED id - AssertionError: …").
func pytestFailures(stdout []byte) map[string][]string {
	out := map[string][]string{}
	for _, l := range strings.Split(string(stdout), "\n") {
		if m := pytestFailed.FindStringSubmatch(strings.TrimRight(l, "\r")); m != nil {
			out[m[1]] = append(out[m[1]], m[2])
		}
	}
	return out
}
