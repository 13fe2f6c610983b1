package main

import (
	"regexp"
	"sort"
	"strings"
	"testing"
)

// flagLine is a flag's first line in --help: "  -name ARG".
var flagLine = regexp.MustCompile(`^  -([a-z0-9-]+)(?: (.*))?$`)

// helpFlags reads the flags a --help text lists: name → the argument name
// and the usage text after it.
func helpFlags(text string) map[string][2]string {
	flags := map[string][2]string{}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		m := flagLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		var usage []string
		for _, u := range lines[i+1:] {
			if !strings.HasPrefix(u, "    \t") {
				break
			}
			usage = append(usage, strings.TrimPrefix(u, "    \t"))
		}
		flags[m[1]] = [2]string{m[2], strings.Join(usage, " ")}
	}
	return flags
}

// groupVerbs reads the subcommands a group's help lists.
func groupVerbs(text string) []string {
	_, list, ok := strings.Cut(text, "Subcommands:\n")
	if !ok {
		return nil
	}
	var verbs []string
	for _, l := range strings.Split(list, "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(l, "  ") {
			verbs = append(verbs, f[0])
		}
	}
	return verbs
}

// Every command and subcommand answers --help with exit 0, and the flags
// speak one vocabulary: --server for the hub (--hub only as an alias),
// --key for the key that signs, argument names without spaces.
func TestEveryCommandsHelpUsesOneVocabulary(t *testing.T) {
	names := make([]string, 0, len(commands()))
	for n := range commands() {
		names = append(names, n)
	}
	sort.Strings(names)
	queue := make([][]string, 0, len(names))
	for _, n := range names {
		queue = append(queue, []string{n})
	}
	helped := 0
	for len(queue) > 0 {
		cmd := queue[0]
		queue = queue[1:]
		stdout, stderr, code := crucible(t, append(append([]string(nil), cmd...), "--help")...)
		name := strings.Join(cmd, " ")
		if code != 0 {
			t.Errorf("%s --help: exit %d, %q", name, code, stderr)
			continue
		}
		helped++
		if verbs := groupVerbs(stdout); verbs != nil {
			for _, v := range verbs {
				queue = append(queue, append(append([]string(nil), cmd...), v))
			}
			for _, l := range strings.Split(stdout[strings.Index(stdout, "Subcommands:"):], "\n")[1:] {
				if f := strings.Fields(l); len(f) == 1 {
					t.Errorf("%s --help: subcommand %s without its one line", name, f[0])
				}
			}
			continue
		}
		text := stdout + stderr
		flags := helpFlags(text)
		if len(flags) == 0 && !strings.Contains(text, "Usage: crucible") {
			t.Errorf("%s --help lists no flags and no usage:\n%s", name, text)
		}
		for flag, f := range flags {
			arg, usage := f[0], f[1]
			alias := strings.HasPrefix(usage, "alias of --") || strings.HasPrefix(usage, "deprecated alias of --")
			if strings.Contains(arg, " ") {
				t.Errorf("%s: -%s has the argument name %q: a back-quoted phrase in its usage", name, flag, arg)
			}
			if flag == "hub" && !strings.HasPrefix(usage, "alias of --server") {
				t.Errorf("%s: --hub is not an alias of --server: %q", name, usage)
			}
			keyFile := strings.Contains(usage, "key file") || strings.Contains(usage, "sign")
			if strings.HasSuffix(flag, "-key") && keyFile && flag != "admin-key" && !alias {
				t.Errorf("%s: --%s names a key but is not --key (%q)", name, flag, usage)
			}
			if flag == "key" && !alias && (strings.Contains(usage, "dataset") || strings.Contains(usage, "answers")) {
				t.Errorf("%s: --key is not the signing key: %q", name, usage)
			}
			if strings.Contains(usage, "signs") && flag != "key" && !alias {
				t.Errorf("%s: --%s signs requests but is not --key: %q", name, flag, usage)
			}
			if strings.Contains(usage, "KEYID") && !strings.Contains(usage, "key file") {
				t.Errorf("%s: --%s takes a key id but not a key file: %q", name, flag, usage)
			}
		}
	}
	_, stderr, _ := crucible(t, "competition", "create", "--help")
	for _, k := range cliKinds().Names() {
		if kinds := helpFlags(stderr)["kind"][1]; !strings.Contains(kinds, k) {
			t.Errorf("competition create --help: --kind %q does not list kind %s", kinds, k)
		}
	}
	if helped < 60 {
		t.Errorf("%d commands and subcommands answered --help; the walk missed some", helped)
	}
}

func TestGroupsListTheirSubcommandsAndTyposGetASuggestion(t *testing.T) {
	stdout, _, code := crucible(t, "pool", "--help")
	if code != 0 || len(groupVerbs(stdout)) != 6 || !strings.Contains(stdout, "join ") {
		t.Fatalf("pool --help: exit %d, %q; want its 6 subcommands and exit 0", code, stdout)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"pool"}, "Subcommands:"},
		{[]string{"leaderbord"}, `unknown command "leaderbord" (did you mean "leaderboard"?)`},
		{[]string{"pool", "stauts"}, `unknown subcommand "stauts" (did you mean "status"?)`},
		{[]string{"keys", "contributor", "revoek"}, `(did you mean "revoke"?)`},
	} {
		if _, stderr, code := crucible(t, tt.args...); code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
	if _, stderr, _ := crucible(t, "zzzzzz"); strings.Contains(stderr, "did you mean") {
		t.Errorf("a word like no command gets a suggestion: %q", stderr)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		stdout, stderr, code := crucible(t, args...)
		if code != 0 || !regexp.MustCompile(`^crucible \S+ commit \S+`).MatchString(stdout) {
			t.Errorf("%v: exit %d, %q %q; want the module version and commit", args, code, stdout, stderr)
		}
	}
}

// An alias given on the command line wins over the environment, as its
// flag would; a deprecated alias still works and says what to use.
func TestAliasesActAsTheirFlag(t *testing.T) {
	t.Setenv("CRUCIBLE_SERVER", "http://from-env:1")
	var notice strings.Builder
	fs := newFlags("t", "test", "", &notice)
	server := fs.String("server", "http://default:1", "the hub's URL")
	answers := fs.String("answers", "", "answers")
	addAlias(fs, "hub", "server", nil)
	addAlias(fs, "key", "answers", &notice)
	if err := parse(fs, []string{"--hub", "http://given:1", "--key", "a.jsonl"}); err != nil {
		t.Fatal(err)
	}
	if *server != "http://given:1" || *answers != "a.jsonl" {
		t.Errorf("server %q, answers %q: want the aliases' values", *server, *answers)
	}
	if notice.String() != "crucible: --key is deprecated; use --answers instead\n" {
		t.Errorf("notice %q", notice.String())
	}
}
