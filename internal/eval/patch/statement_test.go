package patch

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"crucible/internal/sandbox"
)

// The fix commit's message says how to fix the bug; the mined statement
// must be the issue's text when one is given, and otherwise the failing
// tests with their assertion messages, with no word of the message.
func TestMineStatementsNeverQuoteTheFixMessage(t *testing.T) {
	slow(t)
	if err := sandbox.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipping: go not in PATH")
	}
	dir := t.TempDir()
	gitT(t, dir, "init", "-q")
	writeFiles(t, dir, map[string]string{
		"go.mod":       "module calc\n\ngo 1.22\n",
		"calc.go":      "package calc\n\nfunc Add(a, b int) int { return a - b }\n\nfunc Mul(a, b int) int { return a + b }\n",
		"calc_test.go": "package calc\n\nimport \"testing\"\n\nfunc TestSub(t *testing.T) {}\n",
	})
	commitAll(t, dir, "initial")
	addMsg := "Swap the minus operator for plus in Add\n\nFixes #7"
	writeFiles(t, dir, map[string]string{
		"calc.go":      "package calc\n\nfunc Add(a, b int) int { return a + b }\n\nfunc Mul(a, b int) int { return a + b }\n",
		"calc_test.go": "package calc\n\nimport \"testing\"\n\nfunc TestSub(t *testing.T) {}\n\nfunc TestAdd(t *testing.T) {\n\tif got := Add(1, 2); got != 3 {\n\t\tt.Fatalf(\"Add(1, 2) = %d, want 3\", got)\n\t}\n}\n",
	})
	commitAll(t, dir, addMsg)
	mulMsg := "Multiply with the asterisk operator rather than summing"
	writeFiles(t, dir, map[string]string{
		"calc.go":      "package calc\n\nfunc Add(a, b int) int { return a + b }\n\nfunc Mul(a, b int) int { return a * b }\n",
		"calc_test.go": "package calc\n\nimport \"testing\"\n\nfunc TestSub(t *testing.T) {}\n\nfunc TestAdd(t *testing.T) {\n\tif got := Add(1, 2); got != 3 {\n\t\tt.Fatalf(\"Add(1, 2) = %d, want 3\", got)\n\t}\n}\n\nfunc TestMul(t *testing.T) {\n\tif got := Mul(2, 5); got != 10 {\n\t\tt.Errorf(\"Mul(2, 5) = %d, want 10\", got)\n\t}\n}\n",
	})
	commitAll(t, dir, mulMsg)
	issue := Issue{Number: 7, Title: "Add returns wrong sums", Body: "calc.Add(1, 2) gives -1 for me."}
	tasks, err := Mine(context.Background(), MineConfig{Repo: dir, Judge: judgeConfig(t), Issues: []Issue{issue}}, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 2 {
		t.Fatalf("mined %d tasks, want 2", len(tasks))
	}
	add, mul := tasks[0].ProblemStatement, tasks[1].ProblemStatement
	if !strings.Contains(add, issue.Title) || !strings.Contains(add, issue.Body) {
		t.Errorf("the Add task's statement %q is not issue #7's text", add)
	}
	if !strings.Contains(mul, "TestMul") || !strings.Contains(mul, "Mul(2, 5) = 7, want 10") {
		t.Errorf("the Mul task's statement %q does not name the failing test and its assertion", mul)
	}
	for _, c := range []struct{ statement, msg string }{{add, addMsg}, {mul, mulMsg}} {
		for _, w := range strings.Fields(c.msg) {
			if len(w) > 3 && strings.Contains(strings.ToLower(c.statement), strings.ToLower(w)) {
				t.Errorf("statement %q quotes %q from the fix commit's message %q", c.statement, w, c.msg)
			}
		}
	}
}

func TestIssuesForCommit(t *testing.T) {
	issues, err := ParseIssues(strings.NewReader(`{"number": 12, "title": "a"}
{"pr": 40, "title": "b"}

{"commit": "ABCDEF0", "body": "c"}
`))
	if err != nil {
		t.Fatal(err)
	}
	titles := func(is []Issue) string {
		var s []string
		for _, i := range is {
			s = append(s, i.Title+i.Body)
		}
		return strings.Join(s, ",")
	}
	for _, tt := range []struct{ commit, msg, want string }{
		{"1111111", "parse: handle empty input\n\nCloses #12", "a"},
		{"1111111", "parse: handle empty input (#40)", "b"},
		{"abcdef0123", "unrelated", "c"},
		{"1111111", "mention #12 and #40 in passing", ""},
		{"1111111", "resolves #120", ""},
	} {
		if got := titles(issuesFor(issues, tt.commit, tt.msg)); got != tt.want {
			t.Errorf("issuesFor(%s, %q) = %q, want %q", tt.commit, tt.msg, got, tt.want)
		}
	}
	for _, bad := range []string{`{"title": "no commit"}`, `{"commit": "abc", "title": "short"}`, `{"number": 1}`, `{"number": 1, "title": "x", "extra": 1}`} {
		if _, err := ParseIssues(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseIssues(%s) accepted it", bad)
		}
	}
}

func TestStatementFromPytestFailures(t *testing.T) {
	out := "test_calc.py F.\n=== FAILURES ===\n___ test_add ___\n    def test_add():\n>       assert add(1, 2) == 3\nE       assert -1 == 3\n" +
		"=========================== short test summary info ============================\n" +
		"PASSED test_calc.py::test_sub\nFAILED test_calc.py::test_add - assert -1 == 3\n========================= 1 failed, 1 passed in 0.01s ==========================\n"
	got := statementFromFailures(ParserPytest, []byte(out), []string{"test_calc.py::test_add"})
	want := "These tests fail and should pass once the bug is fixed:\n\n- test_calc.py::test_add\n    assert -1 == 3"
	if got != want {
		t.Fatalf("statement %q, want %q", got, want)
	}
}
