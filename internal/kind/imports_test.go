package kind_test

import (
	"go/build"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestTheContractAndTheToyKindImportNoServicePackage: the kind contract and
// a kind (kindtest.Echo stands for any) never reach the store, the job
// queue, the API, the web pages or the app, directly or through another
// package of this module; otherwise a kind could not be added as one
// package without pulling the server in.
func TestTheContractAndTheToyKindImportNoServicePackage(t *testing.T) {
	t.Parallel()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	forbidden := []string{"crucible/internal/store", "crucible/internal/jobs", "crucible/internal/api", "crucible/internal/web", "crucible/internal/app"}
	for _, pkg := range []string{"crucible/internal/kind", "crucible/internal/kind/kindtest"} {
		seen := map[string]string{} // package → the package that imports it
		queue := []string{pkg}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			dir := filepath.Join(root, strings.TrimPrefix(p, "crucible/"))
			bp, err := build.ImportDir(dir, 0)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			for _, imp := range bp.Imports {
				if !strings.HasPrefix(imp, "crucible/") {
					continue
				}
				if _, ok := seen[imp]; ok {
					continue
				}
				seen[imp] = p
				if slices.ContainsFunc(forbidden, func(f string) bool { return imp == f || strings.HasPrefix(imp, f+"/") }) {
					t.Errorf("%s reaches %s (imported by %s)", pkg, imp, p)
					continue
				}
				queue = append(queue, imp)
			}
		}
	}
}
