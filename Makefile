# roomd: `make test` runs everything CI runs; `make bench` the benchmarks.
GO        ?= go
GOFILES    = $(shell git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './client-js/*')
NPM       ?= npm
# staticcheck, pinned; `go run` builds it once into the Go build cache.
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The Chromium the browser tests drive: $CHROMIUM, else the first of these
# names on PATH.
CHROMIUM  ?= $(firstword $(foreach b,chromium chromium-browser google-chrome-stable google-chrome,$(shell command -v $(b) 2>/dev/null)))
# The platforms `make test` also builds for and vets (tests included).
CROSS     ?= linux/386 linux/arm linux/arm64 darwin/arm64 windows/amd64
# npm ci writes this file; it is older than the lock file when the
# dependencies changed since.
JS_DEPS    = client-js/node_modules/.package-lock.json

.PHONY: all build test test-go test-js typecheck cross fmt-check vet lint tools chromium bench bench-cluster targets fuzz run clean

all: build

build:
	$(GO) build -o bin/roomd ./cmd/roomd

run:
	$(GO) run ./cmd/roomd

# Everything CI runs. What it needs and cannot install (Node.js, Chromium)
# is checked first, and reported in one line each.
test: tools $(JS_DEPS) chromium fmt-check vet lint cross typecheck test-go test-js

tools:
	@command -v node >/dev/null 2>&1 && command -v $(NPM) >/dev/null 2>&1 || \
		{ echo "make test: Node.js 20 or later with npm is needed (Debian/Ubuntu: apt-get install nodejs npm; macOS: brew install node)"; exit 1; }
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || \
		{ echo "make test: Node.js $$(node --version) is too old: 20 or later is needed"; exit 1; }

# client-js's dependencies, installed again when package-lock.json changes.
$(JS_DEPS): client-js/package-lock.json
	cd client-js && $(NPM) ci --no-audit --no-fund
	@touch $@

chromium:
	@[ -n "$(CHROMIUM)" ] && [ -x "$(CHROMIUM)" ] || \
		{ echo "make test: Chromium is needed for the browser tests and was not found$(if $(CHROMIUM), at $(CHROMIUM),) (Debian/Ubuntu: apt-get install chromium; macOS: brew install --cask chromium; or set CHROMIUM=/path/to/chromium)"; exit 1; }

fmt-check:
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint:
	$(STATICCHECK) ./...

# Builds and vets for each platform of CROSS; vet type-checks the tests too.
cross:
	@for p in $(CROSS); do \
		echo "GOOS=$${p%/*} GOARCH=$${p#*/} go build ./... && go vet ./..."; \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build ./... && \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) vet ./... || exit 1; \
	done

# The SDK's TypeScript, checked by tsc.
typecheck: $(JS_DEPS)
	cd client-js && $(NPM) run typecheck

test-go:
	$(GO) test -race -count=1 -timeout 15m ./...

# The SDK's unit, integration and browser suites, and the committed bundle
# checked against a fresh build.
test-js: $(JS_DEPS) chromium
	cd client-js && $(NPM) run check-bundle
	cd client-js && $(NPM) test
	cd client-js && $(NPM) run test:integration
	cd client-js && CHROMIUM="$(CHROMIUM)" $(NPM) run test:browser

# Short runs of every roomd bench scenario against a fresh roomd built from
# this tree, then the Go micro-benchmarks (scripts/bench.sh; under a minute
# on 2 cores). Figures and how to take them: docs/BENCHMARKS.md.
bench:
	GO=$(GO) bash scripts/bench.sh

# The cost of replication: runs alternated between this tree's roomd (A) and
# an earlier build (B, default /tmp/roomd-base; B=none for A alone), fan-out
# CPU, publish → ok on one and three nodes, an idle 3-node cluster
# (scripts/bench-cluster.sh; about 16 minutes on 2 cores).
bench-cluster:
	GO=$(GO) bash scripts/bench-cluster.sh

# The single-node targets of docs/BENCHMARKS.md, one run each against a fresh
# roomd, each figure printed beside its target (about five minutes).
targets: build
	$(GO) run ./scripts/targets -roomd bin/roomd

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzSplitDecode -fuzztime 60s ./protocol/
	$(GO) test -run '^$$' -fuzz FuzzReadMessage -fuzztime 60s ./internal/wsframe/
	$(GO) test -run '^$$' -fuzz FuzzParseExtensions -fuzztime 30s ./internal/wsframe/

clean:
	rm -rf bin
