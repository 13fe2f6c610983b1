# Crucible's everyday commands. `make test` is what CI runs (.ci/run).
GO ?= go

.PHONY: demo test bench lint

demo:
	$(GO) run ./cmd/crucible demo

test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...

bench:
	$(GO) run ./bench/eval-throughput
	$(GO) run ./bench/sandbox
	$(GO) run ./bench/router

lint:
	gofmt -l . | (! grep .)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
