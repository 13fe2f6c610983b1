package patch

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// testdata/difflib_ratio.jsonl holds [a, b, ratio] triples computed with
// Python 3.11.7: difflib.SequenceMatcher(None, a, b, autojunk=False).ratio().
func TestSequenceRatioMatchesPythonDifflib(t *testing.T) {
	f, err := os.Open("testdata/difflib_ratio.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var row []any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		a, b, want := row[0].(string), row[1].(string), row[2].(float64)
		if got := SequenceRatio(a, b); math.Abs(got-want) > 1e-12 {
			t.Errorf("SequenceRatio(%.30q, %.30q) = %v, want %v", a, b, got, want)
		}
		n++
	}
	if n < 8 {
		t.Fatalf("only %d golden cases", n)
	}
}

const refDiff = `diff --git a/calc.go b/calc.go
index 1111111..2222222 100644
--- a/calc.go
+++ b/calc.go
@@ -3,3 +3,3 @@ package calc
 func Add(a, b int) int {
-	return a - b
+	return a + b
 }
`

func TestPatchSimilarity(t *testing.T) {
	other := strings.ReplaceAll(refDiff, "calc.go", "other.go")
	shifted := strings.ReplaceAll(strings.ReplaceAll(refDiff, "@@ -3,3 +3,3 @@", "@@ -10,3 +10,3 @@"), "index 1111111..2222222", "index 3333333..4444444")
	tests := []struct {
		name string
		a, b string
		want float64
	}{
		{name: "identical patches score 1", a: refDiff, b: refDiff, want: 1},
		{name: "line numbers and index hashes do not matter", a: shifted, b: refDiff, want: 1},
		{name: "a file on one side only scores 0", a: other, b: refDiff, want: 0},
		{name: "two files where one matches average to one half", a: refDiff + other, b: refDiff, want: 0.5},
		{name: "two empty patches are identical", a: "", b: "", want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PatchSimilarity(tt.a, tt.b); math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("PatchSimilarity = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCorrectness(t *testing.T) {
	tests := []struct {
		name     string
		f2p, p2p map[string]string
		want     float64
	}{
		{name: "all tests passing is resolved", f2p: map[string]string{"A": StatusPassed}, p2p: map[string]string{"B": StatusPassed}, want: 1},
		{name: "half the fail-to-pass tests passing is a quarter", f2p: map[string]string{"A": StatusPassed, "C": StatusFailed}, p2p: map[string]string{"B": StatusPassed}, want: 0.25},
		{name: "a broken pass-to-pass test zeroes the score", f2p: map[string]string{"A": StatusPassed}, p2p: map[string]string{"B": StatusFailed}, want: 0},
		{name: "a missing test does not pass", f2p: map[string]string{"A": StatusMissing}, want: 0},
		{name: "empty lists count as passing", want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Correctness(tt.f2p, tt.p2p); got != tt.want {
				t.Fatalf("Correctness = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScore(t *testing.T) {
	tests := []struct {
		name string
		c    Components
		want float64
	}{
		{name: "a perfect patch scores 1", c: Components{1, 1, 1, 1}, want: 1},
		{name: "a resolved patch with nothing else scores the correctness weight", c: Components{1, 0, 0, 0}, want: 0.7},
		{name: "a wrong patch scores 0 however similar", c: Components{0, 1, 1, 1}, want: 0},
		{name: "the best partial patch scores one half", c: Components{0.5, 1, 1, 1}, want: 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Score(tt.c, Weights{}); math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("Score = %v, want %v", got, tt.want)
			}
		})
	}
	if worst, best := Score(Components{1, 0, 0, 0}, Weights{}), Score(Components{0.5 * 0.99, 1, 1, 1}, Weights{}); worst <= best {
		t.Fatalf("a resolved patch (%v) must outrank any partial one (%v)", worst, best)
	}
}

func TestTimelinessAndConciseness(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := Timeliness(created, created.Add(30*24*time.Hour), 30*24*time.Hour); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("timeliness after one half-life = %v, want 0.5", got)
	}
	if got := Timeliness(created, created.Add(-time.Hour), time.Hour); got != 1 {
		t.Errorf("timeliness before publication = %v, want 1", got)
	}
	if got := Conciseness(refDiff, refDiff); got != 1 {
		t.Errorf("conciseness of the reference = %v, want 1", got)
	}
	big := refDiff + strings.Replace(refDiff, "calc.go", "x.go", -1) + strings.Replace(refDiff, "calc.go", "y.go", -1)
	if got := Conciseness(big, refDiff); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("conciseness at 3x the reference = %v, want 0.5", got)
	}
	if got := Conciseness("", refDiff); got != 0 {
		t.Errorf("conciseness of an empty patch = %v, want 0", got)
	}
}

func TestParseTasks(t *testing.T) {
	good := `{"instance_id":"a-1","repo":"/r","base_commit":"abc","FAIL_TO_PASS":"[\"TestA\"]","PASS_TO_PASS":["TestB"],"test_cmd":"go test ./...","log_parser":"gotest","created_at":"2023-01-04T01:42:58Z"}

{"instance_id":"a-2","repo":"/r","base_commit":"abc","FAIL_TO_PASS":[],"PASS_TO_PASS":"[]","test_cmd":["python3","-m","pytest"],"log_parser":"pytest"}
`
	tasks, err := ParseTasks(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 2 || tasks[0].FailToPass[0] != "TestA" || tasks[0].PassToPass[0] != "TestB" ||
		strings.Join(tasks[0].TestCmd, " ") != "go test ./..." || tasks[1].TestCmd[2] != "pytest" {
		t.Fatalf("parsed %+v", tasks)
	}
	bad := []struct {
		name, input, want string
	}{
		{name: "invalid JSON names its line", input: "\n\n{oops\n", want: "line 3"},
		{name: "an unknown log parser is rejected", input: `{"instance_id":"x","repo":"/r","base_commit":"a","test_cmd":"x","log_parser":"junit"}`, want: "line 1: task x: log_parser"},
		{name: "a missing base commit is rejected", input: `{"instance_id":"x","repo":"/r","test_cmd":"x","log_parser":"gotest"}`, want: "missing base_commit"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTasks(strings.NewReader(tt.input))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestIsTestPath(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"calc.go", false}, {"calc_test.go", true}, {"pkg/testdata/in.txt", true}, {"conftest.py", true},
		{"sub/conftest.py", true}, {"test_calc.py", true}, {"tests/helpers.py", true}, {"calc.py", false},
		{"go.work", true}, {"evil.pth", true}, {"latest/x.go", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := isTestPath(tt.path); got != tt.want {
				t.Fatalf("isTestPath(%q) = %v", tt.path, got)
			}
		})
	}
}

func TestParseGoTestIgnoresPrintedResults(t *testing.T) {
	out := `{"Action":"run","Package":"calc","Test":"TestAdd"}
{"Action":"output","Package":"calc","Test":"TestAdd","Output":"--- PASS: TestAdd (0.00s)\n"}
--- PASS: TestAdd (0.00s)
{"Action":"fail","Package":"calc","Test":"TestAdd"}
{"Action":"pass","Package":"calc","Test":"TestSub"}
{"Action":"pass","Package":"other","Test":"TestX"}
{"Action":"fail","Package":"other"}
`
	st, notes := parseGoTest([]byte(out))
	want := map[string]string{"TestAdd": StatusFailed, "TestSub": StatusPassed, "TestX": StatusFailed}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("%s = %q, want %q", k, st[k], v)
		}
	}
	if len(notes) != 1 {
		t.Errorf("notes = %q, want one about package other", notes)
	}
}

// A task mined from a ten-year-old commit and published today is worth
// full time credit to whoever fixes it today: Timeliness runs from the
// publication (JudgeConfig.Published), not from the fix commit's date.
func TestTimelinessMeasuresTheCompetitorsTime(t *testing.T) {
	published := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	task := Task{InstanceID: "t", Patch: "x", CreatedAt: published.AddDate(-10, 0, 0)}
	for _, tt := range []struct {
		after time.Duration
		want  float64
	}{{0, 1}, {time.Hour, math.Pow(0.5, 1.0/(30*24))}, {30 * 24 * time.Hour, 0.5}} {
		cfg := JudgeConfig{Published: published, Now: func() time.Time { return published.Add(tt.after) }}
		v := finish(Verdict{}, cfg, task, "x")
		if math.Abs(v.Components.Timeliness-tt.want) > 1e-9 {
			t.Errorf("submitted %v after publication: timeliness %v, want %v", tt.after, v.Components.Timeliness, tt.want)
		}
	}
}
