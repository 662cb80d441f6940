# vault-plugin-aws-hmac
SHELL := /bin/bash
export GOTOOLCHAIN := local

GO      ?= go
CACHE   ?= $(CURDIR)/.cache
BIN     := $(CURDIR)/bin
PLUGIN  := vault-plugin-aws-hmac
MODULE  := github.com/awshmac/vault-plugin-aws-hmac

# The version comes from git (-buildvcs=auto, whatever GOFLAGS says); a
# release sets its own: make build VERSION=v1.2.3.
VERSION ?=
BUILDFLAGS := -buildvcs=auto $(if $(VERSION),-ldflags "-X $(MODULE)/internal/version.override=$(VERSION)")

.PHONY: all build test check unit bench bench-vault demo deps tools clean

all: build

## build: the plugin binary and the aws-hmac helper into bin/, with their version
build:
	$(GO) build ./...
	mkdir -p $(BIN)
	CGO_ENABLED=1 $(GO) build $(BUILDFLAGS) -o $(BIN)/$(PLUGIN) ./cmd/$(PLUGIN)
	$(GO) build $(BUILDFLAGS) -o $(BIN)/aws-hmac ./cmd/aws-hmac
	@v=$$($(BIN)/$(PLUGIN) -version) && echo "built $(PLUGIN) $$v, sha256 $$(sha256sum $(BIN)/$(PLUGIN) | cut -c1-64)"

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

## demo: dev Vault + plugin + transit key store + MinIO (or real AWS with AWS_ACCESS_KEY_ID set).
## VAULT_BIN, MINIO_BIN and MC_BIN, when set, are used as they are; only what
## is missing is installed (curl, jq) or built (vault; minio and mc unless AWS).
demo:
	@if [ -z "$$VAULT_BIN" ] || { [ -z "$$AWS_ACCESS_KEY_ID" ] && { [ -z "$$MINIO_BIN" ] || [ -z "$$MC_BIN" ]; }; }; then \
	  scripts/install-deps.sh curl jq ca-certificates; fi
	@[ -n "$$VAULT_BIN" ] || scripts/build-tools.sh vault
	@[ -n "$$MINIO_BIN" ] || [ -n "$$AWS_ACCESS_KEY_ID" ] || scripts/build-tools.sh minio
	@[ -n "$$MC_BIN" ] || [ -n "$$AWS_ACCESS_KEY_ID" ] || scripts/build-tools.sh mc
	scripts/demo.sh

## deps: Debian packages the tests need (idempotent)
deps:
	scripts/install-deps.sh

## tools: pinned Vault, MinIO and mc, built once into $(CACHE)/bin
tools:
	scripts/build-tools.sh

clean:
	rm -rf $(BIN)
