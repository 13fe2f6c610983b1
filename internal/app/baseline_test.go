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
