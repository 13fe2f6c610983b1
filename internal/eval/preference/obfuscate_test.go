package preference

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleTasks(t *testing.T) []Task {
	t.Helper()
	g, err := NewGenerator(GeneratorConfig{Mode: ModeAnswer, Salt: "s", Now: func() time.Time { return epoch0 }})
	if err != nil {
		t.Fatal(err)
	}
	var tasks []Task
	for _, s := range DefaultSeeds() {
		task, err := g.Generate(context.Background(), "task-"+s.ID, s)
		if err != nil {
			t.Fatalf("seed %s: %v", s.ID, err)
		}
		tasks = append(tasks, task)
	}
	return tasks
}

func TestEveryMinersCopyDiffersByteWise(t *testing.T) {
	o := NewObfuscator(ObfuscatorConfig{Secret: []byte("validator secret")})
	miners := make([]string, 40)
	for i := range miners {
		miners[i] = fmt.Sprintf("miner-%02d", i)
	}
	for _, task := range sampleTasks(t) {
		copies, err := o.Copies(task, miners)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for _, c := range copies {
			key := mustJSON(t, c.View().Responses)
			if other, dup := seen[key]; dup {
				t.Fatalf("task %s: miners %s and %s got identical copies", task.ID, other, c.Miner)
			}
			seen[key] = c.Miner
			texts := copyKey(c)
			for _, d := range copies {
				if d.Miner != c.Miner && copyKey(d) == texts {
					t.Fatalf("task %s: %s and %s show the same texts", task.ID, c.Miner, d.Miner)
				}
			}
		}
	}
}

