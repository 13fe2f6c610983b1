package patch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"crucible/internal/sandbox"
)

// goTestFacts reads, from `go test -json` output, the packages that
// reported each test and how many packages failed.
func goTestFacts(stdout []byte) (map[string][]string, int) {
	where := map[string][]string{}
	failed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var ev goEvent
		if line := sc.Bytes(); len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			continue
		}
		switch {
		case ev.Test == "" && ev.Action == "fail":
			failed[ev.Package] = true
		case ev.Test != "" && (ev.Action == "pass" || ev.Action == "fail" || ev.Action == "skip") && !contains(where[ev.Test], ev.Package):
			where[ev.Test] = append(where[ev.Test], ev.Package)
		}
	}
	return where, len(failed)
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

// maxProcessChecks bounds the per-process cross-check: beyond it the
// decisive tests are not rerun one by one (the log says so).
const maxProcessChecks = 40

// goPackagePath accepts package paths as go test prints them; anything
// else (a forged event could name "-toolexec=…") is never passed to go.
var goPackagePath = regexp.MustCompile(`^[A-Za-z0-9_.~+][A-Za-z0-9_./~+-]*$`)

// goProcessCheck compiles each package that reported a decisive test once
// (go test -c, in the sandbox) and runs each decisive test alone in its
// own sandboxed process (as many at once as there are CPUs), whose exit
// status the host receives from the sandbox itself. A test the report
// passed whose process fails alone is tampering; so is a canary whose
// process does not exit as planted.
func (ws *workspace) goProcessCheck(ctx context.Context, r testRun, decisive []string, canaries []canary) ([]string, error) {
	fail := map[string]bool{}
	for _, c := range canaries {
		fail[c.id] = c.fail
		decisive = append(decisive, c.id)
	}
	type check struct{ pkg, name string }
	var checks []check
	var pkgs []string
	for _, name := range decisive {
		if s := r.status[name]; s != StatusPassed && s != StatusSkipped && s != StatusFailed {
			continue
		}
		for _, p := range r.packages[name] {
			if !goPackagePath.MatchString(p) {
				return []string{fmt.Sprintf("the report names a package %q that go test cannot have printed", p)}, nil
			}
			checks = append(checks, check{p, name})
			if !contains(pkgs, p) {
				pkgs = append(pkgs, p)
			}
		}
	}
	if len(checks) > maxProcessChecks {
		ws.logf("crosscheck: %d decisive tests: more than %d, not rerun one per process", len(checks), maxProcessChecks)
		return nil, nil
	}
	if len(checks) == 0 {
		return nil, nil
	}
	procs := filepath.Join(ws.root, "procs-"+randomHex(6))
	if err := os.Mkdir(procs, 0o755); err != nil {
		return nil, err
	}
	cfg := ws.sandboxCfg(sandbox.Mount{Source: ws.gocache, Target: boxCache, Writable: true}, sandbox.Mount{Source: procs, Target: "/procs", Writable: true})
	// go list runs alongside the compiles; both only read the tree.
	build := `i=0
for p in "$@"; do go list -f '{{.Dir}}' "$p" > "/tmp/$i.dir" & i=$((i+1)); done
i=0
for p in "$@"; do go test -c -o "/procs/$i.test" "$p" >&2 && : > "/tmp/$i.ok"; i=$((i+1)); done
wait
i=0
for p in "$@"; do [ -e "/tmp/$i.ok" ] && [ -s "/tmp/$i.dir" ] && printf '%s\t%s\n' "$i" "$(cat "/tmp/$i.dir")"; i=$((i+1)); done
exit 0
`
	start := time.Now()
	res, err := sandbox.Run(ctx, cfg, append([]string{"bash", "-c", build, "build"}, pkgs...))
	if err != nil {
		return nil, err
	}
	dirs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
		if i, d, ok := strings.Cut(l, "\t"); ok {
			if n, err := strconv.Atoi(i); err == nil && n < len(pkgs) {
				dirs[pkgs[n]] = "/procs/" + i + ".test\t" + d
			}
		}
	}
	built := time.Now()
	cfg = ws.sandboxCfg(sandbox.Mount{Source: procs, Target: "/procs"})
	results := make([]sandbox.Result, len(checks))
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	slots := make(chan struct{}, runtime.NumCPU())
	for i, c := range checks {
		bin, dir, ok := strings.Cut(dirs[c.pkg], "\t")
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			results[i], errs[i] = sandbox.Run(ctx, cfg, []string{"/bin/sh", "-c", `cd "$1" && exec "$2" -test.run "$3" -test.count=1 -test.paniconexit0`,
				"proc", dir, bin, goRunPattern(c.name)})
		}()
	}
	wg.Wait()
	var out []string
	ran := 0
	for i, c := range checks {
		res := results[i]
		if _, ok := dirs[c.pkg]; !ok {
			ws.logf("crosscheck: %s: the test binary did not build; %s not rerun alone", c.pkg, c.name)
			continue
		}
		if errs[i] != nil {
			return nil, errs[i]
		}
		ran++
		if res.Killed != "" {
			ws.logf("crosscheck: %s alone: %s; not compared", c.name, res.Killed)
			continue
		}
		want, isCanary := fail[c.name]
		if !isCanary {
			want = r.status[c.name] == StatusFailed
		}
		switch failed := res.ExitCode != 0; {
		case failed && !want:
			out = append(out, fmt.Sprintf("%s (%s) is %s in the report but its own process exited %d", c.name, c.pkg, r.status[c.name], res.ExitCode))
		case !failed && want && isCanary:
			out = append(out, fmt.Sprintf("canary %s (%s), planted to fail, exited 0 in its own process", c.name, c.pkg))
		}
	}
	ws.logf("crosscheck: %d decisive tests and canaries rerun one per process in %s (%d packages compiled once in %s): %d disagreements",
		ran, time.Since(built).Round(time.Millisecond), len(pkgs), built.Sub(start).Round(time.Millisecond), len(out))
	return out, nil
}

// goRunPattern is a -test.run pattern matching exactly the test name,
// subtest levels included.
func goRunPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}
