package app

import (
	"fmt"
	"slices"
	"strings"

	"crucible/internal/baseline"
	"crucible/internal/eval/mcq"
	"crucible/internal/eval/mcq/mcqtest"
	"crucible/internal/eval/roleplay/roleplaytest"
)

// BaselinePolicies assembles the named baseline policies (`crucible
// model-server --policy`), in order, from the kinds that provide them: the
// multiple-choice policies answer from key (the random one with seed 0),
// the roleplay ones need none.
func BaselinePolicies(names []string, key *mcq.Dataset) ([]baseline.Named, error) {
	var out []baseline.Named
	for _, n := range names {
		var ps []baseline.Named
		var err error
		// One name at a time: a kind reads an empty list as all its policies.
		switch {
		case slices.Contains(mcqtest.Names(), n):
			ps, err = mcqtest.Policies(mcqtest.Config{Policies: []string{n}, Key: key})
		case slices.Contains(roleplaytest.Names(), n):
			ps, err = roleplaytest.Policies([]string{n})
		default:
			err = fmt.Errorf("baseline: unknown policy %q (want %s)", n,
				strings.Join(append(mcqtest.Names(), roleplaytest.Names()...), ", "))
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}
