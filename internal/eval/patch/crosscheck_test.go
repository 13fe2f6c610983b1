package patch

import (
	"regexp"
	"strings"
	"testing"

	"crucible/internal/sandbox"
)

// harnessLines builds a reporter record: phases "nodeid when outcome",
// then the exit line unless code < 0.
func harnessLines(code int, phases ...string) []byte {
	var b strings.Builder
	for _, p := range phases {
		f := strings.Fields(p)
		b.WriteString(`{"kind":"phase","nodeid":"` + f[0] + `","when":"` + f[1] + `","outcome":"` + f[2] + `","xfail":false}` + "\n")
	}
	if code >= 0 {
		b.WriteString(`{"kind":"session","exitstatus":0}` + "\n" + `{"kind":"exit","code":` + string(rune('0'+code)) + "}\n")
	}
	return []byte(b.String())
}

const junitAB = `<testsuites><testsuite><testcase classname="t" name="test_a"/><testcase classname="t" name="test_b"><failure/></testcase></testsuite></testsuites>`

func TestPytestCrossCheck(t *testing.T) {
	honest := harnessLines(1, "t.py::test_a setup passed", "t.py::test_a call passed", "t.py::test_a teardown passed",
		"t.py::test_b setup passed", "t.py::test_b call failed", "t.py::test_b teardown passed")
	summary := map[string]string{"t.py::test_a": StatusPassed, "t.py::test_b": StatusFailed}
	tests := []struct {
		name    string
		rec     []byte
		exit    int
		summary map[string]string
		junit   string
		want    string // "" = agrees
	}{
		{"every view agrees", honest, 1, summary, junitAB, ""},
		{"no record", nil, 1, summary, junitAB, "record is missing"},
		{"the process ended before pytest returned", harnessLines(-1, "t.py::test_a call passed"), 0, summary, junitAB, "pytest did not finish"},
		{"exit code differs from pytest's", honest, 0, summary, junitAB, "pytest returned 1 but the process exited 0"},
		{"summary passes a failed test", honest, 1, map[string]string{"t.py::test_a": StatusPassed, "t.py::test_b": StatusPassed}, junitAB, "t.py::test_b is FAILED per the harness but PASSED in the -rA summary"},
		{"junit passes a failed test", honest, 1, summary, strings.Replace(junitAB, "<failure/>", "", 1), "t.py::test_b is FAILED per the harness but PASSED in the JUnit report"},
		{"summary passes a test never run", honest, 1, map[string]string{"t.py::test_a": StatusPassed, "t.py::test_b": StatusFailed, "t.py::test_c": StatusPassed}, junitAB, "t.py::test_c is PASSED in the -rA summary but was never run"},
		{"junit passes a test never run", honest, 1, summary, strings.Replace(junitAB, "</testsuite>", `<testcase classname="t" name="test_c"/></testsuite>`, 1), "t::test_c passed in the JUnit report but was never run"},
		{"the reporter saw tampering", append(honest, []byte(`{"kind":"tampered","why":"pytest internals replaced"}`+"\n")...), 1, summary, junitAB, "pytest internals replaced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(pytestCrossCheck(tt.rec, sandbox.Result{ExitCode: tt.exit}, tt.summary, []byte(tt.junit)), "; ")
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGoExitCheck(t *testing.T) {
	pass := map[string]string{"TestA": StatusPassed}
	fail := map[string]string{"TestA": StatusPassed, "TestB": StatusFailed}
	for _, tt := range []struct {
		name   string
		status map[string]string
		pkgs   int
		res    sandbox.Result
		want   string
	}{
		{"pass, exit 0", pass, 0, sandbox.Result{}, ""},
		{"failure, exit 1", fail, 1, sandbox.Result{ExitCode: 1}, ""},
		{"build failure of another package", pass, 1, sandbox.Result{ExitCode: 1}, ""},
		{"failure, exit 0", fail, 1, sandbox.Result{}, "go test exited 0 although its report has 1 failing tests"},
		{"all pass, exit 1", pass, 0, sandbox.Result{ExitCode: 1}, "go test exited 1 but its report has no failing test or package"},
		{"killed", fail, 0, sandbox.Result{Killed: "timeout"}, ""},
	} {
		if got := strings.Join(goExitCheck(tt.status, tt.pkgs, tt.res), ""); !strings.Contains(got, tt.want) || (tt.want == "") != (got == "") {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCanarySourceAndSelection(t *testing.T) {
	existing := map[string]bool{}
	cs, code := canarySource(ParserGoTest, "calc_test.go", "TestAdd", existing)
	fails := 0
	for _, c := range cs {
		if !regexp.MustCompile(`^TestAdd[A-Z][a-z]+[A-Z][a-z]+$`).MatchString(c.id) || !strings.Contains(code, "func "+c.id+"(t *testing.T)") {
			t.Fatalf("canary %q not in Go style or not in %s", c.id, code)
		}
		if c.fail {
			fails++
		}
	}
	if len(cs) != 4 || fails != 2 || len(existing) != 4 {
		t.Fatalf("canaries %v", cs)
	}
	cs, code = canarySource(ParserPytest, "tests/test_calc.py", "add", map[string]bool{})
	for _, c := range cs {
		name := strings.TrimPrefix(c.id, "tests/test_calc.py::")
		if !regexp.MustCompile(`^test_add_[a-z]+_[a-z]+$`).MatchString(name) || !strings.Contains(code, "\ndef "+name+"():\n") {
			t.Fatalf("canary %q not in pytest style or not in %s", c.id, code)
		}
	}
	if got := checkCanaries([]canary{{"A", true}, {"B", false}}, map[string]string{"A": StatusFailed}); len(got) != 1 || !strings.Contains(got[0], "B planted to pass came out absent") {
		t.Fatalf("checkCanaries: %q", got)
	}
	if got := strings.Join(withGoRun([]string{"go", "test", "-run", "TestA", "./..."}, []string{"TestX", "TestY"}), " "); got != "go test -run (?:TestA)|^(TestX|TestY)$ ./..." {
		t.Fatalf("withGoRun: %q", got)
	}
}
