# Burnrate build targets. `make test` is the same command CI runs.
GO       ?= go
PKG      := github.com/prometheus/common/version
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X $(PKG).Version=$(VERSION) -X $(PKG).Revision=$(REVISION) \
            -X $(PKG).Branch=$(shell git rev-parse --abbrev-ref HEAD 2>/dev/null) \
            -X $(PKG).BuildDate=$(shell date -u +%Y%m%dT%H%M%SZ)
GOLANGCI_LINT_VERSION := v2.6.2

.PHONY: build test lint bench update-golden e2e soak

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/burnrate ./cmd/burnrate

test:
	$(GO) test ./...

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

# Benchmarks: results and the commands that produced them go in bench/README.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee bench/out.txt

# Rewrite golden files in every package that has them, then review the diff.
update-golden:
	@for d in $$(git ls-files '*/testdata/*.golden*' | xargs -r -n1 dirname | xargs -r -n1 dirname | sort -u); do \
		echo "updating ./$$d"; $(GO) test ./$$d -update || exit 1; done

# End-to-end suite: the built binary driven as a user drives it, against a
# fake Slack Web API on loopback (docs/e2e.md). Behind the e2e build tag, so
# `go test ./...` does not run it a second time; about 3 minutes of real time.
e2e:
	$(GO) test -tags e2e -run '^TestE2E' -count=1 -v -parallel 4 -timeout 12m ./cmd/burnrate

# Soak (not in CI): mixed load and rotating faults for SOAK_DURATION, reporting
# memory, goroutines, TSDB, trace store, SQLite sizes and the outbox depth.
SOAK_DURATION ?= 30m
soak:
	$(GO) test -tags e2e -run '^TestSoak$$' -count=1 -v -timeout 0 ./cmd/burnrate -args -soak.duration=$(SOAK_DURATION)
