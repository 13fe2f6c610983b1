package api

import (
	"slices"
	"testing"
)

// A misspelt entry would silently leave its route at the default limit.
func TestEveryBodyLimitNamesARoute(t *testing.T) {
	served := map[string]bool{}
	for _, rt := range slices.Concat(routes, validatorRoutes, labelRoutes, roleplayRoutes) {
		served[rt.method+" "+rt.pattern] = true
	}
	for name := range bodyLimits {
		if !served[name] {
			t.Errorf("bodyLimits names %q, which is not a route", name)
		}
	}
}
