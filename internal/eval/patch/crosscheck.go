package patch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"crucible/internal/sandbox"
)

// goFailedPackages counts, in `go test -json` output, the packages that
// failed.
func goFailedPackages(stdout []byte) int {
	failed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var ev goEvent
		if line := sc.Bytes(); len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			continue
		}
		if ev.Test == "" && ev.Action == "fail" {
			failed[ev.Package] = true
		}
	}
	return len(failed)
}

// goExitCheck compares go test's exit code with its report: go test exits
// non-zero exactly when a package failed.
func goExitCheck(status map[string]string, failedPkgs int, res sandbox.Result) []string {
	if res.Killed != "" || len(status) == 0 {
		return nil
	}
	failing := 0
	for _, s := range status {
		if s == StatusFailed {
			failing++
		}
	}
	switch {
	case res.ExitCode == 0 && (failing > 0 || failedPkgs > 0):
		return []string{fmt.Sprintf("go test exited 0 although its report has %d failing tests and %d failed packages", failing, failedPkgs)}
	case res.ExitCode != 0 && failing == 0 && failedPkgs == 0:
		return []string{fmt.Sprintf("go test exited %d but its report has no failing test or package", res.ExitCode)}
	}
	return nil
}

// harnessRecord is one line the pytest harness reporter wrote.
type harnessRecord struct {
	Kind       string `json:"kind"`
	NodeID     string `json:"nodeid"`
	When       string `json:"when"`
	Outcome    string `json:"outcome"`
	Xfail      bool   `json:"xfail"`
	Why        string `json:"why"`
	ExitStatus *int   `json:"exitstatus"`
	Code       *int   `json:"code"`
}

// statusXPass is an unexpected pass of an xfail test: FAILED in the
// summary, passed in the JUnit report.
const statusXPass = "XPASS"

// harnessView turns the reporter's phase records into statuses (as the
// -rA summary names them), its tamper findings and its exit code (nil if
// the process ended before pytest returned).
func harnessView(rec []byte) (status map[string]string, tampered []string, code *int) {
	status = map[string]string{}
	bad := func(s string) bool { return s == StatusFailed || s == StatusError || s == statusXPass }
	for _, line := range bytes.Split(rec, []byte("\n")) {
		var r harnessRecord
		if len(line) == 0 || json.Unmarshal(line, &r) != nil {
			continue
		}
		switch r.Kind {
		case "tampered":
			tampered = append(tampered, r.Why)
		case "exit":
			code = r.Code
		case "phase":
			var s string
			switch {
			case r.Outcome == "failed" && r.When == "call":
				s = StatusFailed
			case r.Outcome == "failed":
				s = StatusError
			case r.Outcome == "skipped" && r.Xfail:
				s = StatusXFail
			case r.Outcome == "skipped":
				s = StatusSkipped
			case r.When == "call" && r.Xfail:
				s = statusXPass
			case r.When == "call":
				s = StatusPassed
			default:
				continue
			}
			if !bad(status[r.NodeID]) {
				status[r.NodeID] = s
			}
		}
	}
	return status, tampered, code
}

// pytestCrossCheck compares the harness reporter's record with the exit
// code, the -rA summary and the JUnit report; each disagreement is
// returned (at most a few, then a count).
func pytestCrossCheck(rec []byte, res sandbox.Result, summary map[string]string, junit []byte) []string {
	if rec == nil {
		if res.Killed != "" {
			return nil
		}
		return []string{"the harness reporter's record is missing"}
	}
	plugin, out, code := harnessView(rec)
	if res.Killed != "" {
		return out
	}
	failing := 0
	for _, s := range plugin {
		if s == StatusFailed || s == StatusError || s == statusXPass {
			failing++
		}
	}
	switch {
	case code == nil:
		out = append(out, fmt.Sprintf("pytest did not finish: the process exited %d before pytest returned", res.ExitCode))
	case *code != res.ExitCode:
		out = append(out, fmt.Sprintf("pytest returned %d but the process exited %d", *code, res.ExitCode))
	case *code == 0 && failing > 0:
		out = append(out, fmt.Sprintf("pytest exited 0 although the harness saw %d failing tests", failing))
	case *code == 1 && failing == 0:
		out = append(out, "pytest exited 1 (tests failed) but the harness saw no failing test")
	}
	report, _ := parseJUnit(junit)
	ids := make([]string, 0, len(plugin))
	keys := map[string]bool{}
	for id := range plugin {
		ids = append(ids, id)
		keys[junitKey(id)] = true
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := plugin[id]
		s, inSummary := summary[id]
		j, inReport := report[junitKey(id)]
		// A node id with spaces is cut short in the summary; a teardown
		// error after a pass is PASSED and ERROR there.
		summaryOK := true
		if !strings.ContainsAny(id, " \t") {
			if passed(p) {
				summaryOK = inSummary && passed(s)
			} else {
				summaryOK = !(inSummary && passed(s)) || p == StatusError
			}
		}
		var reportOK bool
		switch p {
		case StatusXFail:
			reportOK = inReport && j == StatusSkipped
		case statusXPass:
			reportOK = inReport && (j == StatusPassed || j == StatusFailed)
		default:
			reportOK = passed(p) == (inReport && j == StatusPassed)
		}
		if !summaryOK {
			out = append(out, fmt.Sprintf("%s is %s per the harness but %s in the -rA summary", id, p, orAbsent(s, inSummary)))
		}
		if !reportOK {
			out = append(out, fmt.Sprintf("%s is %s per the harness but %s in the JUnit report", id, p, orAbsent(j, inReport)))
		}
	}
	// The summary cuts a node id at its first space.
	cut := map[string]bool{}
	for id := range plugin {
		if i := strings.IndexAny(id, " \t"); i >= 0 {
			cut[id[:i]] = true
		}
	}
	for id, s := range summary {
		if passed(s) && plugin[id] == "" && !cut[id] {
			out = append(out, fmt.Sprintf("%s is %s in the -rA summary but was never run per the harness", id, s))
		}
	}
	for k, s := range report {
		if s == StatusPassed && !keys[k] {
			out = append(out, fmt.Sprintf("%s passed in the JUnit report but was never run per the harness", k))
		}
	}
	return out
}

func orAbsent(s string, ok bool) string {
	if !ok {
		return "absent"
	}
	return s
}
