package web

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"crucible/internal/eval"
)

// TestPatchVerdictNamesTamperingAndPolicyRefusals checks that a page never
// shows a forged run or a refused patch as a plain "unresolved": the
// judge's Detail says which, and the page says it too.
func TestPatchVerdictNamesTamperingAndPolicyRefusals(t *testing.T) {
	for _, tt := range []struct{ detail, want string }{
		{`{"applied":true,"resolved":true,"FAIL_TO_PASS":{"TestAdd":"PASSED"}}`, "resolved"},
		{`{"applied":true,"tampered":true,"reason":"tampered: canary","FAIL_TO_PASS":{"TestAdd":"PASSED"}}`, "tampered"},
		{`{"applied":false,"policy_violations":[{"rule":"go-init-exit"}],"FAIL_TO_PASS":{}}`, "refused by policy"},
		{`{"applied":false,"FAIL_TO_PASS":{}}`, "not applied"},
		{`{"applied":true,"FAIL_TO_PASS":{"TestAdd":"FAILED"}}`, "unresolved"},
	} {
		v := patchViewOf([]eval.Result{{Detail: json.RawMessage(tt.detail)}})
		if v == nil || v.Verdict != tt.want {
			t.Errorf("detail %s: verdict %+v, want %q", tt.detail, v, tt.want)
		}
	}
}

// A diff is coloured by line (files, hunks, additions, deletions) and
// bounded; the judge's log keeps its last lines, each clipped.
func TestDiffLinesAndTheLogAreClassedAndBounded(t *testing.T) {
	lines, more := diffLines("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n same\n")
	want := []string{"file", "file", "file", "hunk", "del", "add", ""}
	if more != 0 || len(lines) != len(want) {
		t.Fatalf("lines %+v, more %d", lines, more)
	}
	for i, w := range want {
		if lines[i].Class != w {
			t.Errorf("line %q: class %q, want %q", lines[i].Text, lines[i].Class, w)
		}
	}
	huge := strings.Repeat("+x\n", maxDiffLines+7)
	if lines, more := diffLines(huge); len(lines) != maxDiffLines || more != 7 {
		t.Errorf("a long diff: %d lines, %d more; want %d and 7", len(lines), more, maxDiffLines)
	}
	// A submitted diff can be megabytes of short lines: the page's work
	// is bounded by the lines it shows, not by the diff's (the bytes
	// allocated are counted, not timed).
	const lots = 1 << 20
	long := strings.Repeat("+x\n", lots)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	lines, more = diffLines(long)
	runtime.ReadMemStats(&ms)
	if len(lines) != maxDiffLines || more != lots-maxDiffLines {
		t.Errorf("a diff of %d lines: %d lines, %d more", lots, len(lines), more)
	}
	if got := ms.TotalAlloc - before; got > 1<<20 {
		t.Errorf("colouring %d of a diff's %d lines allocated %d bytes", maxDiffLines, lots, got)
	}
	log := make([]string, maxLogLines+3)
	log[len(log)-1] = strings.Repeat("é", maxShownText)
	detail, _ := json.Marshal(map[string]any{"FAIL_TO_PASS": map[string]string{}, "log": log})
	v := patchViewOf([]eval.Result{{Detail: detail}})
	if v == nil || len(v.Log) != maxLogLines || v.LogCut != 3 {
		t.Fatalf("log of %d lines: view keeps %d, cut %d", len(log), len(v.Log), v.LogCut)
	}
	if last := v.Log[len(v.Log)-1]; len(last) > maxShownText+64 || !utf8.ValidString(last) {
		t.Errorf("a long log line is not clipped at a rune boundary: %d bytes", len(last))
	}
}
