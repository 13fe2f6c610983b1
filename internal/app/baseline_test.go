package app_test

import (
	"strings"
	"testing"

	"crucible/internal/app"
)

func TestBaselinePoliciesAssembleTheKindsInOrder(t *testing.T) {
	ps, err := app.BaselinePolicies([]string{"judge", "first", "persona"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Name)
	}
	if strings.Join(got, ",") != "judge,first,persona" {
		t.Fatalf("policies = %v", got)
	}
	for _, tt := range []struct{ policy, want string }{
		{"clever", "unknown policy \"clever\" (want random, first, oracle, overlap, persona, persona-plus"},
		{"oracle", "needs Config.Key"},
	} {
		if _, err := app.BaselinePolicies([]string{"first", tt.policy}, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("policy %s: err = %v, want %q", tt.policy, err, tt.want)
		}
	}
}

func TestTaskBaselinePoliciesReadTheTaskAndTheResponses(t *testing.T) {
	ps, err := app.TaskBaselinePolicies([]string{"replay", "oracle", "random"}, app.TaskBaseline{
		TaskFile:      "../eval/task/testdata/social_iqa.yaml",
		ResponsesFile: "../eval/task/tasktest/testdata/gsm8k_responses.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Name)
	}
	if strings.Join(got, ",") != "replay,oracle,random" {
		t.Fatalf("policies = %v", got)
	}
	// A shipped preset's name serves as well as a file.
	if ps, err := app.TaskBaselinePolicies([]string{"oracle"}, app.TaskBaseline{TaskFile: "gsm8k"}); err != nil || len(ps) != 1 {
		t.Fatalf("preset gsm8k: %v, %d policies", err, len(ps))
	}
	for _, tt := range []struct {
		tb   app.TaskBaseline
		want string
	}{
		{app.TaskBaseline{TaskFile: "../eval/task/testdata/gsm8k.yaml", ResponsesFile: "../eval/task/testdata/gsm8k.yaml"}, "gsm8k.yaml: responses: line 1"},
		{app.TaskBaseline{TaskFile: "../eval/task/testdata/nonexistent.yaml"}, `no task file or preset "../eval/task/testdata/nonexistent.yaml" (presets: gsm8k, social_iqa)`},
		{app.TaskBaseline{}, "replay policy needs responses"},
	} {
		if _, err := app.TaskBaselinePolicies([]string{"replay", "oracle"}, tt.tb); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want %q", tt.tb, err, tt.want)
		}
	}
}
