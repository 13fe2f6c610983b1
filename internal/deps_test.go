package internal_test

// This file states Crucible's import rules as a test, in the spirit of Go's
// go/build/deps_test.go: the package docs say which packages may not import
// which, and this test makes the build say so too. It reads every package of
// the module with go/build (no network, no go command), follows imports
// inside the module transitively and prints each violation with its import
// chain. Rules name packages as module-relative paths ("internal/store"); a
// name also covers its sub-packages unless a rule says otherwise.
//
// Violations that exist today and that open work is removing are listed in
// knownViolations, each with the reason; the test also fails when a listed
// violation is gone, so the table only shrinks.

import (
	"errors"
	"fmt"
	"go/build"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "crucible"

// ioPackages are standard-library packages that do I/O (or reach the
// process, the network, the file system or a database). Pure packages import
// none of them, directly or through another Crucible package.
var ioPackages = []string{
	"os", "os/exec", "os/signal", "os/user", "io/fs", "io/ioutil",
	"net", "net/http", "net/rpc", "net/smtp", "net/mail", "net/textproto",
	"database/sql", "database/sql/driver", "log", "log/slog", "log/syslog",
	"syscall", "plugin", "embed", "path/filepath", "runtime/debug",
}

// servicePackages run against the outside world: the store, the job queue,
// HTTP handlers, outbound clients, processes. Pure packages never reach them.
var servicePackages = []string{
	"internal/store", "internal/jobs", "internal/api", "internal/web",
	"internal/app", "internal/client", "internal/intake", "internal/pool", "internal/labeling",
	"internal/validator", "internal/consensus", "internal/weights",
	"internal/inference", "internal/egress", "internal/router", "internal/baseline",
	"internal/sandbox", "internal/seal", "internal/launcher", "internal/modelhost", "cmd",
}

// serverPackages hold the hub's state and handlers; the client side (client,
// CLI, validator node) talks to them over HTTP only. internal/api/apiv1, the
// wire types, is exempt from internal/api. The validator node
// (internal/validator/node) is the client-side process; the hub's side of
// validators is internal/consensus.
var serverPackages = []string{
	"internal/store", "internal/jobs", "internal/api", "internal/web",
	"internal/intake", "internal/pool", "internal/labeling", "internal/consensus", "internal/weights",
	"internal/seal",
}

var serverExempt = []string{"internal/api/apiv1"}

// purePackages are computation only. internal/kind is the kind contract;
// its sub-packages are kinds (kindtest, the toy kind of the tests), which
// follow the kinds' rule. internal/jsonl decodes from an io.Reader it is
// handed.
var purePackages = []string{
	"internal/competition", "internal/incentive", "internal/ledger",
	"internal/stats", "internal/kind!", "internal/eval!", "internal/eval/runner", "internal/jsonl",
}

// A rule forbids every package matched by From to reach a package matched by
// Deny (a Crucible package, or a standard-library one when Std is set) through
// non-test imports. Packages in Through are not followed: the CLI may import
// internal/app, which knows every package. A name ending in "!" matches that
// package only, not its sub-packages.
type rule struct {
	Name    string
	From    []string
	Deny    []string
	Except  []string // packages in Deny that are allowed after all
	Std     bool
	Through []string
}

var rules = []rule{
	{Name: "pure packages do no I/O", From: purePackages, Deny: ioPackages, Std: true},
	{Name: "pure packages import no service package", From: purePackages, Deny: servicePackages},
	{Name: "stats, eval, egress and sandbox depend only on the standard library",
		From: []string{"internal/stats", "internal/eval!", "internal/egress", "internal/sandbox"}, Deny: []string{"internal", "cmd"}},
	{Name: "the model launcher depends only on the standard library",
		// It runs processes; the hub wires it to submissions.
		From: []string{"internal/launcher"}, Deny: []string{"internal", "cmd"}},
	{Name: "kinds never import the store, the job queue or the API",
		From: []string{"internal/eval", "internal/kind/"}, Deny: append(slices.Clone(serverPackages), "internal/app", "cmd")},
	{Name: clientRule,
		From: []string{"internal/client", "internal/validator/node", "cmd/crucible"}, Deny: serverPackages,
		Except: serverExempt, Through: []string{"internal/app"}},
	{Name: "the model plumbing never imports the store, the job queue or a kind",
		// The baseline server serves the policies kinds provide (in their
		// …test packages); it never knows a kind itself.
		From: []string{"internal/inference", "internal/router", "internal/egress", "internal/baseline"},
		Deny: append(slices.Clone(serverPackages), "internal/eval", "internal/app", "cmd")},
	{Name: "artifact trees, facts and the model cache import no store, API, job queue or kind",
		// The hub and the workers call internal/artifact; it reads files and
		// runs the fetch tool, nothing else of Crucible's.
		From: []string{"internal/artifact"}, Deny: []string{"internal", "cmd"}},
	{Name: "the model host imports no store, API, job queue, client or kind",
		// The hub's workers and the validator node both serve artifacts
		// through it; it knows files, processes and the competition types.
		From: []string{"internal/modelhost"},
		Deny: append(slices.Clone(serverPackages), "internal/eval", "internal/kind", "internal/app", "internal/client", "cmd")},
	{Name: "the store never imports the API, the job queue or a kind",
		From: []string{"internal/store"}, Deny: []string{"internal/api", "internal/jobs", "internal/web", "internal/eval/", "internal/app", "cmd"}},
	{Name: "services never import the API, the web UI or the CLI",
		From: []string{"internal/jobs", "internal/intake", "internal/pool", "internal/weights", "internal/consensus",
			"internal/seal", "internal/labeling"},
		Deny: []string{"internal/api", "internal/web", "internal/app", "internal/client", "cmd"}, Except: serverExempt},
	{Name: "only the evaluate worker, local evaluation and the validator node run evaluations",
		From: []string{"internal/pool", "internal/intake", "internal/weights", "internal/consensus", "internal/labeling",
			"internal/seal", "internal/api", "internal/web", "internal/store", "internal/kind", "internal/competition"},
		Deny: []string{"internal/eval/runner"}},
	{Name: "only the local eval commands cache model answers: hub workers and validators ask the model",
		From: []string{"internal"}, Deny: []string{"internal/inference/respcache"}},
	{Name: webRule,
		From: []string{"internal/web"}, Deny: []string{"internal/api", "internal/jobs", "internal/eval/", "internal/app", "cmd"},
		// The mcq prompt template is a documented default the web page shows.
		Except: []string{"internal/eval/mcq"}},
}

// knownViolations are today's breaches of the rules, each removed by open
// work (issue 15). Keyed by rule name, importing package and the forbidden
// package it reaches. A listed violation that no longer exists fails the
// test: delete its line.
var knownViolations = map[violation]string{
	// The web UI and kinds (issue 15 item 2: the kind registry removes these).
	{webRule, "internal/web", "internal/eval/preference"}: "web renders preference pairs itself",
	{webRule, "internal/web", "internal/eval/kinds"}:      "through epoch and pool, which switch on the kind",
	{webRule, "internal/web", "internal/eval/roleplay"}:   "through epoch, which hard-codes roleplay",
}

const (
	clientRule = "the client, the CLI and the validator node never import server packages"
	webRule    = "the web UI never imports the API, the job queue or a kind"
)

type violation struct{ Rule, From, To string }

// matches reports whether the module-relative path p is named by pattern: the
// package itself or, unless pattern ends in "!", a sub-package. A pattern
// ending in "/" matches sub-packages only.
func matches(p, pattern string) bool {
	if exact, ok := strings.CutSuffix(pattern, "!"); ok {
		return p == exact
	}
	if strings.HasSuffix(pattern, "/") {
		return strings.HasPrefix(p, pattern)
	}
	return p == pattern || strings.HasPrefix(p, pattern+"/")
}

func matchesAny(p string, patterns []string) bool {
	return slices.ContainsFunc(patterns, func(pat string) bool { return matches(p, pat) })
}

// pkg is one package of the module: its non-test imports split into
// Crucible packages (module-relative) and standard-library ones, and every
// import of its tests.
type pkg struct {
	Local, Std, Test []string
}

// loadModule reads every package under root with go/build.
func loadModule(t *testing.T, root string) map[string]*pkg {
	t.Helper()
	pkgs := map[string]*pkg{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		bp, err := build.Default.ImportDir(path, 0)
		var noGo *build.NoGoError
		if errors.As(err, &noGo) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rel, _ := filepath.Rel(root, path)
		p := &pkg{}
		for _, imp := range bp.Imports {
			if local, ok := strings.CutPrefix(imp, module+"/"); ok {
				p.Local = append(p.Local, local)
			} else {
				p.Std = append(p.Std, imp)
			}
		}
		for _, imp := range slices.Concat(bp.TestImports, bp.XTestImports) {
			if local, ok := strings.CutPrefix(imp, module+"/"); ok {
				p.Test = append(p.Test, local)
			}
		}
		pkgs[filepath.ToSlash(rel)] = p
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// check applies one rule and returns its violations with the import chain
// (shortest first found, breadth first) that leads to each.
func check(r rule, pkgs map[string]*pkg) map[violation]string {
	found := map[violation]string{}
	deny := func(p string) bool { return matchesAny(p, r.Deny) && !matchesAny(p, r.Except) }
	for _, from := range sortedKeys(pkgs) {
		if !matchesAny(from, r.From) {
			continue
		}
		parent := map[string]string{from: ""}
		queue := []string{from}
		chain := func(p string) string {
			var c []string
			for ; p != ""; p = parent[p] {
				c = append(c, p)
			}
			slices.Reverse(c)
			return strings.Join(c, " -> ")
		}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			p := pkgs[cur]
			if p == nil {
				continue
			}
			if r.Std {
				for _, imp := range p.Std {
					v := violation{r.Name, from, imp}
					if deny(imp) && found[v] == "" {
						found[v] = chain(cur) + " -> " + imp
					}
				}
			}
			for _, imp := range p.Local {
				if _, seen := parent[imp]; seen {
					continue
				}
				parent[imp] = cur
				// A forbidden package is reported and not followed: what it
				// imports is its own business (and its own rule's).
				if !r.Std && deny(imp) {
					found[violation{r.Name, from, imp}] = chain(imp)
					continue
				}
				if !matchesAny(imp, r.Through) {
					queue = append(queue, imp)
				}
			}
		}
	}
	return found
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	return root
}

// evaluate applies rules to pkgs and returns the violations not in known
// (with their chains) and the entries of known that no longer happen.
func evaluate(pkgs map[string]*pkg, rules []rule, known map[violation]string) (broken, stale []string) {
	all := map[violation]string{}
	for _, r := range rules {
		maps.Copy(all, check(r, pkgs))
	}
	for v, c := range all {
		if _, ok := known[v]; !ok {
			broken = append(broken, fmt.Sprintf("%s: %s", v.Rule, c))
		}
	}
	for v := range known {
		if _, ok := all[v]; !ok {
			stale = append(stale, fmt.Sprintf("%s: %s -> %s", v.Rule, v.From, v.To))
		}
	}
	sort.Strings(broken)
	sort.Strings(stale)
	return broken, stale
}

func TestImportRules(t *testing.T) {
	pkgs := loadModule(t, moduleRoot(t))
	if len(pkgs) < 20 || pkgs["internal/store"] == nil || pkgs["cmd/crucible"] == nil {
		t.Fatalf("read %d packages, missing the store or the CLI: the walk is broken", len(pkgs))
	}
	broken, stale := evaluate(pkgs, rules, knownViolations)
	for _, b := range broken {
		t.Errorf("import rule broken: %s", b)
	}
	for _, s := range stale {
		t.Errorf("knownViolations lists %s, which no longer happens: delete the line", s)
	}
}

// TestImportRulesCatchViolations runs the real rules over a made-up module
// that breaks them, so a checker that silently finds nothing fails here.
func TestImportRulesCatchViolations(t *testing.T) {
	pkgs := map[string]*pkg{
		// stats reaches os through a helper; competition reaches the store.
		"internal/stats":       {Local: []string{"internal/mathx"}, Std: []string{"math"}},
		"internal/mathx":       {Std: []string{"os"}},
		"internal/competition": {Local: []string{"internal/stats", "internal/seal"}},
		"internal/seal":        {Local: []string{"internal/store"}},
		"internal/store":       {Std: []string{"database/sql"}},
		// The client imports the wire types (allowed) and the store (not).
		"internal/client":    {Local: []string{"internal/api/apiv1", "internal/store"}},
		"internal/api/apiv1": {},
		// The CLI may import app, which imports everything.
		"cmd/crucible": {Local: []string{"internal/app", "internal/client"}},
		"internal/app": {Local: []string{"internal/store", "internal/web"}},
		"internal/web": {Local: []string{"internal/eval/mcq", "internal/api"}},
		// A kind that imports the job queue.
		"internal/eval/mcq": {Local: []string{"internal/jobs"}},
		"internal/jobs":     {},
	}
	known := map[violation]string{
		{clientRule, "internal/client", "internal/store"}: "listed",
		{clientRule, "internal/client", "internal/pool"}:  "stale",
	}
	broken, stale := evaluate(pkgs, rules, known)
	want := []string{
		"kinds never import the store, the job queue or the API: internal/eval/mcq -> internal/jobs",
		"pure packages do no I/O: internal/competition -> internal/seal -> internal/store -> database/sql",
		"pure packages do no I/O: internal/competition -> internal/stats -> internal/mathx -> os",
		"pure packages do no I/O: internal/stats -> internal/mathx -> os",
		"pure packages import no service package: internal/competition -> internal/seal",
		"stats, eval, egress and sandbox depend only on the standard library: internal/stats -> internal/mathx",
		"the client, the CLI and the validator node never import server packages: cmd/crucible -> internal/client -> internal/store",
		"the web UI never imports the API, the job queue or a kind: internal/web -> internal/api",
		"the web UI never imports the API, the job queue or a kind: internal/web -> internal/eval/mcq -> internal/jobs",
	}
	if !slices.Equal(broken, want) {
		t.Errorf("broken:\n  %s\nwant:\n  %s", strings.Join(broken, "\n  "), strings.Join(want, "\n  "))
	}
	if wantStale := []string{clientRule + ": internal/client -> internal/pool"}; !slices.Equal(stale, wantStale) {
		t.Errorf("stale = %q, want %q", stale, wantStale)
	}
}

// TestNothingImportsCmd covers tests too: cmd is the top of the graph.
func TestNothingImportsCmd(t *testing.T) {
	pkgs := loadModule(t, moduleRoot(t))
	for _, from := range sortedKeys(pkgs) {
		for _, imp := range slices.Concat(pkgs[from].Local, pkgs[from].Test) {
			if matches(imp, "cmd") && !matches(from, "cmd") {
				t.Errorf("%s imports %s: nothing outside cmd imports cmd", from, imp)
			}
		}
	}
}
