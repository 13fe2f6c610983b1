package patch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"crucible/internal/sandbox"
)

// warmSeeds holds, per work root, the workspace whose Go build cache seeds
// every Go run of a judge configured without a GoCacheSeed. Without one,
// each run compiled the standard library behind package testing from
// nothing: tens of seconds on an idle judge, and on a loaded one enough to
// hit the prebuild's time limit, which is an infrastructure error judged
// again and again. The workspace stays open (locked) for the process's
// life, so Sweep keeps it while the process lives and removes it after.
var warmSeeds = struct {
	sync.Mutex
	byRoot map[string]*workspace
}{byRoot: map[string]*workspace{}}

// warmProgram is the only code the seed's cache is built from: the
// judge's own, never a competitor's, so copying it into runs shares
// nothing a competitor wrote.
var warmProgram = map[string]string{
	"go.mod":    "module crucible.warm\n\ngo 1.22\n",
	"w.go":      "package warm\n",
	"w_test.go": "package warm\n\nimport \"testing\"\n\nfunc TestWarm(t *testing.T) {}\n",
}

// warmGoCache returns the warm Go build cache of workRoot, building it in
// the sandbox under sb's limits and environment the first time (so its
// entries match the runs' own), or an error, after which the caller's run
// starts cold as before.
func warmGoCache(ctx context.Context, workRoot string, sb sandbox.Config) (string, error) {
	warmSeeds.Lock()
	defer warmSeeds.Unlock()
	if ws := warmSeeds.byRoot[workRoot]; ws != nil {
		return ws.gocache, nil
	}
	var log []string
	ws, err := newWorkspace(workRoot, sb, &log)
	if err != nil {
		return "", err
	}
	for name, body := range warmProgram {
		if err := os.WriteFile(filepath.Join(ws.work, name), []byte(body), 0o644); err != nil {
			ws.close()
			return "", err
		}
	}
	cfg := ws.sandboxCfg(sandbox.Mount{Source: ws.gocache, Target: boxCache, Writable: true})
	res, err := sandbox.Run(ctx, cfg, []string{"go", "test", "-json", "./..."})
	if err == nil && (res.ExitCode != 0 || res.Killed != "") {
		err = fmt.Errorf("go test of an empty package: %s: %.500s", res, res.Stderr)
	}
	if err != nil {
		ws.close()
		return "", fmt.Errorf("warm go cache: %w", err)
	}
	warmSeeds.byRoot[workRoot] = ws
	return ws.gocache, nil
}

// seedFor returns the seed of a run's private Go build cache: the
// configured one, else for Go tests the judge's warm one; "" (a cold
// cache) when warming fails, which the log records.
func seedFor(ctx context.Context, cfg JudgeConfig, parser string, log *[]string) string {
	if cfg.GoCacheSeed != "" || parser != ParserGoTest {
		return cfg.GoCacheSeed
	}
	seed, err := warmGoCache(ctx, cfg.WorkRoot, cfg.Sandbox)
	if err != nil {
		*log = append(*log, "go cache: "+err.Error()+"; this run builds from a cold cache")
	}
	return seed
}
