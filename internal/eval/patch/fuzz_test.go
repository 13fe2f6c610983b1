package patch

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"crucible/internal/sandbox"
)

// Native fuzz tests of everything the patch kind parses from competitors
// and tasks. Seeds are added here and kept under testdata/fuzz/<name>.
// Each checks invariants, not only the absence of a panic.

const seedDiff = "diff --git a/calc.go b/calc.go\nindex 1111111..2222222 100644\n--- a/calc.go\n+++ b/calc.go\n@@ -1,2 +1,2 @@\n package calc\n-func A() int { return 1 }\n+func A() int { return 2 }\n"

func FuzzDiff(f *testing.F) {
	f.Add(seedDiff)
	f.Add("diff --git a/tests b/tests\nnew file mode 120000\n--- /dev/null\n+++ b/tests\n@@ -0,0 +1 @@\n+/etc\n\\ No newline at end of file\n")
	f.Add("diff --git a/x b/y\nsimilarity index 100%\nrename from x\nrename to y\n")
	f.Add("--- a/f.py\r\n+++ b/f.py\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\nnew mode 160000\r\n")
	f.Add(newFileDiff("calc.py", "import os\nclass C:\n    x = (1,\n  '''\n\"\n    os._exit(0))\n\ndef f(): g()\nf()\n"))
	f.Add(newFileDiff("calc.go", "package calc\n\nimport \"os\"\n\nvar _ = func() int { os.Exit(0); return 0 }()\n"))
	f.Fuzz(func(t *testing.T, diff string) {
		// The policy screen: deterministic, only known rules, nothing
		// reported when every rule is allowed, over the diff and over the
		// files its added lines would make.
		pv := screenPolicy(diff, Policy{})
		if !reflect.DeepEqual(pv, screenPolicy(diff, Policy{})) {
			t.Fatal("screenPolicy is not deterministic")
		}
		want, added := appliedTargets(diff)
		post := map[string][]byte{}
		for _, c := range parseChanges(diff) {
			var b strings.Builder
			for _, l := range c.added {
				b.WriteString(l.text + "\n")
			}
			for _, name := range c.paths {
				post[name] = []byte(b.String())
			}
		}
		for _, v := range append(pv, screenFiles(Policy{}, want, added, post, true)...) {
			if _, ok := ruleReasons[v.Rule]; !ok || v.Reason == "" || v.File == "" {
				t.Fatalf("violation %+v", v)
			}
		}
		all := Policy{Allow: PolicyRules()}
		if pv := append(screenPolicy(diff, all), screenFiles(all, want, added, post, false)...); len(pv) > 0 {
			t.Fatalf("allowed rules reported: %v", pv)
		}
		files := diffFiles(diff)
		if !reflect.DeepEqual(files, diffFiles(diff)) {
			t.Fatal("diffFiles is not deterministic")
		}
		if !sort.StringsAreSorted(files) {
			t.Fatalf("diffFiles not sorted: %q", files)
		}
		for i := 1; i < len(files); i++ {
			if files[i] == files[i-1] {
				t.Fatalf("diffFiles repeats %q", files[i])
			}
		}
		if len(files) > strings.Count(diff, "\n")+1 {
			t.Fatalf("%d files from %d lines", len(files), strings.Count(diff, "\n")+1)
		}
		why := screenDiff(diff)
		if why != screenDiff(diff) {
			t.Fatal("screenDiff is not deterministic")
		}
		if len(why) > 1000 {
			t.Fatalf("screenDiff reason of %d bytes", len(why))
		}
		// Any header that adds something other than a regular file is refused.
		for _, line := range strings.Split(diff, "\n") {
			line = strings.TrimRight(line, "\r")
			for _, h := range []string{"new file mode ", "new mode "} {
				if m, ok := strings.CutPrefix(line, h); ok && why == "" {
					if m = strings.TrimSpace(m); m != "100644" && m != "100755" {
						t.Fatalf("accepted %q", line)
					}
				}
			}
		}
	})
}

func FuzzParseTasks(f *testing.F) {
	f.Add([]byte(`{"instance_id":"a-1","repo":"r.bundle","base_commit":"abc","test_cmd":"go test ./...","log_parser":"gotest","FAIL_TO_PASS":"[\"TestA\"]","PASS_TO_PASS":[]}` + "\n\n"))
	f.Add([]byte(`{"instance_id":"b","repo":"r","base_commit":"c","test_cmd":["python3","-m","pytest"],"log_parser":"pytest","created_at":"2026-01-02T03:04:05+02:00"}`))
	f.Add([]byte(`{"instance_id":"c","repo":"r","base_commit":"c","test_cmd":"","log_parser":"gotest"}`))
	f.Add([]byte("{\"instance_id\":1}\n\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tasks, err := ParseTasks(bytes.NewReader(data))
		tasks2, err2 := ParseTasks(bytes.NewReader(data))
		if (err == nil) != (err2 == nil) || len(tasks) != len(tasks2) {
			t.Fatal("ParseTasks is not deterministic")
		}
		if err != nil {
			if tasks != nil {
				t.Fatalf("tasks returned with error %v", err)
			}
			return
		}
		if len(tasks) > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("%d tasks from %d lines", len(tasks), bytes.Count(data, []byte("\n"))+1)
		}
		for _, task := range tasks {
			if err := task.Validate(); err != nil {
				t.Fatalf("accepted an invalid task: %v", err)
			}
			// A parsed task survives a round trip through its JSONL form.
			line, err := json.Marshal(task)
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseTasks(bytes.NewReader(line))
			if err != nil || len(again) != 1 {
				t.Fatalf("round trip of %s: %v", line, err)
			}
			if line2, _ := json.Marshal(again[0]); !bytes.Equal(line, line2) {
				t.Fatalf("round trip changed the task:\n%s\n%s", line, line2)
			}
		}
	})
}

