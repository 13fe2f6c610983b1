package patch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"crucible/internal/sandbox"
)

// maxProcessChecks bounds the per-process cross-check: beyond it the
// decisive tests are not rerun one by one (the log says so).
const maxProcessChecks = 40

// procCheck is one test to rerun alone: its name and the prebuilt test
// binary of a package declaring it.
type procCheck struct{ name, bin, dir string }

// locateGoTests prints "name<TAB>dir" for each directory with a test file
// declaring the top-level test of each name given.
const locateGoTests = `for n in "$@"; do
	top=${n%%/*}
	grep -rlE --include='*_test.go' --exclude-dir=vendor --exclude-dir=testdata --exclude-dir=.git -e "^func $top\(" . |
		while IFS= read -r f; do printf '%s\t%s\n' "$n" "$(dirname "$f")"; done
done
`

// buildGoTests compiles the test binary of each directory given, in
// order, to /procs/<i>.test ($1 holds the -tags value or is empty), and
// prints the index of each that built.
const buildGoTests = `tags=$1; shift
i=0
for d in "$@"; do
	(cd "$d" && go test -c ${tags:+-tags "$tags"} -o "/procs/$i.test" .) >&2 && printf '%d\n' "$i"
	i=$((i+1))
done
exit 0
`

// goPrebuild compiles, before any test runs, the test binary of each
// package declaring a decisive test or a canary, so the per-process
// reruns use binaries built from the tree as the judge prepared it: what
// the run then changes in the work tree or the build cache cannot reach
// them. It returns the reruns to do (none, logged, beyond
// maxProcessChecks).
func (ws *workspace) goPrebuild(ctx context.Context, cmd []string, names []string) ([]procCheck, error) {
	var probes []string
	for _, n := range names {
		if top, _, _ := strings.Cut(n, "/"); goTestName.MatchString(top) {
			probes = append(probes, n)
		}
	}
	if len(probes) == 0 {
		return nil, nil
	}
	res, err := ws.sandboxGit(ctx, locateGoTests, probes...)
	if err != nil {
		return nil, err
	}
	var checks []procCheck
	var dirs []string
	for _, l := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
		if n, d, ok := strings.Cut(l, "\t"); ok {
			checks = append(checks, procCheck{name: n, dir: d})
			if !contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	if len(checks) > maxProcessChecks {
		ws.logf("crosscheck: %d decisive tests and canaries: more than %d, not rerun one per process", len(checks), maxProcessChecks)
		return nil, nil
	}
	procs := filepath.Join(ws.root, "procs")
	if err := os.Mkdir(procs, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	cfg := ws.sandboxCfg(sandbox.Mount{Source: ws.gocache, Target: boxCache, Writable: true}, sandbox.Mount{Source: procs, Target: "/procs", Writable: true})
	res, err = sandbox.Run(ctx, cfg, append([]string{"bash", "-c", buildGoTests, "build", goTags(cmd)}, dirs...))
	if err != nil {
		return nil, err
	}
	if res.Killed != "" {
		// A build cut short by the judge's own limits (a slow, loaded or
		// starved judge) says nothing about the patch: a missing binary
		// would then read as tampering. Judging again later is the honest
		// answer, so it is an infrastructure error.
		return nil, fmt.Errorf("crosscheck: building the test binaries before the run hit a limit (%s); judge again", res.Killed)
	}
	built := map[string]string{}
	for _, i := range strings.Fields(string(res.Stdout)) {
		if n, err := strconv.Atoi(i); err == nil && n < len(dirs) {
			built[dirs[n]] = "/procs/" + i + ".test"
		}
	}
	for i := range checks {
		checks[i].bin = built[checks[i].dir]
	}
	ws.logf("crosscheck: %d test binaries of %d built before the run in %s", len(built), len(dirs), time.Since(start).Round(time.Millisecond))
	return checks, nil
}

// goTags returns the -tags value of a go test command, so the prebuilt
// binaries are built as the run builds them.
func goTags(cmd []string) string {
	for i, a := range cmd {
		name, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case !strings.HasPrefix(a, "-") || name != "tags":
		case hasValue:
			return v
		case i+1 < len(cmd):
			return cmd[i+1]
		}
	}
	return ""
}

// goProcessCheck runs each prebuilt check alone in its own sandboxed
// process (as many at once as there are CPUs), whose exit status the host
// receives from the sandbox itself, not from output. A test the report
// passed whose process fails alone is tampering; so is a canary whose
// process does not exit as planted, or a decisive test whose binary did
// not build although the run built it.
func (ws *workspace) goProcessCheck(ctx context.Context, status map[string]string, checks []procCheck, canaries []canary) ([]string, error) {
	fail := map[string]bool{}
	for _, c := range canaries {
		fail[c.id] = c.fail
	}
	start := time.Now()
	cfg := ws.sandboxCfg(sandbox.Mount{Source: filepath.Join(ws.root, "procs"), Target: "/procs"})
	results := make([]sandbox.Result, len(checks))
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	slots := make(chan struct{}, runtime.NumCPU())
	for i, c := range checks {
		if c.bin == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			results[i], errs[i] = sandbox.Run(ctx, cfg, []string{"/bin/sh", "-c", `cd "$1" && exec "$2" -test.run "$3" -test.count=1 -test.paniconexit0`,
				"proc", c.dir, c.bin, goRunPattern(c.name)})
		}()
	}
	wg.Wait()
	var out []string
	ran := 0
	for i, c := range checks {
		if c.bin == "" {
			out = append(out, fmt.Sprintf("%s (%s): its test binary did not build before the run, yet the run reports it %s", c.name, c.dir, orAbsent(status[c.name], status[c.name] != "")))
			continue
		}
		if errs[i] != nil {
			return nil, errs[i]
		}
		res := results[i]
		ran++
		if res.Killed != "" {
			ws.logf("crosscheck: %s alone: %s; not compared", c.name, res.Killed)
			continue
		}
		want, isCanary := fail[c.name]
		if !isCanary {
			want = status[c.name] == StatusFailed
		}
		switch failed := res.ExitCode != 0; {
		case failed && !want:
			out = append(out, fmt.Sprintf("%s (%s) is %s in the report but its own process exited %d", c.name, c.dir, status[c.name], res.ExitCode))
		case !failed && want && isCanary:
			out = append(out, fmt.Sprintf("canary %s (%s), planted to fail, exited 0 in its own process", c.name, c.dir))
		}
	}
	ws.logf("crosscheck: %d decisive tests and canaries rerun one per process in %s: %d disagreements", ran, time.Since(start).Round(time.Millisecond), len(out))
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
