package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"
)

// verb is one subcommand of a command group, with the one line its
// group's help shows for it.
type verb struct{ name, summary string }

// groupHelp is returned by subcommand when the command line names a group
// but no subcommand: run prints the group's subcommands (exit 0 for
// --help, 2 when the subcommand is missing).
type groupHelp struct {
	group string
	verbs []verb
	asked bool // --help, -h or help: not a mistake
}

func (g *groupHelp) Error() string {
	return fmt.Sprintf("expected a subcommand: %s", strings.Join(verbNames(g.verbs), ", "))
}

// Unwrap makes a missing subcommand a usage error (exit 2); --help is none.
func (g *groupHelp) Unwrap() error {
	if g.asked {
		return nil
	}
	return &usageError{g.Error()}
}

func (g *groupHelp) print(w io.Writer) {
	fmt.Fprintf(w, "Usage: crucible %s <subcommand> [flags]     (crucible %s <subcommand> --help for its flags)\n\nSubcommands:\n", g.group, g.group)
	width := 0
	for _, v := range g.verbs {
		width = max(width, len(v.name))
	}
	for _, v := range g.verbs {
		fmt.Fprintf(w, "  %-*s  %s\n", width, v.name, v.summary)
	}
}

func verbNames(verbs []verb) []string {
	names := make([]string, len(verbs))
	for i, v := range verbs {
		names[i] = v.name
	}
	return names
}

// subcommand picks the first argument as a verb of the command group
// named group ("pool", "keys contributor").
func subcommand(args []string, group string, verbs ...verb) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, &groupHelp{group: group, verbs: verbs}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return "", nil, &groupHelp{group: group, verbs: verbs, asked: true}
	}
	names := verbNames(verbs)
	for _, v := range names {
		if args[0] == v {
			return v, args[1:], nil
		}
	}
	if strings.HasPrefix(args[0], "-") {
		return "", nil, usagef("expected a subcommand before the flags: %s", strings.Join(names, ", "))
	}
	return "", nil, usagef("unknown subcommand %q%s; expected one of: %s", args[0], didYouMean(args[0], names), strings.Join(names, ", "))
}

// didYouMean suggests the closest of names to a mistyped word, when it is
// close enough to be a typo (edit distance at most a third of its length,
// at least 1), as ` (did you mean "X"?)`; otherwise "".
func didYouMean(word string, names []string) string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted) // ties go to the first name alphabetically, whatever the caller's order
	best, bestDist := "", max(1, (len(word)+2)/3)+1
	for _, n := range sorted {
		if d := editDistance(word, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (command names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// versionString is the module version and the VCS commit the binary was
// built from, as the Go toolchain stamped them; "(devel)" when built
// without module version (go run, go build in the repository) and
// "unknown" when the build carries no VCS information.
func versionString() string {
	version, commit, modified := "(devel)", "unknown", false
	if info, ok := debug.ReadBuildInfo(); ok {
		if v := info.Main.Version; v != "" {
			version = v
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("crucible %s commit %s", version, commit)
}
