# Crucible's everyday commands. `make test` is what CI runs (.ci/run).
GO ?= go

.PHONY: demo test quick fuzz bench lint

# FUZZTIME bounds each native Go fuzz target's run in `make fuzz` (and so in CI).
# It is a count of executions, not a duration: with a duration, Go 1.26's fuzz
# coordinator can report "context deadline exceeded" at the deadline on a loaded
# machine without any failing input (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME ?= 30000x

demo:
	$(GO) run ./cmd/crucible demo

test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...
	$(MAKE) fuzz

# quick is the everyday loop: vet and the suite under -short, which skips the
# slow end-to-end tests (sandboxed repositories, browsers, crash recovery).
# CI runs `make test`, which runs them all.
quick:
	$(GO) vet ./...
	$(GO) test -short -count=1 -timeout 15m ./...

# fuzz runs every FuzzXxx target for FUZZTIME, one at a time (go test -fuzz
# takes one target per run); seed corpora live beside them in testdata/fuzz.
fuzz:
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' internal cmd | xargs -r -n1 dirname | sort -u); do \
	  for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | sed 's/^func //'); do \
	    echo "fuzz ./$$dir $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 200x ./$$dir; \
	  done; \
	done

bench:
	$(GO) run ./bench/eval-throughput
	$(GO) run ./bench/sandbox
	$(GO) run ./bench/router
	$(GO) run ./bench/leaderboard

# lint also fails when go.mod or go.sum is not what `go mod tidy` writes.
lint:
	gofmt -l . | (! grep .)
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