func TestTwoMinersOfATinyTaskStillGetDistinctCopies(t *testing.T) {
	task, err := NewOrganic(OrganicConfig{ID: "tiny", Instruction: "Pick.", Responses: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	miners := make([]string, 12) // more than 3! orders: redraws must kick in
	for i := range miners {
		miners[i] = fmt.Sprint("m", i)
	}
	copies, err := NewObfuscator(ObfuscatorConfig{}).Copies(task, miners)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range copies {
		if seen[copyKey(c)] {
			t.Fatalf("duplicate copy for %s", c.Miner)
		}
		seen[copyKey(c)] = true
	}
}

func TestCopiesAreDeterministicAndKeyedBySecret(t *testing.T) {
	task := sampleTasks(t)[2]
	a := NewObfuscator(ObfuscatorConfig{Secret: []byte("k1")})
	b := NewObfuscator(ObfuscatorConfig{Secret: []byte("k2")})
	first, second := mustJSON(t, a.Copy(task, "m")), mustJSON(t, a.Copy(task, "m"))
	if first != second {
		t.Error("the same miner got two different copies")
	}
	if mustJSON(t, a.Copy(task, "m").View()) == mustJSON(t, b.Copy(task, "m").View()) {
		t.Error("a different secret gave the same copy")
	}
	v := mustJSON(t, a.Copy(task, "m").View())
	if strings.Contains(v, "perm") || strings.Contains(v, "renames") || strings.Contains(v, task.Responses[0].ID) {
		t.Errorf("the view leaks the mapping or canonical ids: %s", v)
	}
}

func TestDeobfuscateMapsAMinersAnswerBackToCanonicalOrder(t *testing.T) {
	o := NewObfuscator(ObfuscatorConfig{Secret: []byte("s")})
	for _, task := range sampleTasks(t) {
		c := o.Copy(task, "m1")
		// The miner ranks by ground truth, which it sees only through the
		// shuffled texts: shown position i holds canonical Perm[i].
		shown := make([]int, len(c.Perm))
		order := make([]string, len(c.Perm))
		for i, ci := range c.Perm {
			shown[i] = task.GroundTruth[ci]
			order[task.GroundTruth[ci]-1] = c.Responses[i].ID
		}
		got, err := Deobfuscate(c, shown)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(task.GroundTruth) {
			t.Errorf("task %s: deobfuscated %v, want %v", task.ID, got, task.GroundTruth)
		}
		byID, err := DeobfuscateIDs(c, order)
		if err != nil || fmt.Sprint(byID) != fmt.Sprint(task.GroundTruth) {
			t.Errorf("task %s: by ids %v (%v), want %v", task.ID, byID, err, task.GroundTruth)
		}
	}
}

func TestDeobfuscateRejectsMalformedAnswers(t *testing.T) {
	task := sampleTasks(t)[0]
	c := NewObfuscator(ObfuscatorConfig{}).Copy(task, "m")
	scored := c
	scored.Criteria = CriteriaScore
	tests := []struct {
		name   string
		c      Copy
		values []int
		want   string
	}{
		{"too few ranks", c, []int{1, 2}, "2 values for 5"},
		{"a repeated rank", c, []int{1, 1, 2, 3, 4}, "given twice"},
		{"a rank out of range", c, []int{1, 2, 3, 4, 6}, "outside 1..5"},
		{"a score out of range", scored, []int{1, 2, 3, 4, 11}, "outside 1..10"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Deobfuscate(tc.c, tc.values); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := DeobfuscateIDs(c, []string{"x", "y", "z", "u", "v"}); err == nil {
		t.Error("unknown ids accepted")
	}
}

func TestTokenizeLosesNothing(t *testing.T) {
	for _, src := range []string{pySnippet, jsSnippet, goSnippet, "x = '''a\n'b'''\n# c", "a = `x ${y}`; b = /a,b/g.test(c) / 2"} {
		for _, lang := range []string{langPython, langJS, langGo} {
			if got := joinTokens(tokenize(src, lang)); got != src {
				t.Errorf("%s: round trip changed the source", lang)
			}
		}
	}
}

func TestRenamingIsConsistentAndLeavesUnsafeNamesAlone(t *testing.T) {
	tests := []struct {
		name, lang, code string
		renamed, kept    []string
	}{
		{name: "python locals and parameters are renamed, kwargs and attributes kept", lang: langPython, code: pySnippet,
			renamed: []string{"values", "item", "acc", "idx"}, kept: []string{"scale", "label", "count_words", "name", "upper", "factor", "total"}},
		{name: "javascript locals are renamed, object keys and shorthand kept", lang: langJS, code: jsSnippet,
			renamed: []string{"timer", "args", "items", "result", "wait2"}, kept: []string{"key", "count", "debounce", "first"}},
		{name: "go locals are renamed, fields and methods kept", lang: langGo, code: goSnippet,
			renamed: []string{"total", "values", "v", "s"}, kept: []string{"Sum", "items", "Push", "name"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, renames := renameCode(tc.code, tc.lang, rand.New(rand.NewPCG(1, 2)))
			for _, n := range tc.renamed {
				if _, ok := renames[n]; !ok {
					t.Errorf("%s not renamed (renames %v)", n, renames)
				}
			}
			for _, n := range tc.kept {
				if r, ok := renames[n]; ok {
					t.Errorf("%s renamed to %s", n, r)
				}
			}
		})
	}
}

// TestObfuscatedCodeBehavesTheSame runs each snippet before and after
// obfuscation (with several seeds) and compares the output. It needs
// python3, node and go on PATH and skips the languages that are missing.
func TestObfuscatedCodeBehavesTheSame(t *testing.T) {
	tests := []struct {
		name, lang, tool, file, code string
		args                         []string
	}{
		{name: "python", lang: langPython, tool: "python3", file: "main.py", code: pySnippet + pyMain},
		{name: "javascript", lang: langJS, tool: "node", file: "main.js", code: jsSnippet + jsMain},
		{name: "go", lang: langGo, tool: "go", file: "main.go", code: goSnippet + goMain, args: []string{"run"}},
	}
	for _, tc := range tests {
		t.Run(tc.name+" output is unchanged", func(t *testing.T) {
			if _, err := exec.LookPath(tc.tool); err != nil {
				t.Skipf("%s not installed", tc.tool)
			}
			if tc.tool == "go" && testing.Short() {
				t.Skip("go run is slow; skipped with -short")
			}
			want := runSnippet(t, tc.tool, tc.args, tc.file, tc.code)
			seeds := 8
			if tc.tool == "go" {
				seeds = 2
			}
			for s := range seeds {
				text := "```" + tc.lang + "\n" + tc.code + "```\n"
				got, renames := obfuscateText(text, rand.New(rand.NewPCG(uint64(s), 7)))
				if len(renames) == 0 {
					t.Fatalf("seed %d: nothing renamed", s)
				}
				segs := splitFences(got)
				if len(segs) != 1 || !segs[0].code {
					t.Fatalf("seed %d: fences broken: %q", s, got)
				}
				if segs[0].body == tc.code {
					t.Fatalf("seed %d: code unchanged", s)
				}
				if out := runSnippet(t, tc.tool, tc.args, tc.file, segs[0].body); out != want {
					t.Errorf("seed %d (renames %v): output\n%s\nwant\n%s\ncode:\n%s", s, renames, out, want, segs[0].body)
				}
			}
		})
	}
}

func runSnippet(t *testing.T, tool string, args []string, file, code string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool, append(args, p)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s\ncode:\n%s", tool, file, err, out.String(), code)
	}
	return out.String()
}

const pySnippet = `import math
from collections import Counter


class Box:
    label = "box"

    def __init__(self, name):
        self.name = name

    def upper(self):
        return self.name.upper()


def scale(x, factor=2):
    return x * factor


def count_words(text, limit=None):
    """Count words; text is split on whitespace."""
    acc = {}
    for item in text.lower().split():
        acc[item] = acc.get(item, 0) + 1
    return acc


def summarise(values):
    total = 0
    for idx, value in enumerate(values):  # value is added
        total += value * idx
    squares = [v * v for v in values if v % 2 == 0]
    pick = lambda a, b: a if a > b else b
    label = f"{total}"
    return total, squares, pick(total, 3), scale(total, factor=3), label, math.sqrt(16)
`

const pyMain = `

values = [1, 2, 3, 4]
print(summarise(values))
print(count_words("a b A c", limit=2))
print(Box("x").upper(), Box.label, Counter("aab")["a"])
`

const jsSnippet = `function debounce(fn, wait2) {
  let timer = null;
  return function (...args) {
    clearTimeout(timer);
    timer = setTimeout(() => fn.apply(this, args), wait2);
  };
}

function tally(items) {
  const result = [];
  const seen = {};
  let count = 0;
  for (let i = 0; i < items.length; i++) {
    const key = typeof items[i] + ':' + items[i];
    if (!seen[key]) {
      seen[key] = true;
      result.push(items[i]);
      count++;
    }
  }
  const summary = { count, first: result[0], key: 'k' };
  const doubled = result.map((x, j) => x * 2 + j);
  const re = /a,b/g;
  return [result, summary, doubled, re.test('a,b'), ` + "`n=${count}`" + `];
}
`

const jsMain = `
console.log(JSON.stringify(tally([1, 2, 2, 'a', 'a', 3])));
debounce((v) => console.log('fired', v), 1)('once');
`

const goSnippet = `package main

import "fmt"

type stack struct {
	items []int
	name  string
}

func (s *stack) Push(v int) {
	s.items = append(s.items, v)
}

func Sum(values []int, scale int) int {
	total := 0
	for _, v := range values {
		if v%2 == 0 {
			total += v * scale
		}
	}
	return total
}

func describe() string {
	st := &stack{name: "s"}
	for i := 0; i < 3; i++ {
		st.Push(i)
	}
	add := func(a, b int) int { return a + b }
	return fmt.Sprintf("%v %s %d", st.items, st.name, add(len(st.items), 1))
}
`

const goMain = `
func main() {
	fmt.Println(Sum([]int{1, 2, 3, 4}, 3))
	fmt.Println(describe())
}
`

func TestProseVariationsOnlyTouchWhitespaceAndBulletMarkers(t *testing.T) {
	norm := func(s string) string {
		s = bulletRE.ReplaceAllString(s, "${1}- ")
		return strings.Join(strings.Fields(s), " ")
	}
	o := NewObfuscator(ObfuscatorConfig{Secret: []byte("p")})
	for _, task := range sampleTasks(t) {
		if strings.Contains(task.Responses[0].Text, "```") {
			continue
		}
		for _, m := range []string{"a", "b", "c"} {
			c := o.Copy(task, m)
			for i, ci := range c.Perm {
				if got, want := norm(c.Responses[i].Text), norm(task.Responses[ci].Text); got != want {
					t.Fatalf("task %s miner %s: variation changed words:\n%q\n%q", task.ID, m, got, want)
				}
			}
		}
	}
}