var statuses = map[string]bool{StatusPassed: true, StatusFailed: true, StatusSkipped: true, StatusError: true, StatusXFail: true}

func FuzzParseGoTest(f *testing.F) {
	f.Add([]byte(`{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- PASS: TestB\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"fail","Package":"q","Test":"TestA"}
{"Action":"fail","Package":"r"}
`))
	f.Add([]byte("--- PASS: TestX (0.00s)\n{\"Action\":\"skip\",\"Test\":\"TestS\"}\n{\"Action\":"))
	f.Fuzz(func(t *testing.T, stdout []byte) {
		status, notes := parseGoTest(stdout)
		status2, notes2 := parseGoTest(stdout)
		if !reflect.DeepEqual(status, status2) || !reflect.DeepEqual(notes, notes2) {
			t.Fatal("parseGoTest is not deterministic")
		}
		if len(status) > bytes.Count(stdout, []byte("\n"))+1 {
			t.Fatalf("%d statuses from %d lines", len(status), bytes.Count(stdout, []byte("\n"))+1)
		}
		for name, s := range status {
			if !statuses[s] || name == "" {
				t.Fatalf("status %q for %q", s, name)
			}
		}
	})
}

func FuzzParsePytest(f *testing.F) {
	f.Add([]byte("test_a.py::test_x PASSED\n===== short test summary info =====\nPASSED test_a.py::test_x\nFAILED test_a.py::test_y - assert\nXPASS test_a.py::test_z\n===== 1 passed =====\n"),
		[]byte(`<?xml version="1.0"?><testsuites><testsuite><testcase classname="test_a" name="test_x"/><testcase classname="test_a" name="test_y"><failure/></testcase></testsuite></testsuites>`))
	f.Add([]byte("= short test summary info =\nPASSED d/t.py::C::test[p]\n"),
		[]byte(`<testsuite><testcase classname="d.t.C" name="test[p]"><skipped/></testcase></testsuite>`))
	f.Add([]byte("PASSED x\n"), []byte("<testsuite><testsuite><testsuite>"))
	f.Fuzz(func(t *testing.T, stdout, junit []byte) {
		status, notes := parsePytest(stdout, junit)
		status2, notes2 := parsePytest(stdout, junit)
		if !reflect.DeepEqual(status, status2) || !reflect.DeepEqual(notes, notes2) {
			t.Fatal("parsePytest is not deterministic")
		}
		if len(status) > bytes.Count(stdout, []byte("\n"))+1 {
			t.Fatalf("%d statuses from %d lines", len(status), bytes.Count(stdout, []byte("\n"))+1)
		}
		report, _ := parseJUnit(junit)
		for id, s := range status {
			if !statuses[s] {
				t.Fatalf("status %q for %q", s, id)
			}
			// Nothing passes that the JUnit report does not confirm.
			if s == StatusPassed && report[junitKey(id)] != StatusPassed {
				t.Fatalf("%s PASSED but the report says %q", id, report[junitKey(id)])
			}
		}
	})
}

func FuzzPytestCrossCheck(f *testing.F) {
	f.Add([]byte(`{"kind":"phase","nodeid":"t.py::test_a","when":"call","outcome":"passed","xfail":false}`+"\n"+`{"kind":"exit","code":0}`),
		[]byte("= short test summary info =\nPASSED t.py::test_a\n"), []byte(`<testsuite><testcase classname="t" name="test_a"/></testsuite>`), 0)
	f.Add([]byte(`{"kind":"phase","nodeid":"t.py::test_a b","when":"setup","outcome":"failed","xfail":true}`+"\n"+`{"kind":"tampered","why":"x"}`),
		[]byte("PASSED t.py::test_a\n"), []byte(`<testsuite><testcase classname="t" name="test_a b"><error/></testcase></testsuite>`), 1)
	f.Fuzz(func(t *testing.T, rec, stdout, junit []byte, exit int) {
		res := sandbox.Result{ExitCode: exit}
		got := pytestCrossCheck(rec, res, pytestSummaryView(stdout), junit)
		if !reflect.DeepEqual(got, pytestCrossCheck(rec, res, pytestSummaryView(stdout), junit)) {
			t.Fatal("pytestCrossCheck is not deterministic")
		}
		plugin, _, _ := harnessView(rec)
		report, _ := parseJUnit(junit)
		for id, s := range plugin {
			if !statuses[s] && s != statusXPass {
				t.Fatalf("status %q for %q", s, id)
			}
			// A pass only the record claims is always a finding.
			if s == StatusPassed && report[junitKey(id)] != StatusPassed && len(got) == 0 {
				t.Fatalf("%s passed per the record only, yet no disagreement", id)
			}
		}
	})
}
