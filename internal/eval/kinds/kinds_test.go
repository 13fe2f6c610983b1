package kinds

import (
	"context"
	"crucible/internal/eval/patch"
	"crucible/internal/eval/preference"
	"crucible/internal/eval/roleplay"
	"encoding/json"
	"strings"
	"testing"

	"crucible/internal/competition"
	"crucible/internal/eval/mcq"
	"crucible/internal/kind"
)

func TestPrepareBoundsTheMCQTokenBudget(t *testing.T) {
	dataset := []byte(`{"question":"q","choices":["a","b"],"answer":0}`)
	tests := []struct {
		name      string
		maxTokens int
		want      int    // the stored budget when accepted
		wantErr   string // else
	}{
		{"zero takes the default", 0, mcq.DefaultMaxTokens, ""},
		{"the limit itself is accepted", mcq.MaxTokensLimit, mcq.MaxTokensLimit, ""},
		{"a negative budget is refused", -5, 0, "max_tokens -5 is outside 1..32768"},
		{"a budget over the limit is refused", 2e9, 0, "max_tokens 2000000000 is outside 1..32768"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prep, err := MCQ{}.Prepare(context.Background(), kind.Spec{Title: "t", DatasetName: "d",
				Dataset: dataset, MaxTokens: tt.maxTokens})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Prepare error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			var cfg competition.MCQConfig
			if err != nil || json.Unmarshal(prep.Config, &cfg) != nil || cfg.MaxTokens != tt.want {
				t.Fatalf("Prepare = %s, %v; want max_tokens %d", prep.Config, err, tt.want)
			}
		})
	}
}

// Each built-in kind tells a validator how to evaluate it on its own, and an
// unknown kind is not validated.
func TestBuiltinKindsSayHowAValidatorEvaluatesThem(t *testing.T) {
	t.Parallel()
	reg, err := kind.NewRegistry(Builtin(Egress{}, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	want := map[competition.Kind]kind.Validation{
		mcq.Name: kind.ValidateOwnDataset, roleplay.Name: kind.ValidateOwnModels,
		patch.Name: kind.ValidateSandbox, preference.Name: kind.ValidateLabels, "nope": kind.ValidateNone,
	}
	for k, v := range want {
		if got := reg.Validation(k); got != v {
			t.Errorf("Validation(%s) = %d, want %d", k, got, v)
		}
	}
}
