package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// statsRun runs `crucible stats ARGS` through runStats and returns stdout
// and the error.
func statsRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runStats(context.Background(), args, &out, &errb)
	return out.String(), err
}

// writeCSV writes content to a temporary file and returns its path.
func writeCSV(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ratings.csv")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// shroutFleiss is the 6 targets × 4 judges table of Shrout & Fleiss (1979),
// Table 2.
const shroutFleiss = "j1,j2,j3,j4\n9,2,5,8\n6,1,3,2\n8,4,6,8\n7,1,2,6\n10,5,6,9\n6,2,4,7\n"

// kappaExample is REFERENCE.md's scikit-learn example:
// y1 = [0]*40+[1]*60, y2 = [0]*20+[1]*20+[0]*10+[1]*50 → κ = 0.348.
func kappaExample() string {
	var b strings.Builder
	b.WriteString("y1,y2\n")
	for i := range 100 {
		y1, y2 := 1, 1
		if i < 40 {
			y1 = 0
		}
		if i < 20 || (i >= 40 && i < 50) {
			y2 = 0
		}
		b.WriteString(map[int]string{0: "0", 1: "1"}[y1] + "," + map[int]string{0: "0", 1: "1"}[y2] + "\n")
	}
	return b.String()
}

func TestStatsPrintsPublishedValuesAsJSON(t *testing.T) {
	tests := []struct {
		name string
		args []string
		csv  string
		want map[string]float64
		tol  float64
	}{
		{
			name: "icc on the Shrout and Fleiss table gives their six coefficients",
			args: []string{"icc"},
			csv:  shroutFleiss,
			// Shrout & Fleiss (1979), Table 4, to two decimals.
			want: map[string]float64{"icc1": .17, "icc2": .29, "icc3": .71, "icc1k": .44, "icc2k": .62, "icc3k": .91},
			tol:  0.005,
		},
		{
			name: "unweighted kappa on the scikit-learn example is 0.348",
			args: []string{"kappa"},
			csv:  kappaExample(),
			want: map[string]float64{"kappa": 0.348},
			tol:  0.0005,
		},
		{
			name: "quadratic kappa on two labels equals the unweighted one",
			args: []string{"kappa", "--weights", "quadratic"},
			csv:  kappaExample(),
			want: map[string]float64{"kappa": 0.348},
			tol:  0.0005,
		},
		{
			name: "spearman matches scipy's documented spearmanr example",
			args: []string{"spearman"},
			// scipy.stats.spearmanr([1,2,3,4,5], [5,6,7,8,7]) = 0.8207826816681233
			csv:  "a,b\n1,5\n2,6\n3,7\n4,8\n5,7\n",
			want: map[string]float64{"rho": 0.8207826816681233},
			tol:  1e-12,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args, "--file", writeCSV(t, tc.csv), "--json")
			out, err := statsRun(t, args...)
			if err != nil {
				t.Fatalf("stats %v: %v", tc.args, err)
			}
			var got map[string]float64
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output %q is not a JSON object of numbers: %v", out, err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("keys %v, want exactly %v", got, tc.want)
			}
			for k, w := range tc.want {
				v, ok := got[k]
				if !ok || math.Abs(v-w) > tc.tol {
					t.Errorf("%s = %v (present %v), want %v ± %v", k, v, ok, w, tc.tol)
				}
			}
		})
	}
}

func TestStatsPrintsReadableTextWithoutJSON(t *testing.T) {
	out, err := statsRun(t, "icc", "--file", writeCSV(t, shroutFleiss))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "ICC(2,1) = 0.2898") || !strings.Contains(out, "6 items, 4 raters") {
		t.Errorf("text output:\n%s", out)
	}
}

func TestStatsRejectsBadInputWithAnActionableMessage(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		csv   string
		want  string
		usage bool
	}{
		{name: "a non-number names its line and rater", args: []string{"icc"}, csv: "a,b\n1,2\n3,x\n", want: "line 3: rater \"b\": \"x\" is not a number"},
		{name: "a short row names its line", args: []string{"icc"}, csv: "a,b,c\n1,2,3\n4,5\n", want: "line 3: 2 values, want one per rater (3)"},
		{name: "an empty cell names its line and rater", args: []string{"spearman"}, csv: "a,b\n1,2\n,3\n", want: "line 3: rater \"a\" has no value"},
		{name: "a numeric header is refused", args: []string{"icc"}, csv: "1,2\n3,4\n", want: "line 1: header cell \"1\" is a number"},
		{name: "kappa refuses three raters", args: []string{"kappa"}, csv: "a,b,c\n1,2,3\n", want: "exactly two rater columns, the header has 3"},
		{name: "spearman refuses one rater", args: []string{"spearman"}, csv: "a\n1\n2\n", want: "exactly two rater columns, the header has 1"},
		{name: "kappa refuses fractional labels", args: []string{"kappa"}, csv: "a,b\n1,2\n1.5,2\n", want: "line 3: rater \"a\": kappa needs integer labels"},
		{name: "a constant rater makes spearman undefined", args: []string{"spearman"}, csv: "a,b\n1,2\n1,3\n", want: "undefined"},
		{name: "an empty file asks for a header", args: []string{"icc"}, csv: "", want: "empty file"},
		{name: "a header without rows is refused", args: []string{"icc"}, csv: "a,b\n", want: "no rows"},
		{name: "weights on icc is a usage error", args: []string{"icc", "--weights", "linear"}, csv: shroutFleiss, want: "--weights applies to kappa only", usage: true},
		{name: "an unknown weighting is a usage error", args: []string{"kappa", "--weights", "cubic"}, csv: kappaExample(), want: "want none, linear or quadratic", usage: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := statsRun(t, append(tc.args, "--file", writeCSV(t, tc.csv))...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if got := errors.As(err, new(*usageError)); got != tc.usage {
				t.Errorf("usage error = %v, want %v", got, tc.usage)
			}
		})
	}
}

func TestStatsNeedsAVerbAndAFile(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no verb lists the verbs", args: nil, want: "kappa, icc, spearman"},
		{name: "an unknown verb is refused", args: []string{"alpha"}, want: "unknown subcommand"},
		{name: "a missing file flag is refused", args: []string{"icc"}, want: "--file CSV is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CRUCIBLE_FILE", "")
			_, err := statsRun(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, new(*usageError)) {
				t.Fatalf("error %v, want a usage error containing %q", err, tc.want)
			}
		})
	}
}
