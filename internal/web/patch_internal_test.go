package web

import (
	"encoding/json"
	"testing"

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
