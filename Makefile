# vault-plugin-aws-hmac
SHELL := /bin/bash
export GOTOOLCHAIN := local

GO      ?= go
CACHE   ?= $(CURDIR)/.cache
BIN     := $(CURDIR)/bin
PLUGIN  := vault-plugin-aws-hmac

.PHONY: all build test check unit bench bench-vault demo deps tools clean

all: build

## build: the plugin binary and the aws-hmac helper into bin/
build:
	$(GO) build ./...
	mkdir -p $(BIN)
	CGO_ENABLED=1 $(GO) build -o $(BIN)/$(PLUGIN) ./cmd/$(PLUGIN)
	$(GO) build -o $(BIN)/aws-hmac ./cmd/aws-hmac

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

## check: gofmt, go vet and staticcheck
check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## unit: the tests that need nothing but Go
unit:
	$(GO) test -race -count=1 ./...

## test: everything CI runs — packages, pinned tools, checks, all tests
test: deps tools check
	source scripts/env.sh && $(GO) test -race -count=1 -timeout 45m ./...

## bench: signer, key-store and handler benchmarks beside their references
bench: deps tools
	source scripts/env.sh && $(GO) test -run '^$$' -bench . -benchmem ./sigv4/... ./hmac/ ./internal/scope/ .

## bench-vault: sign/ and creds/ in a real Vault, beside Vault's own paths and the baseline build
bench-vault: deps tools
	source scripts/env.sh && $(GO) test -run '^$$' -bench BenchmarkVault -benchtime 1x -timeout 30m ./internal/benchvault

## demo: dev Vault + plugin + transit key store + MinIO (or real AWS with AWS_ACCESS_KEY_ID set)
demo: deps tools
	scripts/demo.sh

## deps: Debian packages the tests need (idempotent)
deps:
	scripts/install-deps.sh

## tools: pinned Vault, MinIO and mc, built once into $(CACHE)/bin
tools:
	scripts/build-tools.sh

clean:
	rm -rf $(BIN)
