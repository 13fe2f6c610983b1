package patch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Test statuses, as in SWE-bench's TestStatus.
const (
	StatusPassed  = "PASSED"
	StatusFailed  = "FAILED"
	StatusSkipped = "SKIPPED"
	StatusError   = "ERROR"
	StatusXFail   = "XFAIL"
	// StatusMissing marks a listed test that produced no result (e.g. its
	// package did not build); it counts as not passing.
	StatusMissing = "MISSING"
)

func passed(status string) bool { return status == StatusPassed || status == StatusXFail }

func allPass(m map[string]string) bool {
	for _, s := range m {
		if !passed(s) {
			return false
		}
	}
	return true
}

// goEvent is the part of a `go test -json` event the parser trusts.
type goEvent struct {
	Action  string
	Package string
	Test    string
}

// parseGoTest reads `go test -json` output. Only whole stdout lines that
// decode as JSON events count, and only their Action/Package/Test fields:
// text printed by the code under test reaches this stream only inside
// "output" events, so a printed "--- PASS" line cannot forge a result.
// A test reported both passing and failing is FAILED; a package that
// failed without a failing test (e.g. exited early) has every test FAILED.
// Test names are keyed without the package (as SWE-bench does); the same
// name in two packages passes only if it passes in both.
func parseGoTest(stdout []byte) (map[string]string, []string) {
	type pkgState struct {
		failed, anyTestFailed bool
		tests                 []string
	}
	status := map[string]string{}
	pkgs := map[string]*pkgState{}
	var notes []string
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	set := func(name, s string) {
		old, ok := status[name]
		switch {
		case !ok, old == StatusSkipped && s != StatusSkipped, s == StatusFailed:
			status[name] = s
		}
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var ev goEvent
		if json.Unmarshal(line, &ev) != nil {
			continue
		}
		p := pkgs[ev.Package]
		if p == nil {
			p = &pkgState{}
			pkgs[ev.Package] = p
		}
		switch {
		case ev.Test == "" && ev.Action == "fail":
			p.failed = true
		case ev.Test == "":
		case ev.Action == "pass":
			set(ev.Test, StatusPassed)
			p.tests = append(p.tests, ev.Test)
		case ev.Action == "fail":
			set(ev.Test, StatusFailed)
			p.anyTestFailed = true
			p.tests = append(p.tests, ev.Test)
		case ev.Action == "skip":
			set(ev.Test, StatusSkipped)
			p.tests = append(p.tests, ev.Test)
		}
	}
	names := make([]string, 0, len(pkgs))
	for n := range pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := pkgs[n]
		if p.failed && !p.anyTestFailed && len(p.tests) > 0 {
			notes = append(notes, fmt.Sprintf("package %s failed without a failing test: its %d tests count as FAILED", n, len(p.tests)))
			for _, t := range p.tests {
				status[t] = StatusFailed
			}
		}
	}
	return status, notes
}

var pytestSummary = regexp.MustCompile(`^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)`)

// parsePytest reads pytest -rA output and the JUnit XML report pytest
// wrote, and trusts a PASSED/XFAIL only when both agree. Summary lines are
// read only from the final "short test summary info" section (up to its
// closing ===== line), so lines printed while tests ran are ignored; a
// forged summary line is still contradicted by the XML report. Anything
// the report calls failed, errored or skipped wins.
func parsePytest(stdout, junit []byte) (map[string]string, []string) {
	var notes []string
	summary := pytestSummaryView(stdout)
	if summary == nil {
		notes = append(notes, "pytest: no short test summary section found")
	}
	report, err := parseJUnit(junit)
	if err != nil {
		notes = append(notes, "pytest: junit report unreadable: "+err.Error()+"; no test counts as passing")
	}
	status := map[string]string{}
	for id, s := range summary {
		if !passed(s) {
			status[id] = s
			continue
		}
		r, ok := report[junitKey(id)]
		switch {
		case !ok:
			status[id] = StatusFailed
			notes = append(notes, fmt.Sprintf("pytest: %s PASSED in the summary but absent from the junit report: FAILED", id))
		case r != StatusPassed && !(s == StatusXFail && r == StatusSkipped):
			status[id] = r
			notes = append(notes, fmt.Sprintf("pytest: %s PASSED in the summary but %s in the junit report", id, r))
		default:
			status[id] = s
		}
	}
	return status, notes
}

// pytestSummaryView reads the statuses of pytest's final -rA "short test
// summary info" section (up to its closing ===== line; XPASS counts as
// FAILED), or nil when there is no such section.
func pytestSummaryView(stdout []byte) map[string]string {
	lines := strings.Split(string(stdout), "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "=") && strings.Contains(l, "short test summary info") {
			start = i + 1
		}
	}
	if start < 0 {
		return nil
	}
	summary := map[string]string{}
	for _, l := range lines[start:] {
		if strings.HasPrefix(l, "=") {
			break
		}
		if m := pytestSummary.FindStringSubmatch(l); m != nil {
			s := m[1]
			if s == "XPASS" {
				s = StatusFailed
			}
			summary[m[2]] = s
		}
	}
	return summary
}

// junitKey maps a pytest node id "dir/test_x.py::Cls::test_a[p]" to the
// JUnit "classname::name" pair pytest writes: "dir.test_x.Cls::test_a[p]".
func junitKey(nodeid string) string {
	parts := strings.Split(nodeid, "::")
	if len(parts) < 2 {
		return nodeid
	}
	mod := strings.TrimSuffix(parts[0], ".py")
	mod = strings.ReplaceAll(mod, "/", ".")
	class := append([]string{mod}, parts[1:len(parts)-1]...)
	return strings.Join(class, ".") + "::" + parts[len(parts)-1]
}

// parseJUnit maps "classname::name" to a status.
func parseJUnit(b []byte) (map[string]string, error) {
	type result struct {
		XMLName xml.Name
	}
	type testcase struct {
		Classname string   `xml:"classname,attr"`
		Name      string   `xml:"name,attr"`
		Results   []result `xml:",any"`
	}
	type suite struct {
		Cases  []testcase `xml:"testcase"`
		Suites []suite    `xml:"testsuite"`
	}
	var root suite
	if err := xml.Unmarshal(b, &root); err != nil {
		return nil, err
	}
	out := map[string]string{}
	var walk func(s suite)
	walk = func(s suite) {
		for _, c := range s.Cases {
			st := StatusPassed
			for _, r := range c.Results {
				switch r.XMLName.Local {
				case "failure":
					st = StatusFailed
				case "error":
					st = StatusError
				case "skipped":
					if st == StatusPassed {
						st = StatusSkipped
					}
				}
			}
			key := c.Classname + "::" + c.Name
			if old, ok := out[key]; ok && old != StatusPassed {
				continue
			}
			out[key] = st
		}
		for _, sub := range s.Suites {
			walk(sub)
		}
	}
	walk(root)
	return out, nil
}
