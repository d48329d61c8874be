# roomd: `make test` runs everything CI runs; `make bench` the benchmarks.
GO        ?= go
GOFILES    = $(shell git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './client-js/*')
NPM       ?= npm
# staticcheck, pinned; `go run` builds it once into the Go build cache.
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test test-go test-js fmt-check vet lint bench targets fuzz run clean

all: build

build:
	$(GO) build -o bin/roomd ./cmd/roomd

run:
	$(GO) run ./cmd/roomd

test: fmt-check vet lint test-go test-js

fmt-check:
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint:
	$(STATICCHECK) ./...

test-go:
	$(GO) test -race -count=1 -timeout 15m ./...

# The SDK's unit, integration and browser suites, and the committed bundle
# checked against a fresh build.
test-js:
	cd client-js && $(NPM) run check-bundle
	cd client-js && $(NPM) test
	cd client-js && $(NPM) run test:integration
	cd client-js && $(NPM) run test:browser

# Short runs of every roomd bench scenario against a fresh roomd built from
# this tree, then the Go micro-benchmarks (scripts/bench.sh; under a minute
# on 2 cores). Figures and how to take them: docs/BENCHMARKS.md.
bench:
	GO=$(GO) bash scripts/bench.sh

# The single-node targets of docs/BENCHMARKS.md, one run each against a fresh
# roomd, each figure printed beside its target (about five minutes).
targets: build
	$(GO) run ./scripts/targets -roomd bin/roomd

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzSplitDecode -fuzztime 60s ./protocol/

clean:
	rm -rf bin
